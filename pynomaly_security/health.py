"""The stack's health: each component's state, backend reachability, the audit
queue and the last verification of the audit trail.

``GET /api/security/health`` (``api/health_routes.py``) and the orchestrator's
dashboard read it. The stack is *down* when a backend does not answer within
``timeout`` seconds or the audit writer, when there is one, is not running (no
record could be committed); otherwise *up*. A monitor that is not running is
not down: it starts with the first event (apps served without lifespan events).
Per process: the monitor's queue and the audit queue are this worker's.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pynomaly_security.plugin import SecurityStack

__all__ = ["check_health", "component_states"]


async def _answers(probe: Any, timeout: float) -> Any:
    try:
        async with asyncio.timeout(timeout):
            return await probe
    except Exception:  # down, refused, timed out: all mean "does not answer"
        return None


def _decisions(stack: SecurityStack) -> dict[str, Any]:
    """What this worker enforces (its index as last loaded): counts, never values."""
    if stack.decisions is None:
        return {"enabled": False}
    index = stack.decisions.view.index
    return {
        "enabled": True,
        "in_force": len(index.decisions),
        "intel_lists": [v.name for v in index.all_lists],
    }


def _policies(stack: SecurityStack) -> dict[str, Any]:
    """The policy versions this worker decides with (as last loaded): ids and counts."""
    engine = stack.policies
    if engine is None:
        return {"enabled": False}
    return {
        "enabled": True,
        "active": dict(engine.active.versions),
        "rules": engine.active.rule_count,
        "shadowing": engine.shadow is not None,
        "coarse_layer_in_path": engine.coarse is not None,
    }


def component_states(stack: SecurityStack) -> dict[str, Any]:
    """Each component's state as this process knows it, without I/O."""
    monitor = stack.security_monitor
    components: dict[str, Any] = {
        "monitor": {
            "enabled": monitor.enabled,
            "running": monitor.running,
            "detectors": [getattr(d, "name", type(d).__name__) for d in monitor.detectors],
            "queue_depth": monitor.queue_depth,
            "dropped_events": monitor.metrics.get("dropped_events", 0),
        },
        "inspection": {"enabled": stack.inspector is not None},
        "user_tracking": {"enabled": stack.user_tracker is not None},
        "lockout": {"enabled": stack.lockouts is not None},
        "incidents": {
            "enabled": stack.incidents is not None,
            "timeline": stack.incidents is not None and stack.incidents.audit_logger is not None,
        },
        "decisions": _decisions(stack),
        "policies": _policies(stack),
        "compliance": {"enabled": False}
        if stack.compliance is None
        else {
            "enabled": True,
            "scheduled": stack.compliance.scheduled,
            "runs_here": stack.compliance.runs,
        },
        "anomaly": (
            {"enabled": False}
            if stack.anomaly is None
            else {
                "enabled": True,
                "mode": stack.anomaly.mode,
                "queued": stack.anomaly.status()["queued"],
                "dropped": stack.anomaly.counts.get("dropped", 0),
            }
        ),
    }
    audit = stack.audit_logger
    if audit is None:
        components["audit"] = {"enabled": False}
    else:
        last = audit.last_verification
        components["audit"] = {
            "enabled": True,
            "running": audit.running,
            "queue_depth": audit.queue_depth,
            "dropped": audit.dropped,
            "last_verification": None
            if last is None
            else {
                "at": last[0],
                "ok": last[1].ok,
                "records": last[1].count,
                "problem": last[1].problem,
            },
        }
    return components


async def check_health(stack: SecurityStack, *, timeout: float = 2.0) -> dict[str, Any]:
    """``{"status": "up"|"down", "components": {...}, "backends": {url: bool}}``;
    backend URLs carry no password."""
    backends: dict[str, bool] = {}
    if stack.storage is not None:
        found = await _answers(stack.storage.healthcheck(), timeout)
        backends = dict(found) if found is not None else {"storage": False}
    store_ok = True
    if stack.store is not None:
        store_ok = bool(await _answers(stack.store.healthcheck(), timeout))
    components = component_states(stack)
    components["shared_store"] = {"reachable": store_ok}
    audit_ok = stack.audit_logger is None or stack.audit_logger.running
    up = store_ok and audit_ok and all(backends.values())
    return {"status": "up" if up else "down", "components": components, "backends": backends}
