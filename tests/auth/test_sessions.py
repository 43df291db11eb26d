"""Sessions and second factors (issue 12, items 6, 7 and 14): re-authentication
before any credential change, logout and refresh-token reuse ending the whole
session, credential changes ending every session, and records whose repr()
carries no secret. Driven through HTTP against the auth router on the real
memory and Redis stores."""

from __future__ import annotations

import asyncio
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
    install_authenticator,
)
from pynomaly_security.auth.authenticator import ACCOUNT_CHANGED, ACCOUNT_EVENT
from pynomaly_security.auth.router import REAUTH_ROUTES
from pynomaly_security.storage import Store, create_store

from .conftest import Clock, MakeAuthenticator, Sinks

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a different horse 2026"
# Routes that may be called without a recent re-authentication, and why.
NO_REAUTH = {
    "/signup": "creates an account; no session yet",
    "/login": "is the authentication",
    "/reauth": "is the re-authentication",
    "/refresh": "rotates a session; holds no credential",
    "/logout": "ends a session (the safe direction)",
    "/logout-all": "ends sessions (the safe direction)",
    "/me": "reads",
}


@pytest.fixture
async def store(store_url: str, clock: Clock) -> AsyncIterator[Store]:
    options: dict[str, Any] = {"clock": clock}
    if store_url.startswith("redis"):
        options["key_prefix"] = "pns-sess:"
    backend = create_store(store_url, **options)
    yield backend
    await backend.aclose()


@pytest.fixture
def authenticator(make_authenticator: MakeAuthenticator, store: Store) -> ZeroTrustAuthenticator:
    return make_authenticator(store)  # type: ignore[arg-type]


def make_app(authenticator: ZeroTrustAuthenticator) -> FastAPI:
    app = FastAPI()
    app.include_router(build_auth_router(authenticator, secure_cookies=False), prefix="/auth")
    install_authenticator(app, authenticator)

    @app.get("/private")
    async def private(user: CurrentUser) -> dict[str, str]:
        return {"hello": user.username}

    return app


@pytest.fixture
async def client(authenticator: ZeroTrustAuthenticator) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(authenticator), client=("203.0.113.7", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def login(client: httpx.AsyncClient, password: str = PASSWORD, **extra: str) -> Any:
    body = {"username": "alice", "password": password, **extra}
    response = await client.post("/auth/login", json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def signup_and_login(client: httpx.AsyncClient) -> Any:
    body = {"username": "alice", "password": PASSWORD}
    assert (await client.post("/auth/signup", json=body)).status_code == 201
    return await login(client)


async def reauth(
    client: httpx.AsyncClient, tokens: Any, code: str | None = None, password: str = PASSWORD
) -> httpx.Response:
    body = {"password": password, **({"code": code} if code else {})}
    return await client.post("/auth/reauth", json=body, headers=bearer(tokens["access_token"]))


async def enrol_mfa(client: httpx.AsyncClient, tokens: Any, clock: Clock) -> tuple[Any, Any]:
    """Re-authenticate, enrol and confirm: (the new session's answer, the TOTP)."""
    assert (await reauth(client, tokens)).status_code == 200
    auth = bearer(tokens["access_token"])
    totp = pyotp.TOTP((await client.post("/auth/mfa/enroll", headers=auth)).json()["secret"])
    confirmed = await client.post(
        "/auth/mfa/confirm", json={"code": totp.at(clock.now)}, headers=auth
    )
    assert confirmed.status_code == 200, confirmed.text
    clock.now += 30  # the confirmation spent this step's code
    return confirmed.json(), totp


async def status(client: httpx.AsyncClient, tokens: Any) -> tuple[int, int]:
    """(GET /me with the access token, POST /refresh with the refresh token)."""
    me = await client.get("/auth/me", headers=bearer(tokens["access_token"]))
    refreshed = await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    return me.status_code, refreshed.status_code


# -- item 6: MFA takeover with a stolen access token --------------------------------------
@pytest.mark.anyio
async def test_stolen_access_token_cannot_replace_the_second_factor(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    """The issue's attack: with only the owner's access token, /mfa/enroll then
    /mfa/confirm must not replace the TOTP secret and recovery codes; /reauth
    without the password, or with it but without a code, gets nowhere."""
    owner, totp = await enrol_mfa(client, await signup_and_login(client), clock)
    stolen = bearer(owner["access_token"])  # what the attacker holds
    enroll = await client.post("/auth/mfa/enroll", headers=stolen)
    assert enroll.status_code == 401 and enroll.json()["detail"] == "reauth_required"
    assert "insufficient_user_authentication" in enroll.headers["WWW-Authenticate"]
    attacker_totp = pyotp.TOTP(pyotp.random_base32())
    confirm = await client.post(
        "/auth/mfa/confirm", json={"code": attacker_totp.at(clock.now)}, headers=stolen
    )
    assert confirm.status_code == 401 and confirm.json()["detail"] == "reauth_required"
    assert (await reauth(client, owner, password="a guess at it")).status_code == 401
    no_code = await reauth(client, owner)  # even knowing the password, a code is needed
    assert no_code.status_code == 401 and no_code.json()["detail"] == "mfa_required"
    assert (await reauth(client, owner, code="123456")).status_code == 401
    assert (await client.post("/auth/mfa/enroll", headers=stolen)).status_code == 401
    # The owner's factor is untouched: their code still signs in.
    assert (await login(client, totp=totp.at(clock.now)))["user"] == "alice"


@pytest.mark.anyio
async def test_stolen_token_cannot_enrol_a_factor_on_an_account_without_one(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    """Without MFA enrolled, an attacker enrolling their own TOTP would lock the
    owner out; it needs the password."""
    stolen = bearer((await signup_and_login(client))["access_token"])
    assert (await client.post("/auth/mfa/enroll", headers=stolen)).status_code == 401
    me = await client.get("/auth/me", headers=stolen)
    assert me.json()["mfa_enabled"] is False


def _post_routes(app: FastAPI) -> set[str]:
    """The POST routes under /auth, as the app's OpenAPI schema lists them."""
    paths = app.openapi()["paths"]
    return {
        p.removeprefix("/auth")
        for p, ops in paths.items()
        if p.startswith("/auth") and "post" in ops
    }


def test_every_route_of_the_auth_router_is_classified(
    make_authenticator: MakeAuthenticator,
) -> None:
    """The class, not the instance: every POST route the router has either needs a
    re-authentication or is listed here with the reason it need not. A new route
    fails this test until it is classified."""
    routes = _post_routes(make_app(make_authenticator()))
    assert routes - set(NO_REAUTH) == set(REAUTH_ROUTES)


@pytest.mark.anyio
@pytest.mark.parametrize("path", REAUTH_ROUTES)
async def test_every_credential_route_needs_a_recent_reauth(
    client: httpx.AsyncClient, clock: Clock, path: str
) -> None:
    """Each credential route refuses a valid session that has not re-authenticated,
    one that re-authenticated too long ago, and another session of the same user
    that did; within the window, the session that re-authenticated gets past the
    check. (MFA is enrolled, so every route has something to change.)"""
    owner, totp = await enrol_mfa(client, await signup_and_login(client), clock)
    body = {"code": "000000", "new_password": NEW_PASSWORD}

    async def call(tokens: Any) -> httpx.Response:
        return await client.post(f"/auth{path}", json=body, headers=bearer(tokens["access_token"]))

    fresh = await call(owner)
    assert fresh.status_code == 401 and fresh.json() == {
        "detail": "reauth_required",
        "max_age": 300,
    }
    other = await login(client, totp=totp.at(clock.now))
    clock.now += 30
    assert (await reauth(client, other, totp.at(clock.now))).status_code == 200
    assert (await call(owner)).json()["detail"] == "reauth_required"  # not its session
    clock.now += 301
    assert (await call(other)).json()["detail"] == "reauth_required"  # too long ago
    clock.now += 30
    assert (await reauth(client, owner, totp.at(clock.now))).status_code == 200
    clock.now += 299
    within = await call(owner)
    assert within.json().get("detail") != "reauth_required", within.text


# -- credential changes: audited, notified, every session ended ---------------------------
@pytest.mark.anyio
async def test_enrolling_a_factor_ends_every_session(
    client: httpx.AsyncClient, clock: Clock, sinks: Sinks
) -> None:
    """Confirming MFA ends the user's other sessions and the one that did it (its
    token may be the stolen one); the answer carries a fresh session. The change is
    an event and an alert (which the plugin writes to the audit trail), with no secret."""
    first = await signup_and_login(client)
    elsewhere = await login(client)
    fresh, _ = await enrol_mfa(client, first, clock)
    assert fresh["sessions_ended"] is True and fresh["mfa_enabled"] is True
    assert await status(client, first) == (401, 401)
    assert await status(client, elsewhere) == (401, 401)
    assert (await client.get("/auth/me", headers=bearer(fresh["access_token"]))).status_code == 200
    [alert] = [a for a in sinks.alerts if a.alert_type == ACCOUNT_CHANGED]
    assert alert.details["action"] == "mfa_enabled" and alert.user_id
    actions = [e.details["action"] for e in sinks.events if e.details["type"] == ACCOUNT_EVENT]
    assert actions[-3:] == ["reauthenticated", "mfa_enrollment_started", "mfa_enabled"]
    text = repr([(e.details, a.to_dict()) for e in sinks.events for a in sinks.alerts])
    assert PASSWORD not in text and fresh["recovery_codes"][0] not in text


@pytest.mark.anyio
async def test_recovery_codes_and_disable_need_the_second_factor(
    client: httpx.AsyncClient, clock: Clock, sinks: Sinks
) -> None:
    """With MFA enrolled, re-authentication takes a TOTP or a recovery code; new
    recovery codes void the old ones; disabling removes the factor; each ends the
    sessions."""
    owner, totp = await enrol_mfa(client, await signup_and_login(client), clock)
    old_codes = owner["recovery_codes"]
    assert (await reauth(client, owner, old_codes[0])).status_code == 200  # a recovery code
    assert (await reauth(client, owner, old_codes[0])).status_code == 401  # spent
    regenerated = await client.post(
        "/auth/mfa/recovery-codes", headers=bearer(owner["access_token"])
    )
    assert regenerated.status_code == 200 and regenerated.json()["sessions_ended"] is True
    new = regenerated.json()
    assert await status(client, owner) == (401, 401)
    assert set(new["recovery_codes"]).isdisjoint(old_codes)
    refused = await client.post(
        "/auth/login", json={"username": "alice", "password": PASSWORD, "totp": old_codes[1]}
    )
    assert refused.status_code == 401

    assert (await reauth(client, new, totp.at(clock.now))).status_code == 200
    disabled = await client.post("/auth/mfa/disable", headers=bearer(new["access_token"]))
    assert disabled.status_code == 200 and disabled.json()["mfa_enabled"] is False
    assert await status(client, new) == (401, 401)
    assert "refresh_token" in await login(client)  # no code needed any more
    actions = [a.details["action"] for a in sinks.alerts if a.alert_type == ACCOUNT_CHANGED]
    assert actions == ["mfa_enabled", "recovery_codes_regenerated", "mfa_disabled"]
    again = await reauth(client, disabled.json())
    assert again.status_code == 200
    nothing = await client.post(
        "/auth/mfa/disable", headers=bearer(disabled.json()["access_token"])
    )
    assert nothing.status_code == 400


@pytest.mark.anyio
async def test_password_change_ends_other_sessions(client: httpx.AsyncClient, sinks: Sinks) -> None:
    """A new password (after re-authenticating with the current one) ends every
    session; the old password stops working; a weak one is refused with 400."""
    first = await signup_and_login(client)
    other = await login(client)
    assert (await reauth(client, first)).status_code == 200
    auth = bearer(first["access_token"])
    weak = await client.post("/auth/password", json={"new_password": "short"}, headers=auth)
    assert weak.status_code == 400
    changed = await client.post("/auth/password", json={"new_password": NEW_PASSWORD}, headers=auth)
    assert changed.status_code == 200 and changed.json()["sessions_ended"] is True
    assert await status(client, first) == (401, 401)
    assert await status(client, other) == (401, 401)
    assert (
        await client.get("/auth/me", headers=bearer(changed.json()["access_token"]))
    ).status_code == 200
    old = await client.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    assert old.status_code == 401
    assert "access_token" in await login(client, NEW_PASSWORD)
    assert [a.details["action"] for a in sinks.alerts if a.alert_type == ACCOUNT_CHANGED] == [
        "password_changed"
    ]


@pytest.mark.anyio
async def test_guessing_the_password_with_a_stolen_token_ends_the_session(
    client: httpx.AsyncClient,
) -> None:
    """Wrong passwords at /reauth count toward the lockout; when it locks, the
    session the guesses came from is ended too (the token is taken away)."""
    stolen = await signup_and_login(client)
    codes = [(await reauth(client, stolen, password=f"guess {i}")).status_code for i in range(3)]
    assert codes == [401, 401, 401]
    assert await status(client, stolen) == (401, 401)


@pytest.mark.anyio
async def test_concurrent_reauth_guesses_are_capped_per_session(
    client: httpx.AsyncClient, sinks: Sinks
) -> None:
    """Twenty wrong /reauth guesses sent at once with one stolen token: each is
    reserved in the store before the password is checked, so at most five
    passwords are checked, and the session ends; the right password then fails."""
    stolen = await signup_and_login(client)
    answers = await asyncio.gather(*(reauth(client, stolen, password=f"g{i}") for i in range(20)))
    assert [r.status_code for r in answers] == [401] * 20  # refused as a wrong password
    failed = [
        e.details
        for e in sinks.events
        if e.details.get("type") == ACCOUNT_EVENT and e.details["action"] == "reauth_failed"
    ]
    checked = [d for d in failed if d["reason"] == "bad_password"]
    assert len(checked) == 5
    assert any(d.get("session_ended") for d in failed)
    assert (await reauth(client, stolen)).status_code == 401
    assert await status(client, stolen) == (401, 401)


# -- item 7: logout and refresh-token reuse end the whole session -------------------------
@pytest.mark.anyio
async def test_logout_with_the_bearer_token_alone_ends_the_session(
    client: httpx.AsyncClient,
) -> None:
    """The issue's case: POST /logout with only the bearer token; afterwards the
    refresh token mints nothing and every access token of the session is refused
    (also one issued by an earlier rotation). Another session lives on."""
    first = await signup_and_login(client)
    other = await login(client)
    rotated = (
        await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    ).json()
    out = await client.post("/auth/logout", headers=bearer(first["access_token"]))
    assert out.status_code == 204
    assert await status(client, rotated) == (401, 401)
    assert (await client.get("/auth/me", headers=bearer(first["access_token"]))).status_code == 401
    assert (
        await client.get("/private", headers=bearer(rotated["access_token"]))
    ).status_code == 401
    assert (await client.get("/auth/me", headers=bearer(other["access_token"]))).status_code == 200


@pytest.mark.anyio
async def test_logout_with_the_refresh_token_alone_ends_the_session(
    client: httpx.AsyncClient,
) -> None:
    """A client that only sends its refresh token ends the same session."""
    tokens = await signup_and_login(client)
    out = await client.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert out.status_code == 204
    assert await status(client, tokens) == (401, 401)


@pytest.mark.anyio
async def test_refresh_reuse_ends_the_family_access_tokens_too(
    client: httpx.AsyncClient, sinks: Sinks
) -> None:
    """When a spent refresh token comes back, its session ends: the access tokens
    already issued from that family stop working, and an alert is raised."""
    first = await signup_and_login(client)
    second = (
        await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    ).json()
    assert (await client.get("/auth/me", headers=bearer(second["access_token"]))).status_code == 200
    reuse = await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401
    assert await status(client, second) == (401, 401)
    assert (await client.get("/auth/me", headers=bearer(first["access_token"]))).status_code == 401
    assert [
        a.threat_level.value for a in sinks.alerts if a.alert_type == "refresh_token_reuse"
    ] == ["high"]


@pytest.mark.anyio
async def test_logout_all_ends_every_session(client: httpx.AsyncClient) -> None:
    """/logout-all ends every session of the user, without waiting a second."""
    sessions = [await signup_and_login(client), await login(client), await login(client)]
    out = await client.post("/auth/logout-all", headers=bearer(sessions[1]["access_token"]))
    assert out.status_code == 204
    for tokens in sessions:
        assert await status(client, tokens) == (401, 401)
    assert (
        await client.get("/auth/me", headers=bearer((await login(client))["access_token"]))
    ).status_code == 200


@pytest.mark.anyio
async def test_a_disabled_account_cannot_refresh(
    client: httpx.AsyncClient, authenticator: ZeroTrustAuthenticator
) -> None:
    """Disabling a user refuses its access tokens and ends its sessions at the next
    refresh, instead of minting new pairs."""
    tokens = await signup_and_login(client)
    user = await authenticator.users.get_by_username("alice")
    assert user is not None
    await authenticator.users.update(user.but(disabled=True))
    assert await status(client, tokens) == (401, 401)
    await authenticator.users.update(user.but(disabled=False))
    assert await status(client, tokens) == (401, 401)  # that session has ended


# -- item 14: no secret in a repr ----------------------------------------------------------
@pytest.mark.anyio
async def test_records_repr_without_secrets(authenticator: ZeroTrustAuthenticator) -> None:
    """repr() and str() of the sign-in result, the user record, the session, the
    token pair and the TOTP enrolment show no hash, secret, digest or token."""
    await authenticator.signup("alice", PASSWORD)
    result = await authenticator.authenticate_user("alice", PASSWORD, "203.0.113.7", "test")
    session = await authenticator.current_session(result.tokens.access_token)
    await authenticator.tokens.mark_reauthenticated(session.session_id, 300)
    enrollment = await authenticator.enroll_mfa(session)
    user = await authenticator.users.get(session.user.user_id)
    assert user is not None
    codes, pair = await authenticator.confirm_mfa(
        session, authenticator.totp.now_code(enrollment.encrypted_secret)
    )
    user = await authenticator.users.get(session.user.user_id)
    assert user is not None and user.totp_secret is not None
    secrets = [
        user.password_hash,
        user.password_hash.split("$")[-1],
        user.totp_secret,
        *user.recovery_codes,
        *codes,
        enrollment.secret,
        enrollment.encrypted_secret,
        result.tokens.access_token,
        result.tokens.refresh_token,
        pair.access_token,
        pair.refresh_token,
    ]
    shown = " ".join(
        f(o) for o in (result, user, session, pair, enrollment, result.tokens) for f in (repr, str)
    )
    assert [s for s in secrets if s in shown] == []
    assert "alice" in shown and "mfa_enabled=True" in shown
