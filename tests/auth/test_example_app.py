"""The example app's sign-in, tried as a new user would (issue 5's "done when")."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pyotp
import pytest
from fastapi import FastAPI

from examples.app import create_app
from pynomaly_security.exceptions import InvalidToken
from pynomaly_security.settings import SecuritySettings
from tests._example import running_example

KEY = "test-admin-key-0123456789abcdef"
ADMIN = {"X-API-Key": KEY}


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    async with running_example(tmp_path, KEY, trusted_proxies=["10.0.0.0/8"]) as application:
        yield application


def client_for(app: FastAPI, ip: str = "198.51.100.23") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.mark.anyio
async def test_signup_mfa_login_replay_refresh_logout(app: FastAPI) -> None:
    """Sign up, enrol MFA, log in with a code, a replayed code is refused, refresh, logout."""
    async with client_for(app) as client:
        creds = {"username": "dora", "password": "explorer-2024"}
        assert (await client.post("/signup", json=creds)).status_code == 201
        tokens = (await client.post("/login", json=creds)).json()
        auth = bearer(tokens["access_token"])
        # Changing a factor needs a recent re-authentication of this session.
        assert (await client.post("/mfa/enroll", headers=auth)).status_code == 401
        reauth = await client.post("/reauth", json={"password": creds["password"]}, headers=auth)
        assert reauth.status_code == 200
        secret = (await client.post("/mfa/enroll", headers=auth)).json()["secret"]
        totp = pyotp.TOTP(secret)
        confirm = await client.post("/mfa/confirm", json={"code": totp.now()}, headers=auth)
        assert confirm.status_code == 200 and len(confirm.json()["recovery_codes"]) == 10

        needs = await client.post("/login", json=creds)
        assert needs.status_code == 401 and needs.json()["detail"] == "mfa_required"
        # The confirmation spent the current step's code; the next step's code is
        # fresh and within the one-step drift window.
        code = totp.at(time.time() + 30)
        first = await client.post("/login", json={**creds, "totp": code})
        assert first.status_code == 200, first.text
        replay = await client.post("/login", json={**creds, "totp": code})
        assert replay.status_code == 401

        fresh = first.json()
        me = await client.get("/me", headers=bearer(fresh["access_token"]))
        assert me.json() == {
            "user_id": me.json()["user_id"],
            "username": "dora",
            "mfa_enabled": True,
        }
        rotated = (
            await client.post("/refresh", json={"refresh_token": fresh["refresh_token"]})
        ).json()
        out = await client.post(
            "/logout",
            json={"refresh_token": rotated["refresh_token"]},
            headers=bearer(rotated["access_token"]),
        )
        assert out.status_code == 204
        assert (await client.get("/me", headers=bearer(rotated["access_token"]))).status_code == 401


@pytest.mark.anyio
async def test_forged_tokens_are_refused(app: FastAPI) -> None:
    """alg:none and a token signed with the wrong key get 401 at /me."""
    async with client_for(app) as client:
        tokens = (
            await client.post("/login", json={"username": "alice", "password": "wonderland-2024"})
        ).json()
        payload = tokens["access_token"].split(".")[1]
        none_token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}."
        claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
        wrong_key = jwt.encode(claims, b"w" * 32, algorithm="HS256")
        for forged in (none_token, wrong_key):
            assert (await client.get("/me", headers=bearer(forged))).status_code == 401
        assert (await client.get("/me", headers=bearer(tokens["access_token"]))).status_code == 200


@pytest.mark.anyio
async def test_lockout_alert_and_admin_unlock(app: FastAPI) -> None:
    """N bad passwords lock with 429 and a brute_force alert; the admin unlocks it."""
    async with client_for(app) as client:
        bad = {"username": "bob", "password": "not-the-password"}
        codes = [(await client.post("/login", json=bad)).status_code for _ in range(5)]
        assert codes == [401] * 5
        good = {"username": "bob", "password": "builder-2024"}
        locked = await client.post("/login", json=good)
        assert locked.status_code == 429 and "retry-after" in locked.headers
        alerts = (await client.get("/api/security/alerts", headers=ADMIN)).json()["alerts"]
        assert [a for a in alerts if a["alert_type"] == "brute_force" and a["user_id"] == "bob"]
        assert (await client.get("/api/security/lockouts")).status_code == 401  # admin only
        [lock] = (await client.get("/api/security/lockouts", headers=ADMIN)).json()["lockouts"]
        assert (lock["username"], lock["ip"]) == ("bob", "198.51.100.23")
        unlock = await client.post(f"/api/security/lockouts/{lock['key']}/unlock", headers=ADMIN)
        assert unlock.status_code == 200
        assert (await client.post("/login", json=good)).status_code == 200


@pytest.mark.anyio
async def test_spoofed_forwarded_for_changes_nothing(app: FastAPI) -> None:
    """From an untrusted peer a rotating X-Forwarded-For does not dodge the lock."""
    async with client_for(app, "203.0.113.99") as client:
        bad = {"username": "alice", "password": "guess-guess"}
        for i in range(5):
            await client.post("/login", json=bad, headers={"X-Forwarded-For": f"6.6.6.{i}"})
        spoofed = await client.post(
            "/login",
            json={"username": "alice", "password": "wonderland-2024"},
            headers={"X-Forwarded-For": "7.7.7.7"},
        )
    assert spoofed.status_code == 429


@pytest.mark.anyio
@pytest.mark.redis
async def test_lockout_and_tokens_shared_by_two_workers(tmp_path: Path, redis_url: str) -> None:
    """Two app processes' worth (two instances on one Redis and one master key): failures
    on either count together, the lock holds on both, and a token from one works on the other."""
    from pynomaly_security.crypto.keys import generate_master_key

    master = generate_master_key()
    apps = []
    for i in range(2):
        settings = SecuritySettings(
            _env_file=None,
            admin_api_key=KEY,
            master_key=master,
            redis_url=redis_url,
            audit_db_url=f"sqlite:///{tmp_path / f'audit{i}.db'}",
        )
        apps.append(create_app(settings))
    async with (
        apps[0].router.lifespan_context(apps[0]),
        apps[1].router.lifespan_context(apps[1]),
        client_for(apps[0]) as one,
        client_for(apps[1]) as two,
    ):
        # Users live in each app's own (in-memory) repository; sessions and
        # revocations live in the shared store, so the other worker sees a logout.
        tokens = (
            await one.post("/login", json={"username": "alice", "password": "wonderland-2024"})
        ).json()
        other = apps[1].state.example_authenticator.tokens
        assert (await other.verify(tokens["access_token"]))["typ"] == "access"
        await one.post("/logout", headers=bearer(tokens["access_token"]))
        with pytest.raises(InvalidToken):
            await other.verify(tokens["access_token"])

        bad = {"username": "bob", "password": "not-the-password"}
        codes = [(await (one, two)[i % 2].post("/login", json=bad)).status_code for i in range(5)]
        assert codes == [401] * 5
        good = {"username": "bob", "password": "builder-2024"}
        assert (await one.post("/login", json=good)).status_code == 429
        assert (await two.post("/login", json=good)).status_code == 429


@pytest.mark.anyio
async def test_risk_reasons_are_returned_and_audited(app: FastAPI) -> None:
    """A sign-in from a new device and network is medium risk: the reasons come back
    in the answer and are written to the audit trail."""
    creds = {"username": "alice", "password": "wonderland-2024"}
    async with client_for(app, "198.51.100.23") as home:
        first = await home.post("/login", json=creds, headers={"User-Agent": "curl/8.5.0"})
    assert first.json()["risk"]["level"] == "low"
    async with client_for(app, "203.0.113.200") as away:
        firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
        second = await away.post("/login", json=creds, headers={"User-Agent": firefox})
    assert second.status_code == 200  # alice has no second factor to step up to
    assert second.json()["risk"] == {
        "score": 40,
        "level": "medium",
        "reasons": ["new_device", "new_network"],
    }
    audit = app.state.pynomaly_security.audit_logger
    records = [r for r in await audit.query(limit=500) if r["event_type"] == "login_success"]
    risks = {r["details"]["risk"]["level"]: r["details"]["risk"]["reasons"] for r in records}
    assert risks == {"low": [], "medium": ["new_device", "new_network"]}


def test_development_mode_makes_one_ephemeral_key_for_the_whole_app(tmp_path: Path) -> None:
    """Without PYNOMALY_MASTER_KEY in development mode, the audit trail and the
    authenticator share the stack's one throw-away key (one warning), instead of each
    deriving from a key of its own."""
    from structlog.testing import capture_logs

    settings = SecuritySettings(
        _env_file=None,
        admin_api_key=KEY,
        development_mode=True,
        audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
    )
    with capture_logs() as logs:
        application = create_app(settings)
    events = [entry["event"] for entry in logs]
    assert events.count("master_key_missing_using_ephemeral_key") == 1
    assert application.state.pynomaly_security.keyring is not None
