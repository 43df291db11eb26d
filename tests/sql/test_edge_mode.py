"""SQLI_EDGE_MODE (issue 15, item 4): with the SQL sink blocking, SQL injection found
at the edge is sink-confirmed (reported, passed on, blocked at the statement it would
change); without the sink, or with ``block``, the edge blocks it; ``detect`` never
blocks it at the edge. Other families, alone or mixed with SQL injection, are
blocked at the edge in every mode."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from examples.app import create_app
from pynomaly_security import ConfigurationError, SecuritySettings
from pynomaly_security.settings import load_settings

KEY = "test-admin-key-0123456789abcdef"
ADMIN = {"X-API-Key": KEY}
SQLI = "x' UNION SELECT id, secret, email FROM users--"
XSS = "<script>alert(document.cookie)</script>"
MIXED = "x' UNION SELECT id FROM users-- <script>alert(1)</script>"


@asynccontextmanager
async def serve(
    tmp_path: Path, *, warm: bool = False, **overrides: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The example app; ``warm``: after one plain request whose statement went through
    the hooked driver (what ``auto`` waits for before it leaves SQL injection to the sink)."""
    settings = SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        admin_api_key=KEY,
        development_mode=True,
        audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
        **overrides,
    )
    app = create_app(settings, demo_vulnerable=True)
    transport = httpx.ASGITransport(app=app, client=("198.51.100.23", 40000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        if warm:
            warmed = await client.get("/demo/users-safe", params={"name": "alice"})
            assert warmed.status_code == 200
        yield app, client


async def attempts(app: FastAPI, request_id: str) -> dict[str, dict[str, Any]]:
    """The request's injection_attempt records: ``edge`` (inspection) and ``sink``."""
    records = await app.state.pynomaly_security.audit_logger.query(
        event_type="injection_attempt", limit=50
    )
    mine = [r["details"] for r in records if r["request_id"] == request_id]
    return {("sink" if d.get("sink") else "edge"): d for d in mine}


@pytest.mark.anyio
async def test_auto_with_the_sink_passes_sql_injection_to_a_safe_query(tmp_path: Path) -> None:
    """Default settings: the parameterized route gets the value and answers 200; the edge
    recorded it as sink-confirmed, not blocked."""
    async with serve(tmp_path, warm=True) as (app, client):
        response = await client.get("/demo/users-safe", params={"name": SQLI})
        found = await attempts(app, response.headers["x-request-id"])
    assert response.status_code == 200 and response.json() == []
    assert found["edge"]["sink_confirmed"] is True and found["edge"]["blocked"] is False
    assert "sqli" in found["edge"]["families"] and "sink" not in found


@pytest.mark.anyio
async def test_auto_with_the_sink_blocks_at_the_statement(tmp_path: Path) -> None:
    """On the vulnerable route the same value reaches the statement: the sink answers
    403 and the audit trail has both the edge's and the sink's record."""
    async with serve(tmp_path, warm=True) as (app, client):
        response = await client.get("/demo/users", params={"name": SQLI})
        found = await attempts(app, response.json()["request_id"])
    assert response.status_code == 403 and response.json()["error"] == "request_blocked"
    assert found["edge"]["sink_confirmed"] is True and found["edge"]["blocked"] is False
    assert found["sink"]["blocked"] is True


@pytest.mark.anyio
@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"sql_injection_protection": False}, id="sink-off"),
        pytest.param({"sql_injection_mode": "detect"}, id="sink-detect-only"),
        pytest.param({"sqli_edge_mode": "block"}, id="block"),
    ],
)
async def test_the_edge_blocks_without_a_blocking_sink_or_in_block_mode(
    tmp_path: Path, overrides: dict[str, Any]
) -> None:
    """Without the sink in block mode (auto), or with SQLI_EDGE_MODE=block, SQL injection
    is answered 403 at the edge, even on the route that would have been safe."""
    async with serve(tmp_path, **overrides) as (app, client):
        response = await client.get("/demo/users-safe", params={"name": SQLI})
        found = await attempts(app, response.json()["request_id"])
    assert response.status_code == 403
    assert found["edge"]["blocked"] is True and found["edge"]["sink_confirmed"] is False


@pytest.mark.anyio
async def test_detect_mode_never_blocks_sql_injection_at_the_edge(tmp_path: Path) -> None:
    """SQLI_EDGE_MODE=detect: reported, not blocked, not sink-confirmed; with the sink
    off too, the safe route answers."""
    async with serve(tmp_path, sqli_edge_mode="detect", sql_injection_protection=False) as (
        app,
        client,
    ):
        response = await client.get("/demo/users-safe", params={"name": SQLI})
        found = await attempts(app, response.headers["x-request-id"])
    assert response.status_code == 200
    assert found["edge"]["blocked"] is False and found["edge"]["sink_confirmed"] is False


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "detect"])
@pytest.mark.parametrize(
    "value", [pytest.param(XSS, id="xss"), pytest.param(MIXED, id="sqli-and-xss")]
)
async def test_other_families_are_blocked_at_the_edge(
    tmp_path: Path, mode: str, value: str
) -> None:
    """XSS, alone or in the same value as SQL injection, is blocked at the edge whatever
    SQLI_EDGE_MODE says: the sink sees SQL, not markup."""
    async with serve(tmp_path, sqli_edge_mode=mode) as (app, client):
        response = await client.get("/demo/users-safe", params={"name": value})
        found = await attempts(app, response.json()["request_id"])
    assert response.status_code == 403
    assert found["edge"]["blocked"] is True and found["edge"]["sink_confirmed"] is False
    assert "xss" in found["edge"]["families"]


@pytest.mark.anyio
async def test_sqli_and_xss_in_two_fields_are_blocked_at_the_edge(tmp_path: Path) -> None:
    """A request with SQL injection in one field and XSS in another is blocked here."""
    async with serve(tmp_path) as (_, client):
        response = await client.get("/demo/users-safe", params={"name": SQLI, "note": XSS})
    assert response.status_code == 403


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param({"warm": True}, "sink_confirmed", id="auto-sink-on"),
        pytest.param({}, "block", id="auto-sink-on-no-statement-yet"),
        pytest.param({"sql_injection_protection": False}, "block", id="auto-sink-off"),
        pytest.param({"sqli_edge_mode": "block"}, "block", id="block"),
        pytest.param({"sqli_edge_mode": "detect"}, "detect", id="detect"),
    ],
)
async def test_status_shows_the_effective_mode(
    tmp_path: Path, overrides: dict[str, Any], expected: str
) -> None:
    """/api/security/status reports sqli_edge: what auto resolved to for this app."""
    async with serve(tmp_path, **overrides) as (_, client):
        status = (await client.get("/api/security/status", headers=ADMIN)).json()
    assert status["sqli_edge"] == expected


@pytest.mark.anyio
async def test_auto_blocks_at_the_edge_until_the_sink_has_seen_a_statement(
    tmp_path: Path,
) -> None:
    """An app whose driver is not hooked (a plain sqlite3.connect) would get nothing
    from the sink: until a hooked driver has checked one of the app's statements,
    auto keeps blocking SQL injection at the edge; then it leaves it to the sink."""
    async with serve(tmp_path) as (_, client):
        before = await client.get("/demo/users-safe", params={"name": SQLI})
        plain = await client.get("/demo/users-safe", params={"name": "alice"})
        after = await client.get("/demo/users-safe", params={"name": SQLI})
    assert before.status_code == 403 and before.json()["error"] == "request_blocked"
    assert plain.status_code == 200
    assert after.status_code == 200 and after.json() == []


@pytest.mark.anyio
async def test_the_alert_says_it_was_passed_to_the_sink(tmp_path: Path) -> None:
    """The injection alert of a sink-confirmed request is HIGH (guarded), not CRITICAL."""
    async with serve(tmp_path, warm=True) as (_, client):
        await client.get("/demo/users-safe", params={"name": SQLI})
        alerts = (await client.get("/api/security/alerts", headers=ADMIN)).json()["alerts"]
    [alert] = [a for a in alerts if a["alert_type"] == "injection_attack"]
    assert alert["threat_level"] == "high" and "passed to the SQL sink" in alert["message"]
    assert alert["details"]["sink_confirmed"] is True


def test_the_environment_names_the_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """PYNOMALY_SECURITY__SQLI_EDGE_MODE sets it; a bad value fails naming the variable."""
    monkeypatch.setenv("PYNOMALY_SECURITY__SQLI_EDGE_MODE", "detect")
    assert load_settings(development_mode=True).sqli_edge_mode == "detect"
    assert SecuritySettings(_env_file=None).sqli_edge_mode == "detect"  # type: ignore[call-arg]
    monkeypatch.setenv("PYNOMALY_SECURITY__SQLI_EDGE_MODE", "sink")
    with pytest.raises(ConfigurationError, match="SQLI_EDGE_MODE"):
        load_settings(development_mode=True)
