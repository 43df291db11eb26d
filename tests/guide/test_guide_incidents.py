"""The guide's incident response lines, verbatim (``execute_containment_playbook``
comes with the playbooks, issue 16 item 4): sync from a script, and awaited."""

from __future__ import annotations

from pathlib import Path

import pytest

from pynomaly_security import IncidentResponseAutomation, IncidentSeverity


def test_guide_creates_an_incident_from_a_script(guide_env: Path) -> None:
    """``IncidentResponseAutomation()`` reads the environment; ``create_incident`` returns
    the id at once, the incident is stored, and its creation is in the default audit
    trail and verifies."""
    # fmt: off
    incident_response = IncidentResponseAutomation()
    incident_id = incident_response.create_incident(title="SQL Injection Attack", description="Malicious SQL injection detected",  # noqa: E501 (verbatim)
                                                    severity=IncidentSeverity.HIGH, affected_assets=["web_server", "database"])  # noqa: E501
    # fmt: on
    try:
        incident = incident_response.get_incident(incident_id)
        assert incident is not None
        assert incident["title"] == "SQL Injection Attack"
        assert incident["severity"] == "high" and incident["status"] == "new"
        assert incident["affected_assets"] == ["web_server", "database"]
        incident_response.update_status(incident_id, "triaged", actor="ada")
        timeline = incident_response.get_timeline(incident_id)
        assert [e["action"] for e in timeline["entries"]] == ["created", "status"]
        assert timeline["verified"] is True, timeline["verification"]
        assert guide_env.exists()  # the default AuditLogger's database
    finally:
        incident_response.close()


@pytest.mark.anyio
async def test_guide_calls_awaited_inside_async_code(guide_env: Path) -> None:
    """Inside async code the same calls are awaited; unawaited they do nothing and say so."""
    incident_response = IncidentResponseAutomation()
    pending = incident_response.create_incident(title="x")
    with pytest.raises(RuntimeError, match="await"):
        str(pending["incident_id"])  # type: ignore[index]
    incident_id = await incident_response.create_incident(  # type: ignore[misc]
        title="SQL Injection Attack", severity="critical"
    )
    assert (await incident_response.get_incident(incident_id))["severity"] == "critical"  # type: ignore[misc]
    assert await incident_response.list_incidents() and True  # type: ignore[misc]
    await incident_response.aclose()
