"""The validator against a real app: settings checks, probes, data checks, transitions."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from pynomaly_security.compliance.checks.probes import PROBE_CLIENT
from pynomaly_security.compliance.validator import ALERT_TYPE

from ._app import build, status, users

pytestmark = pytest.mark.anyio


def _control(run: dict[str, Any], key: str) -> str:
    return str(run["controls"][key])


async def test_hsts_off_fails_its_controls_within_one_run(tmp_path: Path) -> None:
    """Switching HSTS off (a live change) fails the setting check, the probe of real
    responses and every control they evidence at the next run, raises one alert and
    opens an incident."""
    _app, stack, validator = build(tmp_path)
    async with stack:
        first = await validator.run("full")
        assert status(first, "headers.hsts") == "pass"
        assert status(first, "probe.headers") == "pass"
        assert _control(first, "pci-dss/11.6.1") == "pass"
        assert stack.live is not None
        await stack.live.update(
            {"hsts_enabled": False}, expected_version=stack.live.current.version, actor="test"
        )
        second = await validator.run("full")
        assert status(second, "headers.hsts") == "fail"
        assert status(second, "probe.headers") == "fail"
        assert "HSTS missing" in str(second["results"]["probe.headers"]["observed"])
        for key in ("pci-dss/11.6.1", "nist-800-53/SC-8", "hipaa/164.312(e)(1)", "gdpr/art32"):
            assert _control(second, key) == "fail", key
        assert "nist-800-53/SC-8" in second["went_failing"]
        alerts = await stack.security_monitor.get_active_alerts(None, limit=100)
        ours = [a for a in alerts if a.alert_type == ALERT_TYPE]
        assert len(ours) == 1
        assert "headers.hsts" in ours[0].details["failing_checks"]
        assert stack.incidents is not None
        incidents = await stack.incidents.list_incidents()
        assert [i["source"] for i in incidents] == ["compliance"]
        # A third run with HSTS still off is no new transition: no second alert.
        await validator.run("cheap")
        alerts = await stack.security_monitor.get_active_alerts(None, limit=100)
        assert len([a for a in alerts if a.alert_type == ALERT_TYPE]) == 1


@pytest.mark.parametrize(
    ("setting", "value", "check_id"),
    [
        pytest.param("hsts_max_age", 86_400, "headers.hsts", id="hsts-one-day"),
        pytest.param("csp_enabled", False, "headers.csp", id="csp-off"),
        pytest.param("brute_force_max_attempts", 11, "auth.lockout", id="lockout-11"),
        pytest.param("account_max_attempts", 11, "auth.lockout", id="account-lockout-11"),
        pytest.param("lockout_duration", 1200, "auth.lockout.pci", id="lockout-20-min"),
        pytest.param("access_token_ttl", 7200, "auth.jwt", id="jwt-two-hours"),
        pytest.param("audit_retention_days", 300, "audit.retention.pci", id="retention-300d"),
        pytest.param("audit_retention_days", 2000, "audit.retention.hipaa", id="retention-hipaa"),
        pytest.param("enable_compliance_logging", False, "audit.logging", id="tagging-off"),
        pytest.param("key_rotation_days", 400, "crypto.key_age", id="rotation-400d"),
        pytest.param("detection_mode", "detect", "inspection.active", id="detect-only"),
    ],
)
async def test_a_loosened_setting_fails(
    tmp_path: Path, setting: str, value: Any, check_id: str
) -> None:
    """Thresholds are the catalogue's, not the settings': a loosened value fails."""
    extra = {"account_max_attempts": 10, "lockout_duration": 1800}
    _app, stack, validator = build(tmp_path, **{**extra, setting: value})
    async with stack:
        run = await validator.run("cheap")
    assert status(run, check_id) == "fail", run["results"][check_id]


async def test_defaults_and_evidence(tmp_path: Path) -> None:
    """Every check of the catalogue has a result with its evidence; the admin API refuses
    requests without the key; errors carry no stack trace; nothing unapplicable fails."""
    _app, stack, validator = build(tmp_path)
    async with stack:
        run = await validator.run("full")
    assert set(run["results"]) == set(validator.catalogue.checks)
    for doc in run["results"].values():
        assert doc["status"] in ("pass", "fail", "not_applicable", "error")
        assert doc["summary"] and doc["at"]
    assert status(run, "probe.admin_auth") == "pass"
    answered = run["results"]["probe.admin_auth"]["observed"]["status_without_credentials"]
    shells = set(run["results"]["probe.admin_auth"]["observed"]["page_shells"])
    assert shells <= {"/api/security/dashboard"}  # the dashboard's page holds no data
    assert answered and {s for p, s in answered.items() if p not in shells} <= {401, 403}
    assert status(run, "probe.error_bodies") == "pass"
    assert status(run, "audit.chain") == "pass", run["results"]["audit.chain"]
    assert status(run, "mfa.admins") == "not_applicable"  # no users source given
    assert status(run, "vulns.open_critical") == "not_applicable"  # no scanner configured
    assert run["audit"] is not None and len(run["audit"]["hash"]) == 64


async def test_mfa_share_of_users_and_admins(tmp_path: Path) -> None:
    """Counted from the app's users source: one admin of two without MFA fails."""
    _app, stack, validator = build(tmp_path)
    validator.sources.users = users(("u1", True, True), ("u2", True, False), ("u3", False, True))
    async with stack:
        run = await validator.run("full")
    observed = run["results"]["mfa.admins"]["observed"]
    assert (observed["total"], observed["with_mfa"], observed["without_mfa"]) == (2, 1, ["u2"])
    assert status(run, "mfa.admins") == "fail"
    assert status(run, "mfa.users") == "fail"
    assert run["controls"]["pci-dss/8.4.1"] == "fail"


async def test_vulnerability_provider(tmp_path: Path) -> None:
    """With a scanner's result, open critical findings fail; none pass."""
    from pynomaly_security.compliance import VulnerabilityFacts

    _app, stack, validator = build(tmp_path)
    found: dict[str, int] = {"critical": 1}

    async def scanner() -> VulnerabilityFacts:
        return VulnerabilityFacts(validator._clock(), dict(found), ("GHSA-xxxx",))

    validator.sources.vulnerabilities = scanner
    async with stack:
        assert status(await validator.run("full"), "vulns.open_critical") == "fail"
        found["critical"] = 0
        assert status(await validator.run("full"), "vulns.open_critical") == "pass"


async def test_edited_audit_record_fails_audit_integrity(tmp_path: Path) -> None:
    """Editing a stored audit record fails the chain check and the integrity controls."""
    _app, stack, validator = build(tmp_path)
    assert stack.audit_logger is not None
    async with stack:
        await stack.audit_logger.log_audit_event("export", "orders")
        first = await validator.run("full")
        assert status(first, "audit.chain") == "pass"
        with sqlite3.connect(tmp_path / "audit.db") as conn:
            conn.execute("UPDATE audit_records SET level = 'debug' WHERE seq = 1")
        second = await validator.run("full")
    evidence = second["results"]["audit.chain"]
    assert evidence["status"] == "fail"
    assert evidence["observed"]["problem"] == "edited"
    assert evidence["observed"]["first_bad_seq"] == 1
    for key in ("pci-dss/10.3.2", "nist-800-53/AU-9", "hipaa/164.312(c)(1)", "soc2/CC7.2"):
        assert second["controls"][key] == "fail", key


async def test_probes_leave_no_misleading_trace(tmp_path: Path) -> None:
    """Probes raise no alert, lock nothing and count against no real client; their
    access records name the validator."""
    _app, stack, validator = build(tmp_path)
    assert stack.audit_logger is not None and stack.lockouts is not None
    async with stack:
        await validator.run("full")
        await stack.security_monitor.flush(timeout=2.0)
        assert await stack.security_monitor.get_active_alerts(None, limit=100) == []
        await stack.audit_logger.flush()
        rows = await stack.audit_logger.query(event_type="http_request", limit=1000)
    assert rows and {r["source_ip"] for r in rows} == {PROBE_CLIENT[0]}
    assert {r["method"] for r in rows} == {"GET"}


async def test_schedule_runs_cheap_checks_between_full_runs(tmp_path: Path) -> None:
    """Started, the validator makes a full run, then cheap ones on its interval (polled
    with a deadline, not timed); stopping it ends the task."""
    import anyio

    _app, stack, validator = build(tmp_path, compliance_cheap_interval_seconds=1.0)
    async with stack:
        await validator.start()
        await validator.wait_first_run()
        first = await validator.latest()
        assert first is not None and first["kind"] == "full"
        for _ in range(600):  # a deadline (two minutes), not a speed check
            if validator.runs >= 2:
                break
            await anyio.sleep(0.2)
        latest = await validator.latest()
        assert latest is not None and latest["kind"] == "cheap"
        assert set(latest["checks_run"]) < set(validator.catalogue.checks)
        assert "audit.chain" not in latest["checks_run"]
        assert latest["results"]["audit.chain"] == first["results"]["audit.chain"]
        await validator.aclose()
