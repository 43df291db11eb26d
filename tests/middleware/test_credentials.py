"""Credential fields are opaque: a password is hashed by the app, not run as SQL.

Through the assembled stack (``setup_security_middleware``: inspection, monitor,
audit trail, admin API): a login, sign-up or password change whose password
looks like SQL injection is not blocked, whether the body is JSON, a form or
multipart, and nothing of the password reaches an alert, a log line or the
audit trail. The same text in an ordinary field is still blocked.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
import structlog
from fastapi import FastAPI, Form
from pydantic import BaseModel

from pynomaly_security import SecuritySettings, add_security_endpoints, setup_security_middleware
from pynomaly_security.detection import Inspector, RequestParts

KEY = "test-admin-key-0123456789abcdef"
ADMIN = {"X-API-Key": KEY}
# A password a user may well choose; as SQL it is a tautology.
PASSWORD = "' OR 7531=7531 --"
PIECES = ("7531", "OR 7", "or 7")


class Login(BaseModel):
    username: str
    password: str


class Signup(BaseModel):
    username: str
    password: str
    password_confirm: str


class PasswordChange(BaseModel):
    currentPassword: str  # camelCase keys are matched too
    new_password: str


class Comment(BaseModel):
    text: str


def _app(tmp_path: Path) -> FastAPI:
    app = FastAPI()
    settings = SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        admin_api_key=KEY,
        development_mode=True,
        audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
        auth_rate_limits_enabled=False,
        sqli_edge_mode="block",  # this test is about the edge blocking SQL injection
    )
    setup_security_middleware(app, settings=settings)
    add_security_endpoints(app)

    @app.post("/login")
    async def login(body: Login) -> Any:
        return {"ok": False}

    @app.post("/auth/login")
    async def login_form(username: Annotated[str, Form()], password: Annotated[str, Form()]) -> Any:
        return {"ok": False}

    @app.post("/signup", status_code=201)
    async def signup(body: Signup) -> Any:
        return {"ok": True}

    @app.post("/password")
    async def password(body: PasswordChange) -> Any:
        return {"ok": True}

    @app.post("/comments")
    async def comments(body: Comment) -> Any:
        return {"ok": True}

    return app


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    application = _app(tmp_path)
    async with application.router.lifespan_context(application):
        yield application


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("198.51.100.23", 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def _everything_recorded(app: FastAPI, client: httpx.AsyncClient) -> str:
    """The alerts the admin API shows and every audit record, as one text."""
    stack = app.state.pynomaly_security
    await stack.security_monitor.flush()
    alerts = (await client.get("/api/security/alerts", headers=ADMIN)).json()
    assert stack.audit_logger is not None
    records = await stack.audit_logger.query(limit=1000)
    return json.dumps([alerts, records], default=str)


@pytest.mark.anyio
async def test_credential_fields_are_not_inspected_and_never_recorded(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """A password that reads as SQL injection passes in JSON, form and multipart logins,
    a sign-up and a password change; no alert, log line or audit record holds any of it."""
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as logs:
        async with _client(app) as client:
            answers = [
                await client.post("/login", json={"username": "alice", "password": PASSWORD}),
                await client.post("/auth/login", data={"username": "alice", "password": PASSWORD}),
                await client.post(
                    "/auth/login",
                    files={"username": (None, "alice"), "password": (None, PASSWORD)},
                ),
                await client.post(
                    "/signup",
                    json={"username": "ann", "password": PASSWORD, "password_confirm": PASSWORD},
                ),
                await client.post(
                    "/password", json={"currentPassword": PASSWORD, "new_password": PASSWORD}
                ),
            ]
            assert [a.status_code for a in answers] == [200, 200, 200, 201, 200], [
                a.text for a in answers
            ]
            recorded = await _everything_recorded(app, client)
    logged = json.dumps(logs, default=str) + caplog.text
    for piece in PIECES:
        assert piece not in recorded
        assert piece not in logged


@pytest.mark.anyio
async def test_the_same_text_in_an_ordinary_field_is_blocked(app: FastAPI) -> None:
    """The exemption is by field name: a comment with the password's text is SQL injection."""
    async with _client(app) as client:
        blocked = await client.post("/comments", json={"text": PASSWORD})
        assert blocked.status_code == 403
        nested = await client.post("/comments", json={"text": "x", "password": {"a": PASSWORD}})
        assert nested.status_code == 403
        recorded = await _everything_recorded(app, client)
    assert "injection" in recorded and "sqli" in recorded


@pytest.mark.anyio
async def test_a_credential_read_another_way_is_blocked_but_never_quoted(app: FastAPI) -> None:
    """A password in a query string, a key in ``X-API-Key``, or a login body sent as
    plain text (read whole, as the app could) is inspected and blocked, but its
    excerpt is never recorded."""
    with structlog.testing.capture_logs() as logs:
        async with _client(app) as client:
            query = await client.get("/comments", params={"password": PASSWORD})
            header = await client.get("/comments", headers={"X-API-Key": PASSWORD})
            text = await client.post(
                "/login",
                content=json.dumps({"username": "alice", "password": PASSWORD}),
                headers={"content-type": "text/plain"},
            )
            assert [r.status_code for r in (query, header, text)] == [403, 403, 403]
            recorded = await _everything_recorded(app, client)
    assert "sqli" in recorded
    for piece in PIECES:
        assert piece not in recorded
        assert piece not in json.dumps(logs, default=str)


def test_credential_names_are_configurable() -> None:
    """The set is the inspector's ``credential_fields``: names match whatever their case
    or separators (``newPassword``, ``pin-code``); an empty set inspects them all."""

    def blocked(inspector: Inspector, field: str) -> bool:
        body = json.dumps({field: PASSWORD}).encode()
        parts = RequestParts("POST", "/x", b"", ((b"content-type", b"application/json"),), body)
        return inspector.inspect(parts).blocked

    default, pin, nothing = (
        Inspector(),
        Inspector(credential_fields=["pin-code"]),
        Inspector(credential_fields=[]),
    )
    assert [blocked(default, f) for f in ("newPassword", "NEW-PASSWORD", "pin_code")] == [
        False,
        False,
        True,
    ]
    assert [blocked(pin, f) for f in ("newPassword", "pin_code", "PinCode")] == [True, False, False]
    assert [blocked(nothing, f) for f in ("password", "pin_code")] == [True, True]
