"""Issue 12's session and MFA attacks, replayed through HTTP against the example
app (``examples.app.create_app``): a stolen access token cannot replace the
second factor, logout ends the session, refresh-token reuse ends its family.
The second-factor change is audited and raised as an alert the owner can see."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from fastapi import FastAPI

from examples.app import DEMO_USERS
from tests._example import running_example

KEY = "test-admin-key-0123456789abcdef"
ADMIN = {"X-API-Key": KEY}
ALICE = {"username": "alice", "password": DEMO_USERS["alice"]}


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    async with running_example(tmp_path, KEY) as application:
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("198.51.100.23", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def bearer(tokens: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def login(client: httpx.AsyncClient, **extra: str) -> Any:
    response = await client.post("/login", json={**ALICE, **extra})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.anyio
async def test_stolen_access_token_cannot_take_over_mfa(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The owner enrols TOTP (after /reauth); an attacker holding only the owner's
    access token then tries /mfa/enroll + /mfa/confirm: both are refused, the
    owner's codes keep working, and the enrolment is in the audit trail and the
    alerts."""
    owner = await login(client)
    assert (await client.post("/reauth", json=ALICE, headers=bearer(owner))).status_code == 200
    totp = pyotp.TOTP((await client.post("/mfa/enroll", headers=bearer(owner))).json()["secret"])
    confirmed = await client.post("/mfa/confirm", json={"code": totp.now()}, headers=bearer(owner))
    assert confirmed.status_code == 200 and confirmed.json()["sessions_ended"] is True
    assert (await client.get("/me", headers=bearer(owner))).status_code == 401  # rotated out
    owner = confirmed.json()

    stolen = bearer(owner)
    enroll = await client.post("/mfa/enroll", headers=stolen)
    assert enroll.status_code == 401 and enroll.json()["detail"] == "reauth_required"
    attacker = pyotp.TOTP(pyotp.random_base32())
    confirm = await client.post("/mfa/confirm", json={"code": attacker.now()}, headers=stolen)
    assert confirm.status_code == 401 and confirm.json()["detail"] == "reauth_required"
    assert (await client.post("/reauth", json=ALICE, headers=stolen)).json() == {
        "detail": "mfa_required",
        "reasons": ["reauth"],
    }
    assert (await login(client, totp=totp.at(time.time() + 30)))["user"] == "alice"

    alerts = (await client.get("/api/security/alerts", headers=ADMIN)).json()["alerts"]
    [alert] = [a for a in alerts if a["alert_type"] == "account_security_change"]
    assert alert["details"]["action"] == "mfa_enabled" and alert["user_id"]
    audit = app.state.pynomaly_security.audit_logger
    records = [
        r
        for r in await audit.query(limit=500)
        if r["event_type"] == "security_alert"
        and r["details"].get("alert_type") == "account_security_change"
    ]
    assert [r["details"]["details"]["action"] for r in records] == ["mfa_enabled"]


@pytest.mark.anyio
async def test_logout_ends_refresh_and_access_tokens(client: httpx.AsyncClient) -> None:
    """POST /logout with only the bearer token: the refresh token mints nothing and
    the access token (and the one before rotation) is refused."""
    first = await login(client)
    rotated = (await client.post("/refresh", json={"refresh_token": first["refresh_token"]})).json()
    assert (await client.post("/logout", headers=bearer(rotated))).status_code == 204
    again = await client.post("/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert again.status_code == 401
    for tokens in (first, rotated):
        assert (await client.get("/me", headers=bearer(tokens))).status_code == 401


@pytest.mark.anyio
async def test_refresh_reuse_ends_the_family(client: httpx.AsyncClient) -> None:
    """A spent refresh token replayed: the access token already issued from its
    family stops working, and so does the family's live refresh token."""
    first = await login(client)
    second = (await client.post("/refresh", json={"refresh_token": first["refresh_token"]})).json()
    assert (await client.get("/me", headers=bearer(second))).status_code == 200
    replay = await client.post("/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    assert (await client.get("/me", headers=bearer(second))).status_code == 401
    live = await client.post("/refresh", json={"refresh_token": second["refresh_token"]})
    assert live.status_code == 401
