"""The example app's deliberately vulnerable routes (``examples/vulnerable.py``),
attacked over HTTP with the edge inspection in detect mode so that only the SQL
sink stands between the payload and SQLite: every classic payload, encoded or
not, is answered 403 and never runs; the same routes with the sink off are
exploitable (so these tests can fail); hostile values as bound parameters, and
odd values that stay inside their literal, pass."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from examples.app import create_app
from examples.vulnerable import DEMO_USERS_TABLE
from pynomaly_security import SecuritySettings

SECRETS = {row[3] for row in DEMO_USERS_TABLE}


@asynccontextmanager
async def serve(
    tmp_path: Path, **overrides: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    settings = SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        admin_api_key="test-admin-key-0123456789abcdef",
        development_mode=True,
        audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
        detection_mode="detect",  # the edge only reports: the sink must stop these
        **overrides,
    )
    app = create_app(settings, demo_vulnerable=True)
    transport = httpx.ASGITransport(app=app, client=("198.51.100.23", 40000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        yield app, client


# Raw request targets (sent as written: the encodings are the point).
PAYLOADS = [
    # -- string context: /demo/users?name=
    pytest.param("/demo/users?name=%27%20OR%20%271%27%3D%271", id="tautology"),
    pytest.param("/demo/users?name=x%27%20OR%201%3D1--", id="tautology-comment"),
    pytest.param("/demo/users?name=alice%27--", id="comment-truncation"),
    pytest.param("/demo/users?name=x%27%20UNION%20SELECT%20id%2C%20secret%2C%20email%20FROM%20users--",
                 id="union"),
    pytest.param("/demo/users?name=x%27%3B%20DROP%20TABLE%20users--", id="stacked"),
    pytest.param("/demo/users?name=x%27%2F%2A%2A%2FOR%2F%2A%2A%2F1%3D1--", id="comment-obfuscated"),
    pytest.param("/demo/users?name=x%27%20OR%201%3CLENGTH%28HEX%28RANDOMBLOB%2850000%29%29%29--",
                 id="time-based-heavy-query"),
    pytest.param("/demo/users?name=alice%27%20AND%20substr%28%28SELECT%20secret%20FROM%20users"
                 "%20LIMIT%201%29%2C1%2C1%29%3D%27s", id="boolean-blind"),
    pytest.param("/demo/users?name=x%27%20OR%20json%28%28SELECT%20secret%20FROM%20users%20LIMIT%201"
                 "%29%29--", id="error-based"),
    pytest.param("/demo/users?name=1%27", id="quote-probe"),
    pytest.param("/demo/users?name=x%27+oR+%27a%27%3D%27a", id="plus-spaces-mixed-case"),
    # -- numeric context: /demo/users/by-id/{id}
    pytest.param("/demo/users/by-id/1%20OR%201%3D1", id="numeric-tautology"),
    pytest.param("/demo/users/by-id/0%20UNION%20SELECT%201%2Csecret%2C3%20FROM%20users",
                 id="numeric-union"),
    pytest.param("/demo/users/by-id/1%3BDELETE%20FROM%20users", id="numeric-stacked"),
    pytest.param("/demo/users/by-id/1%22", id="numeric-double-quote-probe"),
    pytest.param("/demo/users/by-id/-1%20OR%202%3E1", id="numeric-signed"),
    # -- encodings the app decodes itself: /demo/users/legacy unquotes and NFKC-folds
    pytest.param("/demo/users/legacy?name=%2527%2520OR%2520%25271%2527%253D%25271",
                 id="double-url-encoded"),
    pytest.param("/demo/users/legacy?name=%EF%BC%87%20OR%20%EF%BC%871%EF%BC%87%3D%EF%BC%871",
                 id="unicode-fullwidth-quotes"),
]


@pytest.mark.anyio
async def test_payloads_are_stopped_at_the_sink(tmp_path: Path) -> None:
    """Every payload is answered 403 request_blocked with the request id, and no
    answer carries a row (one app for the table: its start-up signs up users)."""
    answers = {}
    async with serve(tmp_path) as (_, client):
        for param in PAYLOADS:
            (target,) = param.values
            answers[param.id] = await client.get(str(target))
    passed = {name: r.text for name, r in answers.items() if r.status_code != 403}
    assert passed == {}
    for response in answers.values():
        body = response.json()
        assert body["error"] == "request_blocked" and len(body["request_id"]) == 32


@pytest.mark.anyio
async def test_json_body_with_unicode_escapes_is_stopped(tmp_path: Path) -> None:
    """A JSON field written with \\u escapes is the decoded value by the time it
    is pasted into SQL: the sink compares what the app read."""
    raw = b'{"name": "\\u0027 OR \\u00271\\u0027=\\u00271"}'
    async with serve(tmp_path) as (_, client):
        response = await client.post(
            "/demo/users/search", content=raw, headers={"content-type": "application/json"}
        )
        ok = await client.post("/demo/users/search", json={"name": "bob"})
    assert response.status_code == 403
    assert ok.status_code == 200 and [r["name"] for r in ok.json()] == ["bob"]


@pytest.mark.anyio
async def test_without_the_sink_the_routes_are_exploitable(tmp_path: Path) -> None:
    """Protection off: the same requests reach SQLite, so the tests above can fail.
    Nobody is named like a payload: a row means it changed the statement, a 500
    that it broke it (what a scanner learns from)."""
    harmless = {}
    async with serve(tmp_path, sql_injection_protection=False) as (_, client):
        for param in PAYLOADS:
            (target,) = param.values
            response = await client.get(str(target))
            changed = response.status_code == 200 and response.json()
            if not (response.status_code == 500 or changed):
                harmless[param.id] = (response.status_code, response.text)
    assert harmless == {}


@pytest.mark.anyio
async def test_union_without_the_sink_reads_the_secrets(tmp_path: Path) -> None:
    """The proof in one request: UNION returns every user's secret."""
    target = "/demo/users?name=x%27%20UNION%20SELECT%20id%2C%20secret%2C%20email%20FROM%20users--"
    async with serve(tmp_path, sql_injection_protection=False) as (_, client):
        leaked = {row["name"] for row in (await client.get(target)).json()}
    async with serve(tmp_path) as (_, client):
        blocked = await client.get(target)
    assert leaked == SECRETS
    assert blocked.status_code == 403


HOSTILE_LOOKING = [
    "' OR '1'='1",
    "x' UNION SELECT id, secret, email FROM users--",
    "1; DROP TABLE users",
    "admin'--",
    "\\' OR 1=1 #",
    "\uff07 OR \uff071\uff07=\uff071",  # full-width apostrophes
]


@pytest.mark.anyio
@pytest.mark.parametrize("value", HOSTILE_LOOKING)
async def test_parameterized_queries_with_hostile_values_pass(tmp_path: Path, value: str) -> None:
    """The fixed route binds the value as a parameter: no false positive, whatever
    it looks like (and it finds nobody)."""
    async with serve(tmp_path) as (_, client):
        response = await client.get("/demo/users-safe", params={"name": value})
    assert response.status_code == 200 and response.json() == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    "value",
    ["alice", "SELECT * FROM users", "1=1 or maybe not", "-- not a comment here", 'say "hi"',
     "50% off; today only", "C:\\temp\\x", "x/**/y"],
)
async def test_odd_values_inside_their_literal_pass(tmp_path: Path, value: str) -> None:
    """Pasted between quotes, a value with no quote stays one string token: even the
    vulnerable route runs it (the sink judges structure, not words)."""
    async with serve(tmp_path) as (_, client):
        response = await client.get("/demo/users", params={"name": value})
    assert response.status_code == 200
    assert [r["name"] for r in response.json()] == (["alice"] if value == "alice" else [])


@pytest.mark.anyio
async def test_a_blocked_statement_is_audited_without_the_value(tmp_path: Path) -> None:
    """The audit trail holds an injection_attempt from the sink: the statement's
    shape with the value replaced, the field, the reason; never the payload."""
    payload = "x' UNION SELECT id, secret, email FROM users--"
    async with serve(tmp_path) as (app, client):
        response = await client.get("/demo/users", params={"name": payload})
        audit = app.state.pynomaly_security.audit_logger
        records = await audit.query(event_type="injection_attempt", limit=50)
    sink = [r for r in records if r["details"].get("sink")]
    assert len(sink) == 1
    details = sink[0]["details"]
    assert sink[0]["request_id"] == response.json()["request_id"]
    assert details["blocked"] is True and details["status_code"] == 403
    finding = details["findings"][0]
    assert finding["field"] == "query.name" and finding["reason"] == "spans_tokens"
    assert finding["shape"] == "SELECT id, name, email FROM users WHERE name = '[value]'"
    assert "UNION" not in repr(sink)


@pytest.mark.anyio
async def test_detect_mode_lets_it_run_and_reports(tmp_path: Path) -> None:
    """SQL_INJECTION_MODE=detect: the statement runs (the demo leaks), and the
    audit trail has the finding, not blocked."""
    target = "/demo/users?name=%27%20OR%20%271%27%3D%271"
    async with serve(tmp_path, sql_injection_mode="detect") as (app, client):
        response = await client.get(target)
        records = await app.state.pynomaly_security.audit_logger.query(
            event_type="injection_attempt", limit=50
        )
    assert response.status_code == 200 and len(response.json()) == len(DEMO_USERS_TABLE)
    sink = [r for r in records if r["details"].get("sink")]
    assert len(sink) == 1 and sink[0]["details"]["blocked"] is False
