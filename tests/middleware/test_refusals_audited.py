"""Every refusal the assembled stack answers itself (a cap of inspection, an
unknown Host, a rate limit, a lockout, a busy hashing pool) is a 4xx/503 and a
``request_refused`` record in the audit trail, read back from the audit
database: its reason code and status, the path bounded, never the body. A
refusal a flood repeats (rate limits, lockouts, busy) is recorded once per
client and reason per window, not once per request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import Depends, FastAPI

from examples.app import create_app
from pynomaly_security import SecuritySettings
from pynomaly_security.auth import RouteRateLimit

KEY = "test-admin-key-0123456789abcdef"
IP = "198.51.100.23"


@asynccontextmanager
async def _serve(
    tmp_path: Path, **overrides: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    settings = SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        admin_api_key=KEY,
        development_mode=True,
        audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
        **overrides,
    )
    app = create_app(settings)

    @app.post("/reset", dependencies=[Depends(RouteRateLimit("1/minute"))])
    async def reset() -> dict[str, bool]:
        return {"sent": True}

    transport = httpx.ASGITransport(app=app, client=(IP, 40000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        yield app, client


async def _records(app: FastAPI, event_type: str) -> list[dict[str, Any]]:
    audit = app.state.pynomaly_security.audit_logger
    return await audit.query(event_type=event_type, limit=500)  # type: ignore[no-any-return]


def _refusals(records: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(r["details"]["reason"], r["details"]["status_code"]) for r in records]


@pytest.mark.anyio
async def test_inspection_refusals_are_audited_as_refusals(tmp_path: Path) -> None:
    """Each inspection cap (fields, headers, size, encoding, framing, JSON the app
    cannot use, a slow body) is one request_refused record with its reason and
    status; a blocked attack stays an injection_attempt; no record holds the body."""
    async with _serve(
        tmp_path,
        inspection_max_fields=50,
        inspection_max_headers=30,
        max_input_length=4096,
        body_read_timeout=0.05,
    ) as (app, client):
        json_type = {"content-type": "application/json"}
        answers = [
            await client.post(
                "/items", content=b'{"name": "Lamp", "price": NaN}', headers=json_type
            ),
            await client.get("/search?" + "&".join(f"p{i}=v" for i in range(60))),
            await client.post(
                "/items",
                content=b'{"name": "Lamp", "price": 1}',
                headers=[("content-type", "application/json"), ("content-type", "text/plain")],
            ),
            await client.post(
                "/items",
                content=b"\x1f\x8b compressed Lamp",
                headers={**json_type, "content-encoding": "gzip"},
            ),
            await client.get("/items", headers={f"x-h{i}": "v" for i in range(40)}),
            await client.post(
                "/items", content=b'{"name": "' + b"Lamp" * 2000 + b'"}', headers=json_type
            ),
        ]

        async def slow_body() -> AsyncIterator[bytes]:
            yield b'{"name": "Lamp", '
            await asyncio.Event().wait()  # the outside world: a client that stalls
            yield b"}"  # pragma: no cover

        answers.append(await client.post("/items", content=slow_body(), headers=json_type))
        answers.append(await client.get("/search?q=x", headers={"user-agent": "a" * 70_000}))
        attack = await client.get("/search", params={"q": "<script>alert(1)</script>"})

        expected = [
            ("json_non_finite", 400),
            ("too_many_fields", 413),
            ("ambiguous_content_type", 400),
            ("content_encoding_unsupported", 415),
            ("too_many_headers", 431),
            ("request_too_large", 413),
            ("body_read_timeout", 408),
            ("headers_too_large", 431),
        ]
        assert [(a.json()["error"], a.status_code) for a in answers] == expected
        assert attack.status_code == 403
        refused = await _records(app, "request_refused")
        assert _refusals(refused) == expected
        assert [r["message"] for r in refused] == ["request refused"] * len(expected)
        assert [r["request_id"] for r in refused] == [a.headers["x-request-id"] for a in answers]
        assert all(r["source_ip"] == IP for r in refused)
        assert "Lamp" not in repr(refused)  # bodies are never recorded
        attempts = await _records(app, "injection_attempt")
        assert len(attempts) == 1 and attempts[0]["details"]["blocked"] is True
        assert "reason" not in attempts[0]["details"]


@pytest.mark.anyio
async def test_an_unknown_host_is_audited_once_per_client_and_window(tmp_path: Path) -> None:
    """Requests for a host the app is not get 400; the first is recorded (its path
    escaped), the repeats within the window are counted on the next record, not
    written each."""
    async with _serve(tmp_path) as (app, client):
        for _ in range(3):
            refused = await client.get("/items%0a%1b[31m", headers={"host": "evil.example"})
            assert refused.status_code == 400 and refused.json()["error"] == "invalid_host"
        assert (await client.get("/items")).status_code == 200
        records = await _records(app, "request_refused")
        assert _refusals(records) == [("invalid_host", 400)]
        assert records[0]["details"]["repeats"] == 0
        assert records[0]["details"]["path"] == "/items\\n\\x1b[31m"  # escaped
        assert "evil.example" not in repr(records)


@pytest.mark.anyio
async def test_rate_limit_refusals_are_audited_once_per_window(tmp_path: Path) -> None:
    """A 429 of the global rate limit and of the sign-up limit each leave a
    request_refused record; a flood of them leaves one per client, reason and
    window."""
    async with _serve(tmp_path, rate_limits=["3/minute"], rate_limit_exempt_paths=["/signup"]) as (
        app,
        client,
    ):
        statuses = [(await client.get("/health")).status_code for _ in range(8)]
        assert statuses == [200] * 3 + [429] * 5
        assert _refusals(await _records(app, "request_refused")) == [("rate_limited", 429)]

    (tmp_path / "signup").mkdir()
    async with _serve(tmp_path / "signup") as (app, client):
        signups = [
            (await client.post("/signup", json={"username": f"u{i}", "password": "x"})).status_code
            for i in range(7)
        ]
        assert signups[-2:] == [429, 429]
        records = await _records(app, "request_refused")
        assert _refusals(records) == [("rate_limited", 429)]
        assert records[0]["details"]["path"] == "/signup"


@pytest.mark.anyio
async def test_route_rate_limit_refusal_is_audited(tmp_path: Path) -> None:
    """A RouteRateLimit dependency's 429 is a request_refused record too."""
    async with _serve(tmp_path) as (app, client):
        assert [(await client.post("/reset")).status_code for _ in range(2)] == [200, 429]
        records = await _records(app, "request_refused")
        assert _refusals(records) == [("rate_limited", 429)]
        assert records[0]["details"]["path"] == "/reset"


@pytest.mark.anyio
async def test_a_locked_login_is_audited(tmp_path: Path) -> None:
    """Wrong passwords until the lockout answers 429: the failures are login_failure
    records, the lockout's refusal a request_refused record."""
    async with _serve(tmp_path) as (app, client):
        statuses = [
            (
                await client.post("/login", json={"username": "alice", "password": "nope"})
            ).status_code
            for _ in range(8)
        ]
        assert 401 in statuses and statuses[-1] == 429
        assert len(await _records(app, "login_failure")) == statuses.count(401)
        assert _refusals(await _records(app, "request_refused")) == [
            ("too_many_login_attempts", 429)
        ]


@pytest.mark.anyio
async def test_busy_hashing_is_audited(tmp_path: Path) -> None:
    """Logins beyond the hashing pool get 503 and a request_refused record."""
    async with _serve(
        tmp_path, password_hash_concurrency=1, password_hash_queue=0, auth_rate_limits_enabled=False
    ) as (app, client):
        answers = await asyncio.gather(
            *(
                client.post("/login", json={"username": "alice", "password": "wrong-password"})
                for _ in range(4)
            )
        )
        assert 503 in [a.status_code for a in answers]
        assert _refusals(await _records(app, "request_refused")) == [("hashing_busy", 503)]


@pytest.mark.anyio
async def test_a_slow_login_body_is_refused_408_and_audited(tmp_path: Path) -> None:
    """A login body that never finishes arriving is answered 408 body_read_timeout
    by the assembled stack (the layer reading the user name waits no longer than
    BODY_READ_TIMEOUT, here tiny), recorded as a refused request in the audit trail,
    and counted as a blocked request by the monitor."""
    settings = SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        admin_api_key=KEY,
        development_mode=True,
        audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
        body_read_timeout=0.05,
    )
    application = create_app(settings)

    async def slow_body() -> AsyncIterator[bytes]:
        yield b'{"username": "alice", "pass'
        await anyio.sleep_forever()  # the outside world: a client that stalls
        yield b'word": "x"}'  # pragma: no cover

    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, client=("198.51.100.24", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            slow = await client.post(
                "/login", content=slow_body(), headers={"content-type": "application/json"}
            )
        stack = application.state.pynomaly_security
        records = await stack.audit_logger.query(event_type="request_refused", limit=10)
        metrics = stack.security_monitor.metrics
    assert (slow.status_code, slow.json()["error"]) == (408, "body_read_timeout")
    assert slow.json()["request_id"] == slow.headers["x-request-id"]
    refused = [r for r in records if r["details"].get("reason") == "body_read_timeout"]
    assert len(refused) == 1 and refused[0]["details"]["path"] == "/login"
    assert metrics["blocked_requests"] == 1


@pytest.mark.anyio
async def test_a_request_past_the_inspection_budget_is_refused_413_and_audited(
    tmp_path: Path,
) -> None:
    """A request whose inspection costs more CPU than ``inspection_budget_ms`` (here a
    nanosecond: no timed assertion) is refused 413 inspection_budget_exceeded, never
    passed uninspected, and recorded as a refused request without its body; a small
    request under the same budget is inspected and served (its few units of work
    never read the clock)."""
    async with _serve(tmp_path, inspection_budget_ms=1e-6) as (app, client):
        long = await client.post("/items", json={"name": "Lamp shade " * 5000, "price": 1})
        small = await client.get("/search", params={"q": "lamp"})
        refused = await _records(app, "request_refused")
    assert (long.status_code, long.json()["error"]) == (413, "inspection_budget_exceeded")
    assert small.status_code == 200
    assert _refusals(refused) == [("inspection_budget_exceeded", 413)]
    assert refused[0]["request_id"] == long.headers["x-request-id"]
    assert refused[0]["source_ip"] == IP and refused[0]["details"]["path"] == "/items"
    assert "Lamp" not in repr(refused)  # bodies are never recorded
