"""The running app's own dependencies: the start-up check in the background, the admin
route with the plan, the monitor alert for an imported vulnerable package (once), the
summary other parts read; no database is a 503, never a failed start-up."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from pynomaly_security import (
    AutomatedVulnerabilityAssessment,
    SecuritySettings,
    add_security_endpoints,
    setup_security_middleware,
)
from pynomaly_security.vulns.sources import OSVSource
from pynomaly_security.vulns.store import AdvisoryDB

KEY = "vulns-admin-key-0123456789abcdef0123"
HEADERS = {"X-API-Key": KEY}
# A synthetic advisory naming PyYAML (installed, and imported by the package itself).
RECORD = {
    "id": "TEST-VULN-0001",
    "aliases": ["CVE-0000-0009"],
    "summary": "synthetic advisory for the test",
    "affected": [
        {
            "package": {"ecosystem": "PyPI", "name": "pyyaml"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
        }
    ],
    "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
}


def _database(tmp_path: Path) -> Path:
    records = tmp_path / "osv"
    records.mkdir()
    (records / "TEST-VULN-0001.json").write_text(json.dumps(RECORD))
    path = tmp_path / "vulns.db"
    with AdvisoryDB(path) as db:
        db.import_sources([OSVSource(records)])
    return path


def _app(tmp_path: Path, db: Path) -> FastAPI:
    settings = SecuritySettings(
        _env_file=None,
        development_mode=True,
        admin_api_key=KEY,
        enable_audit_logging=False,
        vulns_db_path=str(db),
    )
    app = FastAPI()
    setup_security_middleware(app, settings=settings)
    add_security_endpoints(app)
    return app


@pytest.mark.anyio
async def test_own_dependencies_route_alert_and_summary(tmp_path: Path) -> None:
    """At start-up the stack checks the installed distributions in the background; the
    route shows the vulnerable imported one with its plan and every dependency; one
    alert is raised however often it is checked; the summary counts it."""
    app = _app(tmp_path, _database(tmp_path))
    stack = app.state.pynomaly_security
    async with app.router.lifespan_context(app):
        await stack.vulnerabilities.wait_started()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            assert (await client.get("/api/security/vulnerabilities")).status_code == 401
            response = await client.get("/api/security/vulnerabilities", headers=HEADERS)
            assert response.status_code == 200
            body = response.json()
            again = await client.post("/api/security/vulnerabilities/check", headers=HEADERS)
            assert again.status_code == 200
            alerts = (await client.get("/api/security/alerts", headers=HEADERS)).json()
    finding = next(f for f in body["findings"] if f["vulnerability"] == "TEST-VULN-0001")
    assert finding["package"] == "PyYAML" and finding["version"] == metadata.version("PyYAML")
    assert (finding["imported"], finding["severity"], finding["priority"]) == (
        True,
        "CRITICAL",
        "P1",
    )
    step = next(s for s in body["plan"] if s["package"] == "PyYAML")
    assert (
        step["advice"] == "no fix: mitigate or remove"
        and step["deadline_reason"] == "critical: 7 days"
    )
    deps = {d["name"].lower(): d for d in body["dependencies"]}
    assert deps["pyyaml"]["imported"] is True and deps["fastapi"]["imported"] is True
    assert body["summary"]["open_criticals"] >= 1 and body["summary"]["imported_vulnerable"] >= 1
    assert body["summary"]["last_scan_at"] is not None
    mine = [a for a in alerts["alerts"] if a["alert_type"] == "vulnerable_dependency"]
    assert len(mine) == 1 and mine[0]["threat_level"] == "critical"
    assert "PyYAML" in mine[0]["message"] and "TEST-VULN-0001" in mine[0]["message"]
    summary = stack.vulnerabilities.summary()  # the read-only view other parts read
    assert summary.counts["CRITICAL"] >= 1 and summary.to_dict()["database"] == str(
        tmp_path / "vulns.db"
    )


@pytest.mark.anyio
async def test_no_database_is_a_503_not_a_failed_start(tmp_path: Path) -> None:
    """Without an advisory database the app starts, the summary says why, the route is 503."""
    app = _app(tmp_path, tmp_path / "missing.db")
    stack = app.state.pynomaly_security
    async with app.router.lifespan_context(app):
        await stack.vulnerabilities.wait_started()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.get("/api/security/vulnerabilities", headers=HEADERS)
    assert response.status_code == 503
    assert "vulndb import" in response.json()["detail"]
    summary = stack.vulnerabilities.summary()
    assert summary.last_scan_at is None and summary.database is None
    assert summary.error is not None and "no advisory database" in summary.error


def test_assessment_interface(tmp_path: Path) -> None:
    """The public class: scan_environment, scan_path and remediation_plan."""
    assessment = AutomatedVulnerabilityAssessment(_database(tmp_path))
    scan = assessment.scan_environment()
    assert any(f.package == "PyYAML" and f.imported for f in scan.findings)
    assert assessment.remediation_plan() == scan.plan
    (tmp_path / "requirements.txt").write_text("pyyaml==6.0.1\nrequests>=2\n")
    from_file = assessment.scan_path(tmp_path / "requirements.txt")
    assert [f.vulnerability for f in from_file.findings] == ["TEST-VULN-0001"]
    assert from_file.findings[0].imported is None  # a lockfile says nothing about imports
    assert len(from_file.unpinned) == 1
    assessment.close()
