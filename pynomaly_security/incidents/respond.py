"""Automatic response: a correlation match opens (or updates) an incident and runs
the rule's playbook (issue 16, item 4).

The incident's dedup key is ``correlation:<rule id>:<group key>``, so the same
pattern from the same group, on any worker, updates one open incident. Whether the
playbook runs is per rule: ``CORRELATION_RESPONSES`` names a rule's mode (``off``,
``dry_run``, ``on``), else the rule's own ``response`` (``dry_run`` for the built-in
rules: an app sees what would be done, on each incident's timeline, before it turns
a rule ``on``). A rule that raises no alert (a disabled built-in that another rule
needs as a step) opens no incident. A failure is logged and never reaches the request path: the
handler runs in the monitor's task.
"""

from __future__ import annotations

from collections.abc import Mapping

from pynomaly_security._log import get_logger
from pynomaly_security.incidents.automation import IncidentResponseAutomation
from pynomaly_security.incidents.model import IncidentSeverity
from pynomaly_security.monitor.correlation.engine import CorrelationMatch, MatchHandler

__all__ = ["correlation_responder"]

log = get_logger(__name__)
_KINDS = {"ip": "ips", "user": "users", "path": "routes"}


def correlation_responder(
    automation: IncidentResponseAutomation, modes: Mapping[str, str]
) -> MatchHandler:
    """A match handler for ``stack.correlation.register_match_handler``."""

    async def respond(match: CorrelationMatch) -> None:
        if match.alert_id is None:
            # A rule that does not alert (a disabled built-in kept as another rule's
            # step): its pattern is part of that rule's incident, not one of its own.
            return
        observables = {
            kind: list(match.observables.get(name, ()))
            for name, kind in _KINDS.items()
            if match.observables.get(name)
        }
        group = ", ".join(f"{k}={v}" for k, v in match.group.items())
        incident_id = await automation.create_incident(  # type: ignore[misc]
            match.title,
            f"correlation rule {match.rule_id} ({group}): {match.count} of {match.threshold}",
            IncidentSeverity(match.severity.value),
            dedup_key=f"correlation:{match.rule_id}:{match.group_key}",
            alert_ids=[match.alert_id] if match.alert_id else [],
            observables=observables,
            first_seen=match.first_seen if match.first_seen is not None else match.timestamp,
            actor="system",
            source=f"correlation:{match.rule_id}",
        )
        mode = modes.get(match.rule_id, match.response)
        if mode == "off" or match.playbook is None:
            return
        if match.playbook not in automation.playbooks:
            log.warning("playbook_unknown", rule=match.rule_id, playbook=match.playbook)
            return
        await automation.execute_containment_playbook(  # type: ignore[misc]
            incident_id, match.playbook, dry_run=mode != "on", actor="system"
        )

    return respond
