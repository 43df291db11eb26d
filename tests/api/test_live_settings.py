"""Live settings through the admin API (issue 14, part C), in process on the example
app: validation against the settings model, the admin key plus a recent
re-authentication, If-Match and 409, the audit record, and each change taking
effect in the layer it names (inspection, rate limits, header policy, lockout)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from examples.app import DEMO_USERS, create_app
from pynomaly_security.live import LIVE_FIELDS, LiveSettings, VersionConflict
from pynomaly_security.settings import SecuritySettings
from pynomaly_security.storage import create_store
from tests.storage._redis_server import run_redis_server

KEY = "test-admin-key-0123456789abcdef-live"
ADMIN = {"X-API-Key": KEY}
LIVE = "/api/security/settings/live"
ATTACK = {"q": "' OR 1=1 UNION SELECT password FROM users--"}


def settings(tmp_path: Path, **extra: Any) -> SecuritySettings:
    return SecuritySettings(
        _env_file=None,
        admin_api_key=KEY,
        development_mode=True,
        audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
        sqli_edge_mode="block",  # ATTACK is SQL injection: these tests watch the edge
        **extra,
    )


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    application = create_app(settings(tmp_path))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def admin_session(client: httpx.AsyncClient, *, reauth: bool = True) -> dict[str, str]:
    """Headers of an admin: the admin key, and alice's session (re-authenticated)."""
    creds = {"username": "alice", "password": DEMO_USERS["alice"]}
    login = await client.post("/login", json=creds)
    assert login.status_code == 200, login.text
    headers = {**ADMIN, "Authorization": f"Bearer {login.json()['access_token']}"}
    if reauth:
        again = await client.post("/reauth", json={"password": creds["password"]}, headers=headers)
        assert again.status_code == 200, again.text
    return headers


async def patch(
    client: httpx.AsyncClient, headers: dict[str, str], body: Any, version: int | None
) -> httpx.Response:
    extra = {"If-Match": f'"{version}"'} if version is not None else {}
    return await client.patch(LIVE, json=body, headers={**headers, **extra})


@pytest.mark.anyio
async def test_get_shows_every_live_value_and_its_version(client: httpx.AsyncClient) -> None:
    """GET answers each live field's value in effect, version 0 as the ETag, and needs
    the admin key."""
    assert (await client.get(LIVE)).status_code == 401
    answer = await client.get(LIVE, headers=ADMIN)
    assert answer.status_code == 200
    assert answer.headers["etag"] == '"0"'
    body = answer.json()
    assert body["version"] == 0 and body["overridden"] == []
    assert set(body["values"]) == set(LIVE_FIELDS)
    assert body["values"]["detection_mode"] == "block" and body["values"]["rate_limits"] == []


@pytest.mark.anyio
async def test_a_change_needs_the_key_a_session_and_a_recent_reauth(
    client: httpx.AsyncClient,
) -> None:
    """Without the admin key 401; with it but no session 401; a session that did not
    re-authenticate gets RFC 9470's challenge; nothing changed until all three hold."""
    change = {"detection_mode": "detect"}
    assert (await patch(client, {}, change, 0)).status_code == 401
    assert (await patch(client, ADMIN, change, 0)).status_code == 401
    bearer_only = await admin_session(client, reauth=False)
    refused = await patch(client, bearer_only, change, 0)
    assert refused.status_code == 401, refused.text
    assert refused.json()["detail"] == "reauth_required"
    assert "insufficient_user_authentication" in refused.headers["www-authenticate"]
    assert (await client.get(LIVE, headers=ADMIN)).json()["version"] == 0

    headers = await admin_session(client)
    done = await patch(client, headers, change, 0)
    assert done.status_code == 200, done.text
    assert done.headers["etag"] == '"1"'
    assert done.json()["changes"] == {"detection_mode": {"old": "block", "new": "detect"}}


@pytest.mark.anyio
async def test_bad_input_is_a_clear_4xx(client: httpx.AsyncClient) -> None:
    """A setting outside the allow-list is 400 naming it (a secret's value never echoed),
    a bad value 422 naming the field and what it accepts, no If-Match 428, an
    If-Match that is not a version 409, a body that is not an object 422."""
    headers = await admin_session(client)
    not_live = await patch(
        client, headers, {"admin_api_key": "x" * 40, "detection_level": 3, "nope": 1}, 0
    )
    assert not_live.status_code == 400, not_live.text
    assert set(not_live.json()["fields"]) == {"admin_api_key", "nope"}
    assert "x" * 40 not in not_live.text

    invalid = await patch(client, headers, {"detection_level": 9, "hsts_max_age": "soon"}, 0)
    assert invalid.status_code == 422, invalid.text
    errors = {e["field"]: e["message"] for e in invalid.json()["errors"]}
    assert set(errors) == {"detection_level", "hsts_max_age"}
    assert "4" in errors["detection_level"]

    bad_limit = await patch(client, headers, {"rate_limits": ["5 per fortnight"]}, 0)
    assert bad_limit.status_code == 422, bad_limit.text
    assert bad_limit.json()["errors"][0]["field"] == "rate_limits"

    assert (await patch(client, headers, {"detection_level": 3}, None)).status_code == 428
    assert (await patch(client, headers, {"detection_level": 3}, -5)).status_code == 409
    assert (await patch(client, headers, [1, 2], 0)).status_code == 422
    assert (await patch(client, headers, {}, 0)).status_code == 400
    assert (await client.get(LIVE, headers=ADMIN)).json()["version"] == 0


@pytest.mark.anyio
async def test_stale_version_is_a_conflict(client: httpx.AsyncClient) -> None:
    """Two admins change from version 0: the first wins, the second gets 409 with the
    current version, and succeeds when it retries against it."""
    headers = await admin_session(client)
    assert (await patch(client, headers, {"detection_level": 3}, 0)).status_code == 200
    stale = await patch(client, headers, {"detection_level": 1}, 0)
    assert stale.status_code == 409 and stale.json()["version"] == 1
    retried = await patch(client, headers, {"detection_level": 1}, 1)
    assert retried.status_code == 200 and retried.json()["values"]["detection_level"] == 1


@pytest.mark.anyio
async def test_changes_take_effect_and_reset(client: httpx.AsyncClient) -> None:
    """detect mode lets an injection through; a global limit answers 429 with RateLimit
    fields; CSP off drops the header; the lockout trips at the new threshold; a null
    resets a field to its start-up value."""
    assert (await client.get("/search", params=ATTACK)).status_code == 403
    assert "content-security-policy" in (await client.get("/health")).headers
    headers = await admin_session(client)
    change = {
        "detection_mode": "detect",
        "rate_limits": "3/minute",
        "rate_limit_exempt_paths": ["/login", "/reauth", "/api/security/*"],
        "csp_enabled": False,
        "brute_force_max_attempts": 2,
    }
    done = await patch(client, headers, change, 0)
    assert done.status_code == 200, done.text
    assert done.json()["values"]["rate_limits"] == ["3/minute"]  # stored as the model reads it

    assert (await client.get("/search", params=ATTACK)).status_code == 200  # counted: 1 of 3
    answers = [await client.get("/health") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert "ratelimit-policy" in answers[0].headers
    assert "content-security-policy" not in answers[0].headers

    bad = {"username": "bob", "password": "not-his-password"}
    statuses = [(await client.post("/login", json=bad)).status_code for _ in range(3)]
    assert statuses == [401, 401, 429]

    reset = await patch(client, headers, {"detection_mode": None, "rate_limits": None}, 1)
    assert reset.status_code == 200, reset.text
    assert reset.json()["values"]["detection_mode"] == "block"
    assert set(reset.json()["overridden"]) == {
        "rate_limit_exempt_paths",
        "csp_enabled",
        "brute_force_max_attempts",
    }
    assert (await client.get("/search", params=ATTACK)).status_code == 403
    assert "ratelimit-policy" not in (await client.get("/health")).headers


@pytest.mark.anyio
async def test_a_change_is_audited_with_who_and_what(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The audit trail holds one config_change record: alice's user id, the version and
    each field's old and new value."""
    headers = await admin_session(client)
    assert (await patch(client, headers, {"detection_level": 4}, 0)).status_code == 200
    stack = app.state.pynomaly_security
    rows = await stack.audit_logger.query(event_type="config_change", limit=10)
    [row] = rows
    alice = (await client.get("/me", headers=headers)).json()["user_id"]
    assert row["user_id"] == alice and row["action"] == "live_settings_change"
    assert row["source_ip"] == "198.51.100.7" and row["request_id"]
    assert row["details"] == {
        "version": 1,
        "changes": {"detection_level": {"old": 2, "new": 4}},
    }


@pytest.mark.anyio
async def test_two_stacks_on_one_store_converge(store_url: str, tmp_path: Path) -> None:
    """Two LiveSettings on one store (two workers): a change through one is seen by the
    other's refresh; a change against a version the other already replaced conflicts,
    of two concurrent changes one wins, and a third started later begins at the
    stored version."""
    store = create_store(store_url, **({"key_prefix": "pns-live:"} if "redis" in store_url else {}))
    base = settings(tmp_path)
    seen: list[str] = []
    one, two = LiveSettings(base, store), LiveSettings(base, store)
    two.subscribe(lambda s: seen.append(s.detection_mode))
    await store.start()
    try:
        await one.update({"detection_mode": "detect"}, expected_version=0, actor="u1")
        assert await two.refresh() and seen == ["detect"] and two.current.version == 1
        await two.update({"detection_level": 3}, expected_version=1, actor="u2")
        with pytest.raises(VersionConflict):
            await one.update({"detection_level": 1}, expected_version=1, actor="u1")
        assert one.current.version == 2 and one.current.settings.detection_level == 3

        # Two changes at once from the same version: the store's compare-and-set
        # lets exactly one through.
        results = await asyncio.gather(
            one.update({"hsts_max_age": 60}, expected_version=2, actor="u1"),
            two.update({"hsts_max_age": 120}, expected_version=2, actor="u2"),
            return_exceptions=True,
        )
        assert sorted(type(r).__name__ for r in results) == ["VersionConflict", "tuple"]

        # A worker that starts later applies the stored version before it serves.
        late = LiveSettings(base, store)
        await late.start()
        try:
            assert late.current.version == 3
            assert late.current.settings.detection_mode == "detect"
            assert late.current.settings.hsts_max_age in (60, 120)
        finally:
            await late.aclose()
    finally:
        await store.aclose()


@pytest.mark.anyio
async def test_detector_thresholds_change_live(app: FastAPI, client: httpx.AsyncClient) -> None:
    """With ANOMALY_MIN_HISTORY lowered to 2 live, bob's third request as a signed-in
    user, from a new address, raises an anomalous_access alert (the default, 10,
    would not)."""
    headers = await admin_session(client)
    done = await patch(client, headers, {"anomaly_min_history": 2}, 0)
    assert done.status_code == 200, done.text
    creds = {"username": "bob", "password": DEMO_USERS["bob"]}
    token = (await client.post("/login", json=creds)).json()["access_token"]
    bob = {"Authorization": f"Bearer {token}"}
    for _ in range(2):
        assert (await client.get("/me", headers=bob)).status_code == 200
    transport = httpx.ASGITransport(app=app, client=("203.0.113.99", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as elsewhere:
        assert (await elsewhere.get("/me", headers=bob)).status_code == 200
    alerts = (await client.get("/api/security/alerts", headers=ADMIN)).json()["alerts"]
    assert [a["details"]["reason"] for a in alerts if a["alert_type"] == "anomalous_access"] == [
        "new_ip"
    ]


@pytest.mark.anyio
@pytest.mark.redis
async def test_store_down_is_503_never_500(tmp_path: Path) -> None:
    """With the shared Redis stopped, GET and PATCH answer 503 with Retry-After, and
    the app keeps serving with the settings it had."""
    with run_redis_server() as (url, proc):
        application = create_app(settings(tmp_path, redis_url=url))
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application, client=("198.51.100.7", 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                headers = await admin_session(c)
                proc.terminate()
                proc.wait()
                down = await c.get(LIVE, headers=ADMIN)
                assert down.status_code == 503 and down.headers["retry-after"]
                change = await patch(c, headers, {"detection_mode": "detect"}, 0)
                assert change.status_code == 503, change.text
                assert (await c.get("/search", params=ATTACK)).status_code == 403
