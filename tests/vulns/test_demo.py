"""The example app (``make demo``) shows its own dependencies at /api/security/vulnerabilities."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from examples.app import create_app
from examples.vulndb import ensure_demo_database
from pynomaly_security import SecuritySettings

KEY = "demo-vulns-admin-key-0123456789abcdef"


@pytest.mark.anyio
async def test_demo_shows_its_own_dependencies(tmp_path: Path) -> None:
    """The demo's database (shared advisories when present, plus the demonstration
    record) is built once; the example lists its installed and imported distributions,
    the demonstration finding on pyotp (imported by the example) and its plan."""
    db = tmp_path / "demo-vulns.db"
    assert "records from" in ensure_demo_database(db)
    assert "kept from an earlier run" in ensure_demo_database(db)
    settings = SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        admin_api_key=KEY,
        development_mode=True,
        audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
        vulns_db_path=str(db),
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.get("/api/security/vulnerabilities", headers={"X-API-Key": KEY})
    assert response.status_code == 200
    body = response.json()
    names = {d["name"].lower(): d["imported"] for d in body["dependencies"]}
    assert names["fastapi"] is True and names["pyotp"] is True
    demo = next(f for f in body["findings"] if f["vulnerability"] == "DEMO-2026-0001")
    assert demo["package"].lower() == "pyotp" and demo["imported"] is True
    step = next(s for s in body["plan"] if s["package"].lower() == "pyotp")
    assert step["advice"] == "no fix: mitigate or remove" and step["severity"] == "MEDIUM"
