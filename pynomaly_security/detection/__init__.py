"""Pure request inspection: no ASGI and no I/O (shared by the middleware and
``python -m pynomaly_security replay``)."""

from __future__ import annotations

from pynomaly_security.detection.inspector import Inspector
from pynomaly_security.detection.types import Finding, RequestParts, Verdict

__all__ = ["Finding", "Inspector", "RequestParts", "Verdict"]
