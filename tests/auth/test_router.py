"""The auth and lockout routers in a real FastAPI app, driven like a new user would."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pyotp
import pytest
from fastapi import FastAPI

from pynomaly_security.auth import (
    CurrentUser,
    ZeroTrustAuthenticator,
    build_auth_router,
    build_lockout_router,
    install_authenticator,
)
from pynomaly_security.auth.lockout import ACCOUNT_LOCKED
from pynomaly_security.auth.risk import GeoPoint

from .conftest import Clock, MakeAuthenticator, Sinks

PASSWORD = "correct horse battery"


def make_app(authenticator: ZeroTrustAuthenticator) -> FastAPI:
    app = FastAPI()
    app.include_router(build_auth_router(authenticator, secure_cookies=False), prefix="/auth")
    app.include_router(build_lockout_router(authenticator.lockouts), prefix="/api/security")
    install_authenticator(app, authenticator)

    @app.get("/private")
    async def private(user: CurrentUser) -> dict[str, str]:
        return {"hello": user.username}

    return app


@pytest.fixture
async def client(make_authenticator: MakeAuthenticator) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(make_authenticator())
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def signup_and_login(client: httpx.AsyncClient, name: str = "alice") -> dict[str, Any]:
    assert (
        await client.post("/auth/signup", json={"username": name, "password": PASSWORD})
    ).status_code == 201
    response = await client.post("/auth/login", json={"username": name, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return dict(response.json())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def reauth(client: httpx.AsyncClient, auth: dict[str, str], code: str | None = None) -> None:
    body = {"password": PASSWORD, **({"code": code} if code else {})}
    response = await client.post("/auth/reauth", json=body, headers=auth)
    assert response.status_code == 200, response.text


@pytest.mark.anyio
async def test_signup_login_me(client: httpx.AsyncClient) -> None:
    """Sign up, log in, and call protected routes with the bearer access token."""
    tokens = await signup_and_login(client)
    assert tokens["token_type"] == "bearer" and tokens["risk"]["level"] == "low"
    me = await client.get("/auth/me", headers=bearer(tokens["access_token"]))
    assert me.json()["username"] == "alice" and me.json()["mfa_enabled"] is False
    assert (await client.get("/private", headers=bearer(tokens["access_token"]))).json() == {
        "hello": "alice"
    }
    missing = await client.get("/auth/me")
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.anyio
async def test_signup_refusals(client: httpx.AsyncClient) -> None:
    """Weak passwords and taken names are 400 (and names are case-insensitive)."""
    assert (
        await client.post("/auth/signup", json={"username": "bob", "password": "short"})
    ).status_code == 400
    await client.post("/auth/signup", json={"username": "bob", "password": PASSWORD})
    again = await client.post("/auth/signup", json={"username": "BOB", "password": PASSWORD})
    assert again.status_code == 400


@pytest.mark.anyio
async def test_mfa_enrol_then_login_and_replay(client: httpx.AsyncClient, clock: Clock) -> None:
    """Enrol TOTP; login then needs a code (401 mfa_required); a replayed code is refused."""
    tokens = await signup_and_login(client)
    auth = bearer(tokens["access_token"])
    await reauth(client, auth)
    enrolment = (await client.post("/auth/mfa/enroll", headers=auth)).json()
    assert enrolment["otpauth_uri"].startswith("otpauth://totp/")
    totp = pyotp.TOTP(enrolment["secret"])
    assert (
        await client.post("/auth/mfa/confirm", json={"code": "000000"}, headers=auth)
    ).status_code == 401
    confirmed = await client.post(
        "/auth/mfa/confirm", json={"code": totp.at(clock.now)}, headers=auth
    )
    assert len(confirmed.json()["recovery_codes"]) == 3

    no_code = await client.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    assert no_code.status_code == 401 and no_code.json()["detail"] == "mfa_required"
    clock.now += 30  # the confirmation code's step is spent
    code = totp.at(clock.now)
    ok = await client.post(
        "/auth/login", json={"username": "alice", "password": PASSWORD, "totp": code}
    )
    assert ok.status_code == 200
    replay = await client.post(
        "/auth/login", json={"username": "alice", "password": PASSWORD, "totp": code}
    )
    assert replay.status_code == 401 and replay.json()["detail"] == "invalid credentials"


@pytest.mark.anyio
async def test_recovery_code_single_use(client: httpx.AsyncClient, clock: Clock) -> None:
    """A recovery code signs in once instead of a TOTP code."""
    tokens = await signup_and_login(client)
    auth = bearer(tokens["access_token"])
    await reauth(client, auth)
    secret = (await client.post("/auth/mfa/enroll", headers=auth)).json()["secret"]
    codes = (
        await client.post(
            "/auth/mfa/confirm", json={"code": pyotp.TOTP(secret).at(clock.now)}, headers=auth
        )
    ).json()["recovery_codes"]
    body = {"username": "alice", "password": PASSWORD, "totp": codes[0]}
    assert (await client.post("/auth/login", json=body)).status_code == 200
    assert (await client.post("/auth/login", json=body)).status_code == 401


@pytest.mark.anyio
async def test_refresh_logout(client: httpx.AsyncClient) -> None:
    """Refresh rotates; logout ends the session: access and refresh tokens."""
    tokens = await signup_and_login(client)
    rotated = await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert rotated.status_code == 200
    new = rotated.json()
    assert (
        await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    ).status_code == 401
    out = await client.post(
        "/auth/logout",
        json={"refresh_token": new["refresh_token"]},
        headers=bearer(new["access_token"]),
    )
    assert out.status_code == 204
    assert (await client.get("/auth/me", headers=bearer(new["access_token"]))).status_code == 401
    assert (
        await client.post("/auth/refresh", json={"refresh_token": new["refresh_token"]})
    ).status_code == 401


@pytest.mark.anyio
async def test_logout_all(client: httpx.AsyncClient, clock: Clock) -> None:
    """logout-all ends every session of the user."""
    first = await signup_and_login(client)
    second = (
        await client.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    ).json()
    clock.now += 1
    assert (
        await client.post("/auth/logout-all", headers=bearer(first["access_token"]))
    ).status_code == 204
    for tokens in (first, second):
        assert (
            await client.get("/auth/me", headers=bearer(tokens["access_token"]))
        ).status_code == 401


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.mark.anyio
async def test_forged_tokens_refused(client: httpx.AsyncClient) -> None:
    """alg:none and a token signed with the wrong key are refused at /me."""
    tokens = await signup_and_login(client)
    payload = tokens["access_token"].split(".")[1]
    none_token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}."
    parts = tokens["access_token"].split(".")
    wrong_sig = ".".join(
        [parts[0], parts[1], base64.urlsafe_b64encode(b"x" * 32).rstrip(b"=").decode()]
    )
    for forged in (none_token, wrong_sig, "garbage", ""):
        assert (await client.get("/auth/me", headers=bearer(forged))).status_code == 401


@pytest.mark.anyio
async def test_lockout_429_alert_and_admin_unlock(client: httpx.AsyncClient, sinks: Sinks) -> None:
    """N bad passwords lock with 429 + alert; even the right password is refused; admin unlocks."""
    await client.post("/auth/signup", json={"username": "alice", "password": PASSWORD})
    bad = {"username": "alice", "password": "wrong password"}
    codes = [(await client.post("/auth/login", json=bad)).status_code for _ in range(3)]
    assert codes == [401, 401, 401]  # the third failure locks; the lock shows from the next
    locked = await client.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    assert locked.status_code == 429 and locked.headers["Retry-After"] == "900"
    assert ACCOUNT_LOCKED in [a.alert_type for a in sinks.alerts]
    listing = (await client.get("/api/security/lockouts")).json()
    [lock] = listing["lockouts"]
    assert (lock["username"], lock["ip"]) == ("alice", "203.0.113.7")
    assert (await client.post(f"/api/security/lockouts/{lock['key']}/unlock")).status_code == 200
    assert (await client.post(f"/api/security/lockouts/{lock['key']}/unlock")).status_code == 404
    assert (
        await client.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    ).status_code == 200


@pytest.mark.anyio
async def test_unknown_user_looks_like_wrong_password(client: httpx.AsyncClient) -> None:
    """An unknown user name gets exactly the wrong-password answer."""
    await client.post("/auth/signup", json={"username": "alice", "password": PASSWORD})
    unknown = await client.post("/auth/login", json={"username": "nobody", "password": PASSWORD})
    wrong = await client.post("/auth/login", json={"username": "alice", "password": "nope nope"})
    assert (unknown.status_code, unknown.json()) == (wrong.status_code, wrong.json())


@pytest.mark.anyio
async def test_high_risk_refused_with_alert(
    make_authenticator: MakeAuthenticator, sinks: Sinks, clock: Clock
) -> None:
    """Impossible travel is refused with 403, reasons, and a high-risk alert."""
    places = {"203.0.113.7": GeoPoint(48.85, 2.35), "198.51.100.1": GeoPoint(-33.87, 151.21)}
    app = make_app(make_authenticator(geo=places.get))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("203.0.113.7", 1)), base_url="http://t"
    ) as paris:
        await signup_and_login(paris)
    clock.now += 600
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("198.51.100.1", 1)), base_url="http://t"
    ) as sydney:
        refused = await sydney.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    assert refused.status_code == 403
    assert "impossible_travel" in refused.json()["reasons"]
    assert "high_risk_login" in [a.alert_type for a in sinks.alerts]


@pytest.mark.anyio
async def test_device_cookie_set_once(client: httpx.AsyncClient) -> None:
    """The first login sets an HttpOnly device cookie; later logins keep it."""
    await client.post("/auth/signup", json={"username": "alice", "password": PASSWORD})
    first = await client.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    assert (
        "pns_device=" in first.headers["set-cookie"] and "HttpOnly" in first.headers["set-cookie"]
    )
    second = await client.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    assert "set-cookie" not in second.headers


@pytest.mark.anyio
async def test_events_reported(client: httpx.AsyncClient, sinks: Sinks) -> None:
    """Each sign-in outcome reaches the event sink with its risk and no password."""
    await signup_and_login(client)
    await client.post("/auth/login", json={"username": "alice", "password": "wrong wrong"})
    assert {e.kind.value for e in sinks.events} == {"custom"}
    assert [e.details["outcome"] for e in sinks.events] == ["success", "failure"]
    assert sinks.events[0].details["risk"]["level"] == "low"
    assert all(PASSWORD not in json.dumps(dict(e.details)) for e in sinks.events)


@pytest.mark.anyio
async def test_from_settings_end_to_end(hasher: object) -> None:
    """An authenticator wired from settings (master key, derived JWT key) signs in and out."""
    from pynomaly_security.auth.passwords import PasswordHasher
    from pynomaly_security.crypto.keys import generate_master_key
    from pynomaly_security.settings import SecuritySettings
    from pynomaly_security.storage.memory import MemoryStore

    settings = SecuritySettings(_env_file=None, master_key=generate_master_key())
    assert isinstance(hasher, PasswordHasher)
    authenticator = ZeroTrustAuthenticator.from_settings(settings, MemoryStore(), passwords=hasher)
    app = make_app(authenticator)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        tokens = await signup_and_login(c)
        assert (await c.get("/auth/me", headers=bearer(tokens["access_token"]))).status_code == 200
        assert tokens["user"] == "alice"


@pytest.mark.anyio
async def test_rate_limit_by_installed_authenticator_user(
    make_authenticator: MakeAuthenticator,
) -> None:
    """key="user" reads the bearer token through the installed authenticator:
    two users behind one IP have their own budgets; anonymous requests count by IP."""
    from pynomaly_security.middleware.ratelimit import RateLimitMiddleware

    app = make_app(make_authenticator())
    app.add_middleware(RateLimitMiddleware, limits=["4/day"], key="user")
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        alice = await signup_and_login(client, "alice")  # 2 anonymous requests
        bob = await signup_and_login(client, "bob")  # the IP's budget is now spent
        assert (await client.get("/private")).status_code == 429
        for tokens in (alice, bob):
            codes = [
                (await client.get("/private", headers=bearer(tokens["access_token"]))).status_code
                for _ in range(5)
            ]
            assert codes == [200, 200, 200, 200, 429]
