"""The guide's incident response lines, verbatim: an incident, then its containment
playbook (issue 16 item 4): sync from a script, and awaited."""

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
    response_result = incident_response.execute_containment_playbook(incident_id, "sql_injection_response")  # noqa: E501
    # fmt: on
    try:
        # The guide's incident names no address nor route: nothing to ban, nothing
        # changed, and no destination is configured for the messages; all said per step.
        assert response_result["playbook"] == "sql_injection_response"
        assert response_result["status"] == "completed" and not response_result["dry_run"]
        assert [(s["step"], s["status"]) for s in response_result["steps"]] == [
            ("ban_source", "skipped"),
            ("raise_routes", "skipped"),
            ("notify_team", "skipped"),
            ("open_ticket", "skipped"),
        ]
        assert response_result["steps"][0]["detail"] == "the incident has no ips"
        incident = incident_response.get_incident(incident_id)
        assert incident is not None
        assert incident["title"] == "SQL Injection Attack"
        assert incident["severity"] == "high" and incident["status"] == "new"
        assert incident["affected_assets"] == ["web_server", "database"]
        incident_response.update_status(incident_id, "triaged", actor="ada")
        timeline = incident_response.get_timeline(incident_id)
        assert [e["action"] for e in timeline["entries"]] == ["created"] + ["playbook_step"] * 4 + [
            "status"
        ]
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


def test_guide_playbook_bans_an_incidents_address_once(guide_env: Path) -> None:
    """Standalone, an incident with an address: the playbook bans it (one decision,
    verified), a second run is ``already_done``, a dry run of another plans only."""
    incident_response = IncidentResponseAutomation()
    try:
        incident_id = incident_response.create_incident(
            title="SQL Injection Attack", observables={"ips": ["203.0.113.9"]}
        )
        run = incident_response.execute_containment_playbook
        first = run(incident_id, "sql_injection_response")
        ban = first["steps"][0]
        assert ban["status"] == "done" and ban["verified"] is True
        again = run(incident_id, "sql_injection_response")
        assert again["steps"][0]["status"] == "already_done"
        assert again["steps"][0]["results"] == ban["results"]
        plan = incident_response.execute_containment_playbook(
            incident_id, "scanner_response", dry_run=True
        )
        assert plan["steps"][0]["status"] == "planned"
        assert incident_response.get_incident(incident_id)["status"] == "contained"
    finally:
        incident_response.close()
