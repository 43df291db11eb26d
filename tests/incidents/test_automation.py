"""IncidentResponseAutomation over every state backend (memory, SQLite, Redis,
PostgreSQL), two "workers" (each its own registry and connection) against one
state: a dedup key gives one incident under concurrency, a status change lands
once, and every change is an audit record of the timeline. The lifecycle table."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pynomaly_security import IncidentResponseAutomation, IncidentSeverity, IncidentStatus
from pynomaly_security.audit import AuditLogger
from pynomaly_security.incidents.model import TRANSITIONS, InvalidTransition
from pynomaly_security.settings import SecuritySettings
from pynomaly_security.storage import StorageRegistry
from tests.audit.conftest import make_settings
from tests.storage.test_monitor_state import STATE_BACKENDS


@pytest.fixture(params=STATE_BACKENDS)
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state-incmodel.db'}"
    if request.param == "redis":
        return str(request.getfixturevalue("redis_db"))
    return str(request.getfixturevalue("postgres_schema"))


@pytest.fixture
async def audit(tmp_path: Path) -> AsyncIterator[AuditLogger]:
    logger = AuditLogger.from_settings(make_settings(f"sqlite:///{tmp_path / 'audit.db'}"))
    await logger.start()
    yield logger
    await logger.aclose()


@pytest.fixture
async def workers(
    state_url: str, audit: AuditLogger
) -> AsyncIterator[tuple[IncidentResponseAutomation, IncidentResponseAutomation]]:
    """Two automations on one state, each through its own registry (memory: one store,
    as one process alone sees it)."""
    settings = SecuritySettings(_env_file=None, development_mode=True)
    options = {"key_prefix": "incmodel:"} if state_url.startswith("redis") else {}
    async with StorageRegistry() as one, StorageRegistry() as two:
        first = one.state(state_url, **options)
        second = first if state_url == "memory://" else two.state(state_url, **options)
        for state in {id(first): first, id(second): second}.values():
            start = getattr(state, "start", None)
            if start is not None:
                await start()
        yield (
            IncidentResponseAutomation(settings, state=first, audit_logger=audit),
            IncidentResponseAutomation(settings, state=second, audit_logger=audit),
        )


@pytest.mark.anyio
async def test_one_dedup_key_created_at_once_by_two_workers_is_one_incident(
    workers: tuple[IncidentResponseAutomation, IncidentResponseAutomation],
) -> None:
    """Ten creations of one dedup key from two workers at once: one incident, ten
    occurrences, every alert linked, one ``created`` and nine ``recurred`` entries."""
    a, b = workers
    ids = await asyncio.gather(
        *(
            (a if n % 2 else b).create_incident(
                "Brute force", dedup_key="bf:198.51.100.1", alert_ids=[f"al{n}"],
                observables={"ips": ["198.51.100.1"]},
            )
            for n in range(10)
        )
    )  # fmt: skip
    assert len(set(ids)) == 1
    incidents = await a.list_incidents()
    assert len(incidents) == 1
    incident = incidents[0]
    assert incident["occurrences"] == 10
    assert sorted(incident["alert_ids"]) == sorted(f"al{n}" for n in range(10))
    assert incident["observables"]["ips"] == ["198.51.100.1"]
    timeline = await b.get_timeline(ids[0])
    actions = [e["action"] for e in timeline["entries"]]
    assert actions.count("created") == 1 and actions.count("recurred") == 9
    assert timeline["verified"] is True


@pytest.mark.anyio
async def test_a_status_change_lands_once_under_concurrency(
    workers: tuple[IncidentResponseAutomation, IncidentResponseAutomation],
) -> None:
    """Two workers triaging one new incident at once: one moves it, the other is told
    the move is no longer allowed (naming both states); notes from both all land."""
    a, b = workers
    incident_id = await a.create_incident("x", severity=IncidentSeverity.LOW)
    results = await asyncio.gather(
        a.update_status(incident_id, "triaged"),
        b.update_status(incident_id, "triaged"),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, InvalidTransition)]
    assert len(refused) == 1 and "'triaged' to 'triaged'" in str(refused[0])
    await asyncio.gather(*((a, b)[n % 2].add_note(incident_id, f"n{n}") for n in range(6)))
    incident = await b.get_incident(incident_id)
    assert incident is not None and incident["status"] == "triaged"
    assert sorted(n["text"] for n in incident["notes"]) == [f"n{n}" for n in range(6)]
    assert len(incident["timeline"]) == 1 + 1 + 6


def test_the_lifecycle_table() -> None:
    """The main path moves forward only; closed states only reopen to triaged; any case
    is accepted for status and severity."""
    path = ["new", "triaged", "contained", "eradicated", "recovered", "closed"]
    for current, nxt in itertools.pairwise(path):
        assert IncidentStatus(nxt) in TRANSITIONS[IncidentStatus(current)]
    for status in ("closed", "false_positive", "duplicate"):
        assert TRANSITIONS[IncidentStatus(status)] == {IncidentStatus.TRIAGED}
    assert IncidentStatus.NEW not in {s for t in TRANSITIONS.values() for s in t}
    assert IncidentStatus("FALSE-POSITIVE") is IncidentStatus.FALSE_POSITIVE
    assert IncidentSeverity("Critical") is IncidentSeverity.CRITICAL
    with pytest.raises(ValueError):
        IncidentSeverity("urgent")
