"""Logins under concurrency (issue 12, items 8 and 9), in-process.

Argon2 runs in the hasher's bounded thread pool, so the event loop serves other
requests while hashes are in flight, and a flood beyond the pool and its queue
gets 503 at once; and every login shape (JSON, form, multipart) reserves its
attempt in the shared store before the password is checked, so 50 guesses at
once check at most the configured number of passwords.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Form, HTTPException, Request

from examples.app import create_app
from pynomaly_security import setup_security_middleware
from pynomaly_security.auth.passwords import HashingBusy, PasswordHasher
from pynomaly_security.settings import SecuritySettings

ATTEMPTS = 5
GUESSES = 50
RIGHT = "guess-30-is-right"


def _settings(tmp_path: Path, **overrides: Any) -> SecuritySettings:
    values: dict[str, Any] = {
        "_env_file": None,
        "development_mode": True,
        "audit_db_url": f"sqlite:///{tmp_path / 'audit.db'}",
        "brute_force_max_attempts": ATTEMPTS,
        "admin_api_key": "test-admin-key-0123456789abcdef",
    }
    values.update(overrides)
    return SecuritySettings(**values)


def _client(app: FastAPI, ip: str = "198.51.100.23") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


# -- item 8: hashing off the event loop ------------------------------------------------


@pytest.mark.anyio
async def test_the_loop_serves_health_while_hashes_run_in_threads(tmp_path: Path) -> None:
    """Eight logins with random user names are hashed in worker threads; /health
    is answered while they are in flight (on the loop, hashing blocked it)."""
    # A generous wait: this machine may be slow; the bound is not what is tested here.
    app = create_app(
        _settings(
            tmp_path, password_hash_concurrency=2, password_hash_queue=16, password_hash_wait=300
        )
    )
    hasher: PasswordHasher = app.state.example_authenticator.passwords
    threads: set[str] = set()
    seen_busy: list[int] = []
    verify = hasher.verify

    def recording_verify(stored_hash: str | None, password: str) -> bool:
        threads.add(threading.current_thread().name)
        return verify(stored_hash, password)

    # Instance attribute over the bound method: records which thread ran it.
    hasher.verify = recording_verify  # type: ignore[method-assign]

    @app.get("/busy")
    async def busy() -> dict[str, int]:
        seen_busy.append(hasher.busy)
        return {"busy": hasher.busy}

    async with app.router.lifespan_context(app), _client(app) as client:
        logins = [
            asyncio.create_task(
                client.post(
                    "/login",
                    json={"username": secrets.token_hex(6), "password": "not-the-password"},
                )
            )
            for _ in range(8)
        ]
        for _ in range(10_000):  # the loop keeps turning while hashes run
            if hasher.busy:
                break
            await asyncio.sleep(0)
        answer = await client.get("/busy")
        statuses = [r.status_code for r in await asyncio.gather(*logins)]
    assert answer.status_code == 200
    assert seen_busy and seen_busy[0] > 0, "no hash was in flight when /busy was served"
    assert statuses == [401] * 8  # unknown users still cost a hash, and are refused
    assert threads and all(name.startswith("pynomaly-argon2") for name in threads)
    assert threading.main_thread().name not in threads


@pytest.mark.anyio
async def test_hashes_beyond_the_pool_and_queue_are_refused_at_once() -> None:
    """With one thread and one waiting place, the third concurrent hash raises
    HashingBusy without waiting; the admitted ones complete."""
    hasher = PasswordHasher(
        time_cost=2, memory_cost=32_768, parallelism=1, max_concurrent=1, max_waiting=1
    )
    stored = hasher.hash("correct horse")
    results = await asyncio.gather(
        *(hasher.averify(stored, "correct horse") for _ in range(6)), return_exceptions=True
    )
    busy = [r for r in results if isinstance(r, HashingBusy)]
    assert results[:2] == [True, True]
    # Retry-After is the wait a hash may take for a thread (wait_timeout, 2 s by default).
    assert [b.retry_after for b in busy] == [2] * 4
    assert hasher.busy == 0
    hasher.close()


@pytest.mark.anyio
async def test_login_flood_gets_503_with_retry_after(tmp_path: Path) -> None:
    """Logins beyond the hashing pool and queue are answered 503 + Retry-After,
    and their attempts are given back (not counted as failures)."""
    app = create_app(
        _settings(
            tmp_path,
            password_hash_concurrency=1,
            password_hash_queue=0,
            auth_rate_limits_enabled=False,
            trusted_proxies=["10.0.0.0/8"],
        )
    )
    async with app.router.lifespan_context(app), _client(app, "10.0.0.1") as client:
        answers = await asyncio.gather(
            *(
                client.post(
                    "/login",
                    json={"username": "alice", "password": "wrong-password"},
                    headers={"X-Forwarded-For": f"192.0.2.{i}"},
                )
                for i in range(1, 7)
            )
        )
        statuses = sorted(r.status_code for r in answers)
        assert 503 in statuses and 401 in statuses
        assert all(r.headers["Retry-After"] for r in answers if r.status_code == 503)
        lockouts = app.state.example_authenticator.lockouts
        account = lockouts.account_key("alice")
        assert await lockouts.store.get_count(f"lock:acct:{account}") == statuses.count(401)


# -- item 9: every login shape reserves its attempt ----------------------------------


def _host_app(tmp_path: Path) -> tuple[FastAPI, list[str]]:
    """A host app with its own login routes (JSON, form, multipart), as in the issue:
    a wrong password is 401. Each password check is recorded."""
    app = FastAPI()
    checked: list[str] = []

    async def check(username: str, password: str) -> dict[str, str]:
        checked.append(password)
        await asyncio.sleep(0.001)  # a password check takes time: others arrive meanwhile
        if username == "alice" and password == RIGHT:
            return {"token": "t"}
        raise HTTPException(401, "invalid credentials")

    @app.post("/login")
    async def json_login(request: Request) -> dict[str, str]:
        body = await request.json()
        return await check(body["username"], body["password"])

    @app.post("/auth/login")
    async def form_login(
        username: Annotated[str, Form()], password: Annotated[str, Form()]
    ) -> dict[str, str]:
        return await check(username, password)

    @app.post("/api/login")
    async def multipart_login(
        username: Annotated[str, Form()], password: Annotated[str, Form()]
    ) -> dict[str, str]:
        return await check(username, password)

    setup_security_middleware(app, settings=_settings(tmp_path, auth_rate_limits_enabled=False))
    return app, checked


def _guess(path: str, i: int) -> dict[str, Any]:
    password = RIGHT if i == 30 else f"wrong-{i}"
    fields = {"username": "alice", "password": password}
    if path == "/login":
        return {"json": fields}
    if path == "/auth/login":
        return {"data": fields}
    return {"files": {k: (None, v) for k, v in fields.items()}}


@pytest.mark.anyio
@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/login", id="json"),
        pytest.param("/auth/login", id="form"),
        pytest.param("/api/login", id="multipart"),
    ],
)
async def test_fifty_concurrent_guesses_check_at_most_five(tmp_path: Path, path: str) -> None:
    """50 guesses at once from one address: at most 5 passwords are checked and at
    most 5 answers are not 429, whatever the body shape."""
    app, checked = _host_app(tmp_path)
    async with app.router.lifespan_context(app), _client(app) as client:
        answers = await asyncio.gather(
            *(client.post(path, **_guess(path, i)) for i in range(1, GUESSES + 1))
        )
    statuses = [r.status_code for r in answers]
    # Each guess is reserved in the store before its password is checked: exactly
    # ATTEMPTS reservations succeed (all wrong), every other guess is refused.
    assert len(checked) == ATTEMPTS
    assert sorted(statuses) == [401] * ATTEMPTS + [429] * (GUESSES - ATTEMPTS)


@pytest.mark.anyio
async def test_a_body_naming_two_users_reserves_for_both(tmp_path: Path) -> None:
    """A body with ``username`` and ``email`` counts against both names: varying
    the field the app does not read buys no new guesses on the one it reads."""
    app, checked = _host_app(tmp_path)
    async with app.router.lifespan_context(app), _client(app) as client:
        statuses = [
            (
                await client.post(
                    "/auth/login",
                    data={"username": "alice", "email": f"x{i}@example.test", "password": "no"},
                )
            ).status_code
            for i in range(8)
        ]
    assert statuses == [401] * ATTEMPTS + [429] * 3
    assert len(checked) == ATTEMPTS


@pytest.mark.anyio
async def test_a_json_login_without_content_type_is_counted_for_its_user(
    tmp_path: Path,
) -> None:
    """FastAPI parses a body without Content-Type as JSON; the guard reads the same
    user name, so such guesses count against alice (per account, from any address)."""
    app, _ = _host_app(tmp_path)
    settings = app.state.pynomaly_security.settings
    assert settings.account_max_attempts > ATTEMPTS
    async with app.router.lifespan_context(app):
        lockouts = app.state.pynomaly_security.lockouts
        async with _client(app) as client:
            for i in range(3):
                answer = await client.post(
                    "/login",
                    content=b'{"username": "Alice", "password": "nope-%d"}' % i,
                    headers={"content-type": ""},
                )
                assert answer.status_code == 401
        account = lockouts.account_key("alice")
        assert await lockouts.store.get_count(f"lock:acct:{account}") == 3
