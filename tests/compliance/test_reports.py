"""Reports: the routes, the formats, OSCAL's validity and stability, periods, and
``compliance verify`` against the audit trail."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from pynomaly_security.compliance.html import csp_for, to_html
from pynomaly_security.compliance.oscal import to_oscal
from pynomaly_security.compliance.report import LABEL
from tests.conftest import require

from ._app import ADMIN_KEY, build

pytestmark = pytest.mark.anyio
KEY = {"X-API-Key": ADMIN_KEY}


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://localhost", headers=KEY
    )


async def test_routes_need_the_admin_key_and_refuse_bad_input(tmp_path: Path) -> None:
    app, stack, validator = build(tmp_path)
    async with stack, _client(app) as client:
        assert (await client.get("/api/security/compliance/status")).status_code == 503
        await validator.run("full")
        anonymous = await client.get("/api/security/compliance/status", headers={"X-API-Key": ""})
        assert anonymous.status_code == 401
        r = await client.get("/api/security/compliance/report", params={"framework": "sox"})
        assert r.status_code == 404 and "pci-dss" in r.json()["detail"]
        r = await client.get(
            "/api/security/compliance/report", params={"framework": "gdpr", "format": "pdf"}
        )
        assert r.status_code == 422
        r = await client.get(
            "/api/security/compliance/report",
            params={"framework": "gdpr", "from": "2030-01-02", "to": "2030-01-01"},
        )
        assert r.status_code == 422
        status = (await client.get("/api/security/compliance/status")).json()
    assert status["label"] == LABEL
    assert set(status["frameworks"]) == {
        "gdpr", "hipaa", "soc2", "pci-dss", "iso27001", "nist-800-53"
    }  # fmt: skip
    pci = status["frameworks"]["pci-dss"]
    assert isinstance(pci["score"], float) and pci["controls"][0]["checks"]
    assert status["evidence"]["headers.hsts"]["observed"]["hsts_max_age"] == 31_536_000
    assert status["run"]["audit_head"]["seq"] >= 1


def test_status_at_start_up_is_the_start_up_run(tmp_path: Path) -> None:
    """Under the app's lifespan the first run starts by itself; the status waits for it."""
    app, _stack, validator = build(tmp_path)
    with TestClient(app, base_url="http://localhost") as client:
        r = client.get("/api/security/compliance/status", headers=KEY)
        assert r.status_code == 200
        assert r.json()["run"]["kind"] == "full"
        health = client.get("/api/security/health", headers=KEY).json()
        assert health["components"]["compliance"]["enabled"] is True
        assert health["components"]["compliance"]["scheduled"] is True
    assert validator.runs >= 1
    assert not validator.scheduled  # the lifespan's end stopped it


async def test_formats(tmp_path: Path) -> None:
    app, stack, validator = build(tmp_path)
    async with stack, _client(app) as client:
        await validator.run("full")
        got = {}
        for fmt in ("json", "html", "oscal", "csv"):
            r = await client.get(
                "/api/security/compliance/report", params={"framework": "pci-dss", "format": fmt}
            )
            assert r.status_code == 200, fmt
            got[fmt] = r
    report = got["json"].json()
    assert report["framework"] == "pci-dss" and report["label"] == LABEL
    assert report["audit_head"]["hash"] and report["run"]["digest"]
    html = got["html"]
    assert html.headers["content-security-policy"] == csp_for()
    assert "<script" not in html.text and "Evidence, not certification" in html.text
    assert f"Score: {report['score']:g}%" in html.text
    rows = list(csv.DictReader(io.StringIO(got["csv"].text)))
    assert {r["control_id"] for r in rows} == {c["id"] for c in report["controls"]}
    assert json.loads(got["oscal"].text)["assessment-results"]["metadata"]["oscal-version"]


async def test_oscal_validates_and_is_stable(tmp_path: Path) -> None:
    """Valid OSCAL 1.1 assessment results (compliance-trestle's models, generated from
    NIST's schema); two exports of one run are byte-identical."""
    require(
        importlib.util.find_spec("trestle") is not None,
        "compliance-trestle is not installed (pip install -e '.[oscal]')",
    )
    from trestle.oscal.assessment_results import Model

    _app, stack, validator = build(tmp_path)
    async with stack:
        await validator.run("full")
        for fw in validator.catalogue.frameworks:
            first = to_oscal(await validator.report(fw))
            again = to_oscal(await validator.report(fw))
            assert first == again, fw
            model = Model.parse_obj(json.loads(first))
            result = model.assessment_results.results[0]
            assert result.findings or result.reviewed_controls


async def test_period_report_tells_whether_a_control_held(tmp_path: Path) -> None:
    """History samples answer "was HSTS on throughout the period?"."""
    _app, stack, validator = build(tmp_path)
    now = [1_900_000_000.0]
    validator._clock = lambda: now[0]
    assert stack.live is not None
    async with stack:
        await validator.run("full")
        now[0] += 600
        await validator.run("cheap")
        held = await validator.report("nist-800-53", since=1_900_000_000.0, until=now[0])
        sc8 = next(c for c in held["controls"] if c["id"] == "SC-8")
        assert sc8["held_throughout"] is True
        await stack.live.update(
            {"hsts_enabled": False}, expected_version=stack.live.current.version, actor="t"
        )
        now[0] += 600
        await validator.run("cheap")
        broken = await validator.report("nist-800-53", since=1_900_000_000.0, until=now[0])
    sc8 = next(c for c in broken["controls"] if c["id"] == "SC-8")
    assert sc8["held_throughout"] is False
    assert broken["period"]["checks"]["headers.hsts"]["not_passing_at"]


def test_html_escapes_everything() -> None:
    report: dict[str, Any] = {
        "label": LABEL, "title": "<script>x</script>", "score": 50.0,
        "counts": {"pass": 1}, "waived": 0,
        "run": {"run_id": "r", "kind": "full", "at_iso": "t", "digest": "d"},
        "audit_head": None, "controls": [{
            "id": "c<1>", "title": "t", "status": "fail", "waived": False, "asvs": [],
            "checks": [{"check_id": "k", "title": "t", "status": "fail", "asvs": [],
                        "evidence": {"summary": "<img src=x onerror=alert(1)>"}}],
        }], "waivers": [],
    }  # fmt: skip
    page = to_html(report)
    assert "<script>x" not in page and "<img" not in page
