"""Pure request inspection: no ASGI and no I/O (shared by the middleware and
``python -m pynomaly_security replay``)."""

from __future__ import annotations

from pynomaly_security.detection.inspector import Inspector
from pynomaly_security.detection.types import RequestParts, RuleFinding, Verdict

__all__ = ["Inspector", "RequestParts", "RuleFinding", "Verdict"]
