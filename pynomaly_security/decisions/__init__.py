"""Decisions the middleware enforces (issue 16, item 3): model, store, index, sync,
middleware; ``service.py`` puts them together for the stack (``stack.decisions``)."""

from __future__ import annotations

from pynomaly_security.decisions.index import AllowList, DecisionIndex, DecisionView
from pynomaly_security.decisions.middleware import DecisionMiddleware
from pynomaly_security.decisions.model import Decision, DecisionAction, DecisionScope
from pynomaly_security.decisions.service import DecisionService
from pynomaly_security.decisions.store import DecisionRefused, DecisionStore

__all__ = [
    "AllowList",
    "Decision",
    "DecisionAction",
    "DecisionIndex",
    "DecisionMiddleware",
    "DecisionRefused",
    "DecisionScope",
    "DecisionService",
    "DecisionStore",
    "DecisionView",
]
