"""A tenant's overrides enforced (issue 21, item 4), over HTTP on the example app with
two tenants: acme narrows a setting, globex keeps the global value. The global
settings are ``test_app.settings`` (3 sign-in attempts, detection level 2)."""

from __future__ import annotations

import math
from typing import Any

import httpx
import jwt
import pyotp
import pytest

from tests.tenancy.test_app import ADMIN, ALICE, tenant

WRONG = {"username": "alice", "password": "not-her-password"}


async def narrow(client: httpx.AsyncClient, **overrides: Any) -> None:
    """acme sets ``overrides`` (through the admin API, checked to only narrow)."""
    done = await client.patch(
        "/api/security/tenants/acme", json={"overrides": overrides}, headers=ADMIN
    )
    assert done.status_code == 200, done.text


async def after_two_failures(client: httpx.AsyncClient, tid: str) -> int:
    """The status of alice's right password after two wrong ones in ``tid``."""
    for _ in range(2):
        failed = await client.post("/login", json=WRONG, headers=tenant(tid))
        assert failed.status_code == 401, failed.text
    return (await client.post("/login", json=ALICE, headers=tenant(tid))).status_code


@pytest.mark.anyio
@pytest.mark.parametrize("field", ["brute_force_max_attempts", "account_max_attempts"])
async def test_a_lower_lockout_threshold_locks_sooner_in_that_tenant_only(
    client: httpx.AsyncClient, field: str
) -> None:
    """acme locks alice after 2 failures (per address, or per account across
    addresses); globex's alice, at the global 3, still signs in after 2."""
    await narrow(client, **{field: 2})
    assert await after_two_failures(client, "acme") == 429
    assert await after_two_failures(client, "globex") == 200


@pytest.mark.anyio
async def test_shorter_token_lifetimes_in_that_tenant_only(client: httpx.AsyncClient) -> None:
    await narrow(client, access_token_ttl=60, refresh_token_ttl=120)
    lifetimes = {}
    for tid in ("acme", "globex"):
        login = await client.post("/login", json=ALICE, headers=tenant(tid))
        assert login.status_code == 200, login.text
        body = login.json()
        claims = [
            jwt.decode(body[kind], options={"verify_signature": False})
            for kind in ("access_token", "refresh_token")
        ]
        lifetimes[tid] = [body["expires_in"], *(math.ceil(c["exp"] - c["iat"]) for c in claims)]
    assert lifetimes["acme"] == [60, 60, 120]
    assert lifetimes["globex"] == [900, 900, 1_209_600]
    # A refresh inside acme keeps the short lifetime.
    login = await client.post("/login", json=ALICE, headers=tenant("acme"))
    again = await client.post(
        "/refresh", json={"refresh_token": login.json()["refresh_token"]}, headers=tenant("acme")
    )
    assert again.status_code == 200 and again.json()["expires_in"] == 60


@pytest.mark.anyio
async def test_a_higher_detection_level_in_that_tenant_only(client: httpx.AsyncClient) -> None:
    """``@@version`` scores under level 2's threshold, over level 3's: acme (level 4)
    blocks it, globex (the global 2) serves it; repeats are judged the same way."""
    await narrow(client, detection_level=4)
    for _ in range(2):
        blocked = await client.get("/items", params={"q": "@@version"}, headers=tenant("acme"))
        assert blocked.status_code == 403 and blocked.json()["error"] == "request_blocked"
        served = await client.get("/items", params={"q": "@@version"}, headers=tenant("globex"))
        assert served.status_code == 200, served.text
    assert (await client.get("/items", headers=tenant("acme"))).status_code == 200


@pytest.mark.anyio
async def test_mfa_required_refuses_a_session_without_a_second_factor(
    client: httpx.AsyncClient,
) -> None:
    """In acme a password-only session gets 403 ``mfa_enrollment_required`` everywhere
    but the enrolment routes; once enrolled and signed in with a code, it is served.
    globex, without the override, serves the password-only session."""
    await narrow(client, mfa_required=True)
    login = await client.post("/login", json=ALICE, headers=tenant("acme"))
    assert login.status_code == 200 and login.json()["mfa_enrollment_required"] is True
    bearer = {"Authorization": f"Bearer {login.json()['access_token']}", **tenant("acme")}
    refused = await client.get("/me", headers=bearer)
    assert (refused.status_code, refused.json()) == (403, {"detail": "mfa_enrollment_required"})
    other = await client.post("/login", json=ALICE, headers=tenant("globex"))
    assert "mfa_enrollment_required" not in other.json()
    other_bearer = {"Authorization": f"Bearer {other.json()['access_token']}"}
    assert (await client.get("/me", headers=other_bearer)).status_code == 200

    assert (await client.post("/reauth", json=ALICE, headers=bearer)).status_code == 200
    totp = pyotp.TOTP((await client.post("/mfa/enroll", headers=bearer)).json()["secret"])
    confirmed = await client.post("/mfa/confirm", json={"code": totp.now()}, headers=bearer)
    assert confirmed.status_code == 200, confirmed.text
    enrolled = {"Authorization": f"Bearer {confirmed.json()['access_token']}"}
    me = await client.get("/me", headers=enrolled)
    assert me.status_code == 200 and me.json()["mfa_enabled"] is True
