"""The async SecurityMonitor, its events, detectors and alerts."""

from __future__ import annotations

from pynomaly_security.monitor.activity import ActivityRecord, UserTracker
from pynomaly_security.monitor.alerts import AlertStore, StoredAlerts
from pynomaly_security.monitor.detectors import (
    AnomalousAccessDetector,
    BruteForceDetector,
    Detector,
    InjectionAttackDetector,
    ThreatDetector,
)
from pynomaly_security.monitor.events import EventKind, SecurityAlert, SecurityEvent, ThreatLevel
from pynomaly_security.monitor.monitor import AlertHandler, SecurityMonitor

__all__ = [
    "ActivityRecord",
    "AlertHandler",
    "AlertStore",
    "AnomalousAccessDetector",
    "BruteForceDetector",
    "Detector",
    "EventKind",
    "InjectionAttackDetector",
    "SecurityAlert",
    "SecurityEvent",
    "SecurityMonitor",
    "StoredAlerts",
    "ThreatDetector",
    "ThreatLevel",
    "UserTracker",
]
