"""Guessing from many addresses, rate limits on the auth routes, and sign-up names
(issue 12, item 10 and the default limits of item 8), against the example app."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from fastapi import FastAPI

from examples.app import create_app
from pynomaly_security.auth.usernames import UsernamePolicy, icu_skeleton
from pynomaly_security.settings import SecuritySettings
from pynomaly_security.storage.memory import MemoryStore

from .conftest import Clock

KEY = "test-admin-key-0123456789abcdef"
ADMIN = {"X-API-Key": KEY}
PROXY = "10.0.0.1"


def _settings(tmp_path: Path, **overrides: Any) -> SecuritySettings:
    values: dict[str, Any] = {
        "_env_file": None,
        "admin_api_key": KEY,
        "development_mode": True,
        "audit_db_url": f"sqlite:///{tmp_path / 'audit.db'}",
        "trusted_proxies": ["10.0.0.0/8"],
    }
    values.update(overrides)
    return SecuritySettings(**values)


async def _app(settings: SecuritySettings, *, fixed_time: bool = False) -> AsyncIterator[FastAPI]:
    """The example app; with ``fixed_time`` its store's clock stands still (20 s into
    a minute), so a rate-limit window cannot roll over between two requests of a test
    (the sliding window counter rounds the previous window's weight down: a limit of
    N, crossed at a minute boundary, lets request N+1 through)."""
    store = MemoryStore(clock=Clock()) if fixed_time else None
    application = create_app(settings, store=store)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    async for application in _app(
        _settings(tmp_path, account_max_attempts=8, auth_rate_limits_enabled=False)
    ):
        yield application


def client_for(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(PROXY, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def source(i: int) -> dict[str, str]:
    """Headers of a request relayed by the trusted proxy for client 192.0.2.i."""
    return {"X-Forwarded-For": f"192.0.2.{i}"}


# -- per-account limits across addresses --------------------------------------------


@pytest.mark.anyio
async def test_new_addresses_do_not_buy_new_guesses(app: FastAPI) -> None:
    """Twenty addresses each trying one password for bob: after the account's 8
    failures every further attempt is 429, even the right password, and a
    distributed_guessing alert is raised."""
    async with client_for(app) as client:
        statuses = [
            (
                await client.post(
                    "/login", json={"username": "bob", "password": f"guess-{i}"}, headers=source(i)
                )
            ).status_code
            for i in range(1, 21)
        ]
        right = await client.post(
            "/login", json={"username": "bob", "password": "builder-2024"}, headers=source(99)
        )
        alerts = (await client.get("/api/security/alerts", headers=ADMIN)).json()["alerts"]
    assert statuses == [401] * 8 + [429] * 12
    # A range: this app reads the real clock, and Retry-After is the lock's remaining
    # time rounded up (900 s, or 899 if a second passed since the lock was set).
    assert right.status_code == 429 and 899 <= int(right.headers["Retry-After"]) <= 900
    distributed = [a for a in alerts if a["alert_type"] == "distributed_guessing"]
    assert len(distributed) == 1 and distributed[0]["user_id"] == "bob"
    # alice, guessed at by nobody, still signs in.
    async with client_for(app) as client:
        ok = await client.post(
            "/login", json={"username": "alice", "password": "wonderland-2024"}, headers=source(1)
        )
    assert ok.status_code == 200


@pytest.mark.anyio
async def test_second_factor_guesses_count_per_account(app: FastAPI) -> None:
    """With the password known, TOTP guesses from new addresses are capped per
    account too: after 8 wrong codes even the right code is refused (429)."""
    creds = {"username": "carol", "password": "correct-horse-9"}
    async with client_for(app) as client:
        assert (await client.post("/signup", json=creds, headers=source(1))).status_code == 201
        tokens = (await client.post("/login", json=creds, headers=source(1))).json()
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}
        reauth = await client.post("/reauth", json={"password": creds["password"]}, headers=auth)
        assert reauth.status_code == 200
        secret = (await client.post("/mfa/enroll", headers=auth)).json()["secret"]
        totp = pyotp.TOTP(secret)
        confirmed = await client.post("/mfa/confirm", json={"code": totp.now()}, headers=auth)
        assert confirmed.status_code == 200
        right = totp.at(time.time() + 30)
        wrong = next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in {right})
        statuses = [
            (
                await client.post("/login", json={**creds, "totp": wrong}, headers=source(i))
            ).status_code
            for i in range(10, 20)
        ]
        last = await client.post("/login", json={**creds, "totp": right}, headers=source(42))
    assert statuses == [401] * 8 + [429] * 2
    assert last.status_code == 429


@pytest.mark.anyio
async def test_mfa_confirm_is_limited_per_account(tmp_path: Path) -> None:
    """Codes sent to /mfa/confirm by one signed-in user are limited across
    addresses (mfa_account_rate_limits, 5/minute by default)."""
    async for app in _app(_settings(tmp_path), fixed_time=True):
        async with client_for(app) as client:
            tokens = (
                await client.post(
                    "/login",
                    json={"username": "alice", "password": "wonderland-2024"},
                    headers=source(1),
                )
            ).json()
            auth = {"Authorization": f"Bearer {tokens['access_token']}"}
            reauth = await client.post(
                "/reauth", json={"password": "wonderland-2024"}, headers=auth
            )
            assert reauth.status_code == 200
            assert (await client.post("/mfa/enroll", headers=auth)).status_code == 200
            statuses = [
                (
                    await client.post(
                        "/mfa/confirm", json={"code": "000000"}, headers={**auth, **source(i)}
                    )
                ).status_code
                for i in range(2, 10)
            ]
    # One request of the limit went to /mfa/enroll (the /mfa/* routes share a
    # budget; /reauth has its own).
    assert statuses[:4] == [401] * 4
    assert statuses[4:] == [429] * 4


# -- default rate limits on the auth routes -----------------------------------------


def test_auth_rate_limits_are_on_by_default() -> None:
    """Login, sign-up and MFA limits (per IP and per account) are set by default."""
    settings = SecuritySettings(_env_file=None)
    assert settings.auth_rate_limits_enabled
    assert settings.login_rate_limits and settings.login_account_rate_limits
    assert settings.signup_rate_limits and settings.mfa_rate_limits
    assert settings.mfa_account_rate_limits
    assert "/signup" in settings.signup_paths and "/mfa/*" in settings.mfa_paths


@pytest.mark.anyio
async def test_signup_is_rate_limited_per_address(tmp_path: Path) -> None:
    """The sixth sign-up from one address within a minute is 429 with Retry-After."""
    async for app in _app(_settings(tmp_path), fixed_time=True):
        async with client_for(app) as client:
            answers = [
                await client.post(
                    "/signup",
                    json={"username": f"user{i}", "password": "long-enough-1"},
                    headers=source(7),
                )
                for i in range(6)
            ]
    assert [a.status_code for a in answers] == [201] * 5 + [429]
    assert answers[-1].headers["Retry-After"] == "40"  # the clock stands 20 s into the minute


@pytest.mark.anyio
async def test_signup_limit_holds_with_a_global_limit_and_an_exemption(tmp_path: Path) -> None:
    """The sign-up table is served by the global rate-limit layer: a global default
    limit does not replace it, and exempting the path from the global limit does
    not exempt it from the sign-up limit."""
    for extra in (
        {"rate_limits": ["1000/minute"]},
        {"rate_limits": ["1000/minute"], "rate_limit_exempt_paths": ["/signup"]},
    ):
        async for app in _app(_settings(tmp_path, **extra), fixed_time=True):
            async with client_for(app) as client:
                answers = [
                    await client.post(
                        "/signup",
                        json={"username": f"user{i}", "password": "long-enough-1"},
                        headers=source(8),
                    )
                    for i in range(6)
                ]
        assert [a.status_code for a in answers] == [201] * 5 + [429], extra


@pytest.mark.anyio
async def test_login_is_rate_limited_per_address_and_per_account(tmp_path: Path) -> None:
    """Logins beyond the per-IP limit (any user names) and beyond the per-account
    limit (any addresses) are 429."""
    settings = _settings(
        tmp_path, login_rate_limits=["3/minute"], login_account_rate_limits=["4/minute"]
    )
    async for app in _app(settings, fixed_time=True):
        async with client_for(app) as client:
            by_ip = [
                (
                    await client.post(
                        "/login",
                        json={"username": f"nobody{i}", "password": "whatever-1"},
                        headers=source(1),
                    )
                ).status_code
                for i in range(4)
            ]
            by_account = [
                (
                    await client.post(
                        "/login",
                        json={"username": "alice", "password": f"whatever-{i}"},
                        headers=source(10 + i),
                    )
                ).status_code
                for i in range(5)
            ]
    assert by_ip == [401, 401, 401, 429]
    assert by_account == [401, 401, 401, 401, 429]


# -- sign-up names --------------------------------------------------------------------

# Mixed-script look-alikes (Latin "alice" with a Cyrillic "a") are refused as
# malformed whatever exists: tests/auth/test_usernames.py.
REFUSED_NAMES = [
    pytest.param("admin", id="reserved"),
    pytest.param("ROOT", id="reserved-upper-case"),
    pytest.param("adrnin", id="reserved-confusable-rn"),
    pytest.param("admin.", id="reserved-trailing-dot"),
    pytest.param("root_", id="reserved-trailing-underscore"),
    pytest.param("r00t", id="reserved-zeros-for-o"),
    pytest.param("adm1n", id="reserved-one-for-i"),
    pytest.param("Administrator", id="reserved-long-form"),
    pytest.param("\u0455\u0441\u043e\u0440\u0435", id="confusable-with-scope-all-cyrillic"),
    pytest.param("\uff41lice", id="full-width-alice-is-alice"),
    pytest.param("ALICE", id="taken-other-case"),
    pytest.param("alice", id="taken"),
]


@pytest.mark.anyio
async def test_taken_reserved_and_confusable_names_get_one_answer(app: FastAPI) -> None:
    """A taken, a reserved and a confusable name are refused with the very same
    answer, so sign-up does not say which names exist."""
    answers = []
    async with client_for(app) as client:
        scope = {"username": "scope", "password": "long-enough-1"}
        assert (await client.post("/signup", json=scope)).status_code == 201
        for name in [p.values[0] for p in REFUSED_NAMES]:
            answers.append(
                await client.post("/signup", json={"username": name, "password": "long-enough-1"})
            )
    assert {(a.status_code, a.text) for a in answers} == {
        (400, '{"detail":"username is not available"}')
    }


@pytest.mark.anyio
@pytest.mark.parametrize(
    "name",
    [
        pytest.param("<b>x</b>", id="markup"),
        pytest.param('say"hi', id="quote"),
        pytest.param("tom&jerry", id="ampersand"),
        pytest.param("bob\u202eevil", id="bidi-override"),
        pytest.param("al\u200bice", id="zero-width-space"),
        pytest.param("eve\x00", id="nul"),
        pytest.param("dave\x1b[31m", id="terminal-escape"),
        pytest.param("with space", id="space"),
        pytest.param(".dotfirst", id="punctuation-first"),
    ],
)
async def test_markup_and_control_characters_are_refused(app: FastAPI, name: str) -> None:
    """Names with markup, controls, format characters or spaces are 400."""
    async with client_for(app) as client:
        answer = await client.post("/signup", json={"username": name, "password": "long-enough-1"})
    assert answer.status_code == 400
    assert "letters" in answer.json()["detail"] or "start" in answer.json()["detail"]


@pytest.mark.anyio
async def test_names_are_stored_normalized(app: FastAPI) -> None:
    """A new name is stored NFKC + casefolded: ``Zoë`` signs in as ``zoë``."""
    async with client_for(app) as client:
        created = await client.post(
            "/signup", json={"username": "Zoe\u0308", "password": "long-enough-1"}
        )
        login = await client.post(
            "/login", json={"username": "zo\u00eb", "password": "long-enough-1"}
        )
    assert created.status_code == 201 and created.json()["username"] == "zo\u00eb"
    assert login.status_code == 200


def test_without_icu_only_ascii_names_are_accepted() -> None:
    """Without ICU's skeletons the policy refuses non-ASCII names (it cannot
    compare them) and still folds ASCII look-alikes."""
    fallback = UsernamePolicy(["admin"], ascii_only=True)
    assert fallback.problem("\u0430lice") is not None
    assert fallback.problem("alice") is None
    assert fallback.is_reserved("adrnin")
    assert fallback.skeleton("l0gin") == fallback.skeleton("login")


def test_icu_skeletons_catch_cross_script_confusables() -> None:
    """With ICU (the usernames extra), a Cyrillic or Greek look-alike has the
    Latin name's skeleton."""
    if icu_skeleton() is None:
        pytest.skip("PyICU (the usernames extra) is not installed")
    policy = UsernamePolicy()
    assert policy.unicode
    assert policy.skeleton("\u0430lice") == policy.skeleton("alice")
    assert policy.skeleton("\u03bfscar") == policy.skeleton("oscar")  # Greek omicron
    cyrillic = "\u0455\u0441\u043e\u0440\u0435"  # scope in Cyrillic letters only
    assert policy.skeleton(cyrillic) == policy.skeleton("scope")
    assert policy.problem(cyrillic) is None  # well-formed; refused only beside scope
