"""The SecurityMonitor: a bounded event queue, detectors, alerts, handlers.

Middlewares call :meth:`SecurityMonitor.submit` (synchronous, never blocks:
when the queue is full the event is counted as dropped). One background task
runs the detectors and the alert handlers, so a slow webhook never slows a
request. A handler or detector that raises is logged and skipped.

Every alert is bounded before it is stored or handed on, whoever raised it (a
detector, the lockout, the app): detectors copy what they saw (a path, a user
name, findings), which is the attacker's to size and to fill with control
characters. Each string is cut with a marker, the same text kept once, control
characters escaped, and the details capped in size (:data:`ALERT_BOUNDS`, the
audit trail's :class:`~pynomaly_security.audit.bounds.RecordBounds`).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any

import structlog

from pynomaly_security.audit.bounds import RecordBounds
from pynomaly_security.monitor.alerts import AlertStore, InMemoryAlertStore
from pynomaly_security.monitor.detectors import (
    AnomalousAccessDetector,
    BruteForceDetector,
    Detector,
    InjectionAttackDetector,
)
from pynomaly_security.monitor.events import EventKind, SecurityAlert, SecurityEvent, ThreatLevel
from pynomaly_security.settings import SecuritySettings

__all__ = ["ALERT_BOUNDS", "AlertHandler", "SecurityMonitor"]

log = structlog.get_logger(__name__)

AlertHandler = Callable[[SecurityAlert], Awaitable[None] | None]

EVENT_DETECTOR_FAILED = "security_detector_failed"
EVENT_HANDLER_FAILED = "security_alert_handler_failed"
EVENT_ALERT = "security_alert"
EVENT_DROPPED = "security_event_dropped"

ALERT_BOUNDS = RecordBounds(max_field_chars=256, max_record_bytes=8192, escape_controls=True)
"""Bounds of an alert: 256 characters per string (a finding's excerpt is 40), 8 KB
of details (twenty findings fit), control characters escaped."""

_METRIC_BY_KIND = {
    EventKind.LOGIN_FAILURE: "failed_logins",
    EventKind.LOGIN_SUCCESS: "successful_logins",
    EventKind.INJECTION: "injection_attempts",
    EventKind.BLOCKED: "blocked_requests",
    EventKind.REQUEST: "requests",
}


class SecurityMonitor:
    """Consumes security events and raises alerts.

    Args:
        detectors: the detectors to run; ``None`` installs the built-in ones.
        queue_size: bound of the event queue.
        alert_store: where alerts are kept (default: bounded, in memory).
        clock: injected for tests.
        enabled: when false, events are counted but no detector runs.
    """

    def __init__(
        self,
        *,
        detectors: Iterable[Detector] | None = None,
        queue_size: int = 10_000,
        alert_store: AlertStore | None = None,
        clock: Callable[[], float] = time.time,
        enabled: bool = True,
        brute_force_max_attempts: int = 5,
        brute_force_time_window: float = 300.0,
        max_keys: int = 100_000,
        alert_bounds: RecordBounds = ALERT_BOUNDS,
    ) -> None:
        if detectors is None:
            detectors = [
                BruteForceDetector(brute_force_max_attempts, brute_force_time_window, max_keys),
                AnomalousAccessDetector(max_users=max_keys),
                InjectionAttackDetector(max_keys=max_keys),
            ]
        self._detectors: list[Detector] = list(detectors)
        self._handlers: list[AlertHandler] = []
        self._queue: asyncio.Queue[SecurityEvent] | None = None
        self._queue_size = queue_size
        self._alerts: AlertStore = alert_store or InMemoryAlertStore()
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._metrics: Counter[str] = Counter()
        self._alert_counts: Counter[str] = Counter()
        self.enabled = enabled
        self._started_at: float | None = None
        self._bounds = alert_bounds

    @classmethod
    def from_settings(cls, settings: SecuritySettings, **kwargs: Any) -> SecurityMonitor:
        return cls(
            queue_size=settings.monitor_queue_size,
            enabled=settings.enable_security_monitoring and settings.threat_detection_enabled,
            brute_force_max_attempts=settings.brute_force_max_attempts,
            brute_force_time_window=settings.brute_force_time_window,
            max_keys=settings.max_tracked_keys,
            **kwargs,
        )

    # -- lifecycle ---------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start_monitoring(self) -> None:
        """Start the background task (idempotent). Also started lazily by the
        first event, so apps served without lifespan events still work."""
        if self.running:
            return
        if self._queue is None:
            self._queue = asyncio.Queue(self._queue_size)
        self._started_at = self._clock()
        self._task = asyncio.get_running_loop().create_task(self._run(self._queue))

    async def stop(self) -> None:
        """Process what is queued, then stop the background task."""
        if self._task is None:
            return
        await self.flush(timeout=5.0)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    stop_monitoring = stop

    async def __aenter__(self) -> SecurityMonitor:
        await self.start_monitoring()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def flush(self, timeout: float = 1.0) -> None:
        """Wait (at most ``timeout`` seconds) until queued events are processed."""
        if self._queue is None or not self.running:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout)

    # -- input ---------------------------------------------------------------------------
    def submit(self, event: SecurityEvent) -> bool:
        """Queue an event without blocking; ``False`` when it had to be dropped."""
        metric = _METRIC_BY_KIND.get(event.kind)
        if metric:
            self._metrics[metric] += 1
        if not self.enabled:
            return False
        if self._queue is None:
            self._queue = asyncio.Queue(self._queue_size)
        if not self.running:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            if loop is not None:
                self._task = loop.create_task(self._run(self._queue))
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self._metrics["dropped_events"] += 1
            log.warning(EVENT_DROPPED, kind=event.kind.value)
            return False
        return True

    def count(self, metric: str) -> None:
        """Count something that needs no detector (e.g. a blocked request)."""
        self._metrics[metric] += 1

    async def process_event(self, event: SecurityEvent) -> list[SecurityAlert]:
        """Run every detector on one event now; raise the alerts they return."""
        alerts: list[SecurityAlert] = []
        for detector in self._detectors:
            try:
                alert = await detector.analyze(event)
            except Exception:
                log.exception(EVENT_DETECTOR_FAILED, detector=getattr(detector, "name", "?"))
                continue
            if alert is not None:
                await self.raise_alert(alert)
                alerts.append(alert)
        return alerts

    async def raise_alert(self, alert: SecurityAlert) -> None:
        """Store an alert and pass it to every handler (also for app code), bounded
        first (:data:`ALERT_BOUNDS`)."""
        self._bound(alert)
        await self._alerts.add(alert)
        self._alert_counts[alert.threat_level.value] += 1
        log.warning(
            EVENT_ALERT,
            alert_id=alert.alert_id,
            alert_type=alert.alert_type,
            threat_level=alert.threat_level.value,
            source_ip=alert.source_ip,
        )
        for handler in list(self._handlers):
            try:
                result = handler(alert)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception(EVENT_HANDLER_FAILED, handler=getattr(handler, "__name__", "?"))

    def _bound(self, alert: SecurityAlert) -> None:
        bounds = self._bounds
        text = bounds.text
        alert.alert_type = text(alert.alert_type)
        alert.message = text(alert.message)
        alert.source_ip = None if alert.source_ip is None else text(alert.source_ip)
        alert.user_id = None if alert.user_id is None else text(alert.user_id)
        # The identity seeds the de-duplication: a detail repeating the user name
        # refers to it instead of copying it again.
        identity = {"source_ip": alert.source_ip, "user_id": alert.user_id}
        alert.details = bounds.apply({"details": alert.details}, identity)["details"]

    async def _run(self, queue: asyncio.Queue[SecurityEvent]) -> None:
        while True:
            event = await queue.get()
            try:
                await self.process_event(event)
            finally:
                queue.task_done()

    # -- configuration -----------------------------------------------------------------
    def register_detector(self, detector: Detector) -> None:
        if not callable(getattr(detector, "analyze", None)):
            raise TypeError("a detector needs an async analyze(event) method")
        self._detectors.append(detector)

    def register_alert_handler(self, handler: AlertHandler) -> None:
        if not callable(handler):
            raise TypeError("an alert handler must be callable")
        self._handlers.append(handler)

    @property
    def detectors(self) -> tuple[Detector, ...]:
        return tuple(self._detectors)

    # -- queries -------------------------------------------------------------------------
    async def get_active_alerts(
        self, threat_level: ThreatLevel | None = None
    ) -> list[SecurityAlert]:
        """Unacknowledged alerts, newest first, optionally of one level."""
        return await self._alerts.list(threat_level=threat_level)

    async def get_alert(self, alert_id: str) -> SecurityAlert | None:
        return await self._alerts.get(alert_id)

    async def acknowledge_alert(self, alert_id: str) -> bool:
        """Acknowledge an alert; ``False`` when the id is unknown."""
        return await self._alerts.acknowledge(alert_id, self._clock()) is not None

    @property
    def metrics(self) -> dict[str, int]:
        return dict(self._metrics)

    async def get_security_summary(self) -> dict[str, Any]:
        active = await self._alerts.list()
        by_level = {level.value: 0 for level in ThreatLevel}
        for alert in active:
            by_level[alert.threat_level.value] += 1
        return {
            "monitoring_enabled": self.enabled,
            "running": self.running,
            "active_alerts_count": len(active),
            "recent_alerts": by_level,
            "recent_metrics": {
                "failed_logins": self._metrics["failed_logins"],
                "successful_logins": self._metrics["successful_logins"],
                "injection_attempts": self._metrics["injection_attempts"],
                "blocked_requests": self._metrics["blocked_requests"],
                "requests": self._metrics["requests"],
                "dropped_events": self._metrics["dropped_events"],
            },
            "detectors": [getattr(d, "name", type(d).__name__) for d in self._detectors],
            "queue_depth": self._queue.qsize() if self._queue is not None else 0,
        }
