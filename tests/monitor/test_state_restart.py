"""With ``STATE_URL`` on a SQLite file, the monitor's state is durable: alerts (and
their acknowledgement), user activity and the status counters survive a restart of
the example app (issue 13: "SQLite is the zero-set-up default for durable state")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from examples.app import create_app
from pynomaly_security.settings import SecuritySettings

KEY = "test-admin-key-0123456789abcdef-restart"
ADMIN = {"X-API-Key": KEY}
ATTACK = {"q": "' OR 1=1 UNION SELECT password FROM users--"}


@asynccontextmanager
async def serving(settings: SecuritySettings) -> AsyncIterator[httpx.AsyncClient]:
    """One run of the example app: started, served in-process, stopped (which flushes)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("198.51.100.23", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def _snapshot(client: httpx.AsyncClient) -> dict[str, Any]:
    alerts = (await client.get("/api/security/alerts", headers=ADMIN)).json()["alerts"]
    status = (await client.get("/api/security/status", headers=ADMIN)).json()
    activity = (await client.get("/api/security/users/alice/activity", headers=ADMIN)).json()
    return {
        "alerts": sorted((a["alert_id"], a["alert_type"]) for a in alerts),
        "counts": (status["active_alerts_count"], status["recent_alerts"]),
        "metrics": status["recent_metrics"],
        "alice": [(a["path"], a["status_code"]) for a in activity["activities"]],
    }


@pytest.mark.anyio
async def test_monitor_state_on_sqlite_survives_a_restart(tmp_path: Path) -> None:
    """Alerts, an acknowledgement, alice's attempts and the counters written by one run
    are what the next run, on the same SQLite file, answers; its counts add to them."""
    settings = SecuritySettings(
        _env_file=None,
        admin_api_key=KEY,
        development_mode=True,
        enable_audit_logging=False,
        audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
        state_url=f"sqlite:///{tmp_path / 'state.db'}",
        sqli_edge_mode="block",  # ATTACK is SQL injection, answered 403 at the edge
    )
    async with serving(settings) as client:
        for _ in range(7):
            bad = await client.post("/login", json={"username": "alice", "password": "wrong-pw"})
            assert bad.status_code in (401, 429), bad.text
        for _ in range(3):
            assert (await client.get("/search", params=ATTACK)).status_code == 403
        before = await _snapshot(client)
        assert sorted(t for _, t in before["alerts"]) == ["brute_force", "injection_attack"]
        [injection] = [i for i, t in before["alerts"] if t == "injection_attack"]
        acked = await client.post(f"/api/security/alerts/{injection}/acknowledge", headers=ADMIN)
        assert acked.status_code == 200
        before = await _snapshot(client)
    assert before["alice"] == [("/login", 429)] * 2 + [("/login", 401)] * 5
    assert before["metrics"]["injection_attempts"] == 3

    async with serving(settings) as client:
        after = await _snapshot(client)
        assert after == before
        again = await client.post(f"/api/security/alerts/{injection}/acknowledge", headers=ADMIN)
        assert again.json()["acknowledged_at"] == acked.json()["acknowledged_at"]
        assert (await client.get("/search", params=ATTACK)).status_code == 403
        status = (await client.get("/api/security/status", headers=ADMIN)).json()
    assert status["recent_metrics"]["injection_attempts"] == 4
    assert (tmp_path / "state.db").exists()
