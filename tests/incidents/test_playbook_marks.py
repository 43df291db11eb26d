"""Playbook done marks and the rate guardrail on SQL state without ``REDIS_URL``
(issue 16): two automations on one SQLite state, as two workers of one app, share
them, so a step runs once and the rate counts both (``incidents/marks.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pynomaly_security import IncidentResponseAutomation
from pynomaly_security.settings import SecuritySettings

LIMITED = {
    "name": "limited_ban",
    "max_actions_per_minute": 1,
    "steps": [{"id": "ban", "action": "decision", "params": {"scope": "ip", "action": "ban"}}],
}


def _fixed() -> float:
    return 1_000_020.0  # one minute for both "workers": the rate window is shared


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[tuple[IncidentResponseAutomation, ...]]:
    settings = SecuritySettings(
        _env_file=None,
        enable_audit_logging=False,
        state_url=f"sqlite:///{tmp_path / 'state.db'}",
    )
    pair = tuple(IncidentResponseAutomation(settings, clock=_fixed) for _ in range(2))
    for automation in pair:
        automation.playbooks.add(LIMITED)
    try:
        yield pair
    finally:
        for automation in pair:
            automation.close()


def test_a_step_run_on_two_workers_is_done_once(
    workers: tuple[IncidentResponseAutomation, ...],
) -> None:
    """The first worker bans; the second, sharing only the SQL state, answers
    ``already_done`` with the first's decision."""
    first, second = workers
    incident_id = first.create_incident("Injection", observables={"ips": ["203.0.113.5"]})
    done = first.execute_containment_playbook(incident_id, "sql_injection_response")
    assert done["steps"][0]["status"] == "done", done
    again = second.execute_containment_playbook(incident_id, "sql_injection_response")
    assert again["steps"][0]["status"] == "already_done"
    assert again["steps"][0]["results"] == done["steps"][0]["results"]


def test_the_rate_guardrail_counts_both_workers(
    workers: tuple[IncidentResponseAutomation, ...],
) -> None:
    """At one action a minute, the second worker's change in the same minute is refused
    (``rate_limited``), and the refused step can run again later (its mark released)."""
    first, second = workers
    one = first.create_incident("One", observables={"ips": ["203.0.113.6"]})
    two = second.create_incident("Two", observables={"ips": ["203.0.113.7"]})
    assert first.execute_containment_playbook(one, "limited_ban")["steps"][0]["status"] == "done"
    refused = second.execute_containment_playbook(two, "limited_ban")["steps"][0]
    assert refused["status"] == "refused" and refused["code"] == "rate_limited"
    second.clock = lambda: _fixed() + 60  # the next minute
    assert second.execute_containment_playbook(two, "limited_ban")["steps"][0]["status"] == "done"
