"""The example app, tried as a new user would, through HTTP with lifespan."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from examples.app import create_app
from pynomaly_security import SecuritySettings

KEY = "test-admin-key-0123456789abcdef"
ADMIN = {"X-API-Key": KEY}


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        admin_api_key=KEY,
        development_mode=True,
        audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
        # The example's /search runs no SQL: these tests are about the edge blocking
        # (tests/sql/test_edge_mode.py has the default, SQL injection left to the sink).
        sqli_edge_mode="block",
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("198.51.100.23", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.mark.anyio
async def test_crud_and_search_work_behind_the_stack(client: httpx.AsyncClient) -> None:
    """Ordinary use of the API is unaffected, and every answer has the security headers."""
    created = await client.post(
        "/items", json={"name": "Desk lamp", "description": "Brass, 40 cm", "price": 39.9}
    )
    assert created.status_code == 201
    item_id = created.json()["id"]
    assert (await client.get(f"/items/{item_id}")).json()["name"] == "Desk lamp"
    found = await client.get("/search", params={"q": "brass"})
    assert [i["id"] for i in found.json()] == [item_id]
    assert (await client.get("/search", params={"q": "O'Reilly's lamp & shade"})).status_code == 200
    updated = await client.put(f"/items/{item_id}", json={"name": "Lamp", "price": 10})
    assert updated.status_code == 200
    assert (await client.delete(f"/items/{item_id}")).status_code == 204
    for response in (created, found, updated):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "content-security-policy" in response.headers
        assert "x-request-id" in response.headers


@pytest.mark.anyio
async def test_sql_injection_query_string_is_blocked(client: httpx.AsyncClient) -> None:
    """A SQL-injection query string gets 403 and shows up as an injection alert."""
    blocked = await client.get(
        "/search", params={"q": "1' UNION SELECT username, password FROM users--"}
    )
    assert blocked.status_code == 403 and blocked.json()["error"] == "request_blocked"
    assert blocked.headers["x-frame-options"] == "DENY"
    alerts = (await client.get("/api/security/alerts", headers=ADMIN)).json()["alerts"]
    assert any(a["alert_type"] == "injection_attack" for a in alerts)


@pytest.mark.anyio
async def test_brute_force_alert_acknowledge_and_activity(client: httpx.AsyncClient) -> None:
    """Five bad logins: a HIGH alert (admin only), 429 on the next login, acknowledge, activity."""
    for _ in range(5):
        bad = await client.post("/login", json={"username": "alice", "password": "guess"})
        assert bad.status_code == 401
    locked = await client.post("/login", json={"username": "alice", "password": "wonderland-2024"})
    assert locked.status_code == 429 and "retry-after" in locked.headers

    assert (await client.get("/api/security/alerts")).status_code == 401
    high = await client.get("/api/security/alerts", params={"threat_level": "high"}, headers=ADMIN)
    [alert] = [a for a in high.json()["alerts"] if a["alert_type"] == "brute_force"]
    assert alert["source_ip"] == "198.51.100.23"

    status = (await client.get("/api/security/status", headers=ADMIN)).json()
    assert status["monitoring_enabled"] and status["recent_metrics"]["failed_logins"] == 5
    assert status["recent_alerts"] == {"LOW": 0, "MEDIUM": 0, "HIGH": 1, "CRITICAL": 0}

    ack = await client.post(f"/api/security/alerts/{alert['alert_id']}/acknowledge", headers=ADMIN)
    assert ack.status_code == 200 and ack.json()["acknowledged"]
    remaining = (await client.get("/api/security/alerts", headers=ADMIN)).json()["alerts"]
    assert alert["alert_id"] not in [a["alert_id"] for a in remaining]

    activity = (await client.get("/api/security/users/alice/activity", headers=ADMIN)).json()
    assert activity["count"] == 6
    assert [a["status_code"] for a in activity["activities"]] == [429] + [401] * 5


@pytest.mark.anyio
async def test_successful_login(client: httpx.AsyncClient) -> None:
    """The demo user logs in; a wrong password is 401, never 500."""
    ok = await client.post("/login", json={"username": "bob", "password": "builder-2024"})
    assert ok.status_code == 200 and ok.json()["user"] == "bob"
    assert (
        await client.post("/login", json={"username": "nobody", "password": "x"})
    ).status_code == 401
    assert (
        await client.post("/login", content=b"{oops", headers={"content-type": "application/json"})
    ).status_code == 422


@pytest.mark.anyio
async def test_docs_and_openapi_are_served(client: httpx.AsyncClient) -> None:
    """/docs is served with its own CSP; the public OpenAPI schema documents the app's
    routes but not the admin API (ADMIN_ROUTES_IN_SCHEMA, off by default), whose
    routes still work. Issue 12, item 14."""
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "'sha256-" in docs.headers["content-security-policy"]
    schema = (await client.get("/openapi.json")).json()
    assert "/items" in schema["paths"] and "/login" in schema["paths"]
    assert not [p for p in schema["paths"] if p.startswith("/api/security")]
    assert "AdminAPIKey" not in schema.get("components", {}).get("securitySchemes", {})
    assert (await client.get("/api/security/status", headers=ADMIN)).status_code == 200


@pytest.mark.anyio
async def test_admin_routes_can_be_listed_in_the_schema(tmp_path: Path) -> None:
    """ADMIN_ROUTES_IN_SCHEMA=true lists /api/security/* for an internal docs page."""
    settings = SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        admin_api_key=KEY,
        development_mode=True,
        audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
        admin_routes_in_schema=True,
    )
    application = create_app(settings)
    transport = httpx.ASGITransport(app=application)
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as c,
    ):
        schema = (await c.get("/openapi.json")).json()
    assert "/api/security/alerts" in schema["paths"]
    assert "/api/security/alerts/{alert_id}/acknowledge" in schema["paths"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "EVIL.example:8000",
        "localhost.evil.example",
        "localhost@evil.example",
        "evil.example/localhost",
        "localhost:80@evil.example",
        "127.0.0.1.nip.io",
        "",
    ],
)
async def test_an_unknown_host_gets_no_redirect_to_it(client: httpx.AsyncClient, host: str) -> None:
    """FastAPI redirects /items/ to /items on the request's own Host: for a Host the
    app is not (ALLOWED_HOSTS, local names by default) the answer is 400 with no
    Location, before the app runs; the app's own names still get their redirect.
    Issue 12, "the request is the request the app thinks it is"."""
    refused = await client.get("/items/", headers={"Host": host})
    assert refused.status_code == 400, refused.headers.get("location")
    assert "location" not in refused.headers
    assert refused.json()["error"] == "invalid_host"
    assert refused.headers["x-frame-options"] == "DENY"  # still a response of ours
    assert refused.json()["request_id"] == refused.headers["x-request-id"]
    for ok_host in ("127.0.0.1:8000", "LOCALHOST", "localhost.", "[::1]:8000", "testserver"):
        ok = await client.get("/items/", headers={"Host": ok_host})
        assert ok.status_code == 307 and ok.headers["location"].endswith("/items")
        assert host.lower() not in ok.headers["location"] or not host


@pytest.mark.anyio
@pytest.mark.parametrize(
    "path",
    ["/items/", "//evil.example/", "///evil.example/", "/\\evil.example/", "/%2F%2Fevil.example/",
     "/%5Cevil.example/", "/items/?next=//evil.example/", "/api/security/status/", "/docs/"],
)  # fmt: skip
async def test_every_redirect_stays_on_an_allowed_host(
    client: httpx.AsyncClient, path: str
) -> None:
    """Whatever the path, a redirect the example issues (FastAPI's trailing-slash one is
    the only kind) names the request's own, allowed host: never a host taken from the
    path (//evil.example, backslashes, encoded slashes)."""
    # The raw path as given: httpx would read "//evil.example/" as a network-path reference.
    url = httpx.URL("http://127.0.0.1:8000").copy_with(raw_path=path.encode())
    assert url.raw_path == path.encode()
    response = await client.get(url)
    # A route's path with a trailing slash is redirected; a path naming another host
    # matches no route.
    routed = path.startswith(("/items/", "/api/security/status/", "/docs/"))
    assert response.status_code == (307 if routed else 404)
    if "location" in response.headers:
        location = httpx.URL(response.headers["location"])
        assert location.scheme == "http" and location.netloc == b"127.0.0.1:8000", location


@pytest.mark.anyio
async def test_a_remembered_request_with_another_host_is_still_refused(
    client: httpx.AsyncClient,
) -> None:
    """The memory of plain requests includes the Host header: a request seen as plain
    with an allowed Host does not vouch for the same request naming another host."""
    for _ in range(3):
        assert (await client.get("/health")).status_code == 200
    assert (await client.get("/health", headers={"Host": "evil.example"})).status_code == 400
    assert (await client.get("/health")).status_code == 200


@pytest.mark.anyio
async def test_host_lifespan_is_kept(tmp_path: Path) -> None:
    """An app's own lifespan still runs, with its state, inside ours."""
    from contextlib import asynccontextmanager

    from pynomaly_security import setup_security_middleware

    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, str]]:
        events.append("start")
        yield {"db": "connected"}
        events.append("stop")

    app = FastAPI(lifespan=lifespan)
    settings = SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        admin_api_key=KEY,
        development_mode=True,
        audit_db_url=f"sqlite:///{tmp_path / 'a.db'}",
    )
    stack = setup_security_middleware(app, settings=settings)
    async with app.router.lifespan_context(app) as state:
        assert state == {"db": "connected"} and events == ["start"]
        assert stack.security_monitor.running
    assert events == ["start", "stop"] and not stack.security_monitor.running


@pytest.mark.anyio
async def test_security_events_reach_the_audit_trail(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Failed logins, blocked injections and alerts are audit records, and the chain verifies."""
    for _ in range(5):
        await client.post("/login", json={"username": "carol", "password": "nope"})
    await client.get("/search", params={"q": "<script>alert(1)</script>"})
    audit = app.state.pynomaly_security.audit_logger
    committed = {e["event_type"] for e in await audit.query(limit=500)}
    assert {"login_failure", "injection_attempt"} <= committed
    await app.state.pynomaly_security.security_monitor.flush()
    types = {e["event_type"] for e in await audit.query(limit=500)}
    assert {"login_failure", "injection_attempt", "brute_force_detected"} <= types
    # Login outcomes and injection verdicts are committed before the response is sent,
    # so they are in the trail without waiting for the monitor.
    alerts = (await client.get("/api/security/alerts", headers=ADMIN)).json()["alerts"]
    await client.post(f"/api/security/alerts/{alerts[0]['alert_id']}/acknowledge", headers=ADMIN)
    admin = await audit.query(event_type="admin_action", limit=10)
    assert admin and admin[-1]["user_id"] == "admin"
    assert (await audit.verify()).ok


@pytest.mark.anyio
async def test_a_client_request_id_is_labelled_in_the_audit_trail(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Two failed logins sent with the same X-Request-ID (and one with an id the server
    issued before) are three audit records with three server request ids; the client's
    id is in each record's details as client_request_id. Issue 12, item 13."""
    issued = (await client.get("/health")).headers["x-request-id"]
    for sent in ("same-client-id", "same-client-id", issued):
        response = await client.post(
            "/login", json={"username": "carol", "password": "nope"}, headers={"X-Request-ID": sent}
        )
        assert response.status_code == 401
        assert response.headers["x-client-request-id"] == sent
        assert response.headers["x-request-id"] != sent
    audit = app.state.pynomaly_security.audit_logger
    failures = await audit.query(event_type="login_failure", limit=10)
    assert len(failures) == 3
    assert len({f["request_id"] for f in failures} | {issued}) == 4
    details = [f.get("details", f) for f in failures]
    assert [d["client_request_id"] for d in details] == ["same-client-id", "same-client-id", issued]


def _inspection_layer(app: FastAPI) -> object:
    layer = app.middleware_stack
    while layer is not None and type(layer).__name__ != "InputInspectionMiddleware":
        layer = getattr(layer, "app", None)
    assert layer is not None
    return layer


@pytest.mark.anyio
async def test_repeated_requests_keep_every_decision(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The inspection layer remembers a bodiless request it found clean (same path,
    query and inspected headers); everything else is still decided on every
    request: the client's X-Request-ID, an attack in one header, a body, the docs
    page's policy, a login."""
    search = {"q": "brass lamp"}
    ids = set()
    for _ in range(4):
        response = await client.get("/search", params=search, headers={"X-Trace": "t1"})
        assert response.status_code == 200
        assert response.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        ids.add(response.headers["x-request-id"])
    assert len(ids) == 4  # a fresh id each time, remembered or not
    assert len(_inspection_layer(app).clean) == 1  # type: ignore[attr-defined]

    for _ in range(2):  # the client's own id is echoed apart from the server's, every time
        own = await client.get(
            "/search", params=search, headers={"X-Trace": "t1", "X-Request-ID": "client-id-0001"}
        )
        assert own.headers["x-client-request-id"] == "client-id-0001"
        assert own.headers["x-request-id"] not in ids | {"client-id-0001"}
    attack = await client.get("/search", params=search, headers={"X-Trace": "${jndi:ldap://x/a}"})
    assert attack.status_code == 403
    with_body = await client.request(
        "GET", "/search", params=search, headers={"X-Trace": "t1"},
        content=b"1' UNION SELECT password FROM users--",
    )  # fmt: skip
    assert with_body.status_code == 403
    for _ in range(3):
        docs = await client.get("/docs")
        assert "script-src" in docs.headers["content-security-policy"]
        assert docs.headers["cross-origin-opener-policy"] == "same-origin-allow-popups"
    for _ in range(5):
        bad = await client.post("/login", json={"username": "bob", "password": "guess"})
        assert bad.status_code == 401
    locked = await client.post("/login", json={"username": "bob", "password": "guess"})
    assert locked.status_code == 429
    activity = await client.get("/api/security/users/ip:198.51.100.23/activity", headers=ADMIN)
    searches = [a["status_code"] for a in activity.json()["activities"] if a["path"] == "/search"]
    assert sorted(searches) == [200] * 6 + [403] * 2  # 4 plain, 2 with an id, 2 attacks


def test_the_demo_server_shows_no_banner_and_logs_no_query_string(tmp_path: Path) -> None:
    """``make demo`` (python -m examples) under a real uvicorn: no ``server: uvicorn``
    header, and uvicorn's access log keeps the path but not the query string, where a
    token would otherwise land in the log. Issue 12, item 14."""
    import uvicorn

    from examples.__main__ import server_config

    settings = SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        admin_api_key=KEY,
        development_mode=True,
        audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(server_config(create_app(settings), "127.0.0.1", port))
    logged: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: logged.append(record.getMessage())  # type: ignore[method-assign]
    access = logging.getLogger("uvicorn.access")
    access.addHandler(handler)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            response = http.get("/health", params={"token": "s3cr3t-t0ken"})
            assert response.status_code == 200
            assert "server" not in response.headers
            refused = http.get("/items/", headers={"Host": "evil.example"})
            assert refused.status_code == 400 and "location" not in refused.headers
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        access.removeHandler(handler)
    assert any("/health?[redacted]" in line for line in logged), logged
    assert not [line for line in logged if "s3cr3t" in line]
