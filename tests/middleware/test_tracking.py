"""User tracking: identity, correlation ids, contextvars, login outcomes."""

from __future__ import annotations

import httpx
import pytest
import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from pynomaly_security.middleware.tracking import UserTrackingMiddleware
from pynomaly_security.monitor import EventKind, SecurityMonitor, UserTracker
from pynomaly_security.network.client_ip import ClientIPResolver
from pynomaly_security.network.hosts import DEFAULT_ALLOWED_HOSTS, TrustedHosts


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def _app(
    *,
    resolver: ClientIPResolver | None = None,
    tracker: UserTracker | None = None,
    monitor: SecurityMonitor | None = None,
    hosts: TrustedHosts | None = None,
) -> Starlette:
    async def whoami(request: Request) -> JSONResponse:
        ctx = request.state.pynomaly_security
        bound = structlog.contextvars.get_contextvars()
        return JSONResponse(
            {
                "ip": ctx.client_ip,
                "request_id": ctx.request_id,
                "bound": bound.get("request_id"),
                "client_request_id": ctx.client_request_id,
                "bound_client": bound.get("client_request_id"),
            }
        )

    async def login(request: Request) -> JSONResponse:
        body = await request.json()
        if body.get("password") == "right":
            return JSONResponse({"ok": True})
        return JSONResponse({"ok": False}, status_code=401)

    async def me(request: Request) -> JSONResponse:
        request.state.pynomaly_security.user_id = "alice"
        return JSONResponse({"user": "alice"})

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"rid": websocket.state.pynomaly_security.request_id})
        await websocket.close()

    return Starlette(
        routes=[
            Route("/whoami", whoami),
            Route("/login", login, methods=["POST"]),
            Route("/me", me),
            WebSocketRoute("/ws", ws),
        ],
        middleware=[
            Middleware(
                UserTrackingMiddleware,  # type: ignore[arg-type]
                resolver=resolver,
                tracker=tracker,
                monitor=monitor,
                login_paths=["/login"],
                hosts=hosts,
            )
        ],
    )


@pytest.mark.anyio
async def test_request_id_is_the_servers_and_the_clients_is_labelled(make_client) -> None:  # type: ignore[no-untyped-def]
    """The request id is always generated; a well-formed client X-Request-ID is kept
    apart as client_request_id (context, structlog, X-Client-Request-ID); a malformed
    one is dropped. Issue 12, item 13."""
    async with make_client(_app()) as client:
        fresh = await client.get("/whoami")
        rid = fresh.headers["x-request-id"]
        assert len(rid) == 32 and fresh.json()["request_id"] == rid == fresh.json()["bound"]
        assert fresh.json()["client_request_id"] is None and fresh.json()["bound_client"] is None
        assert "x-client-request-id" not in fresh.headers
        kept = await client.get("/whoami", headers={"X-Request-ID": "abc-123-def-456"})
        body = kept.json()
        assert kept.headers["x-request-id"] == body["request_id"] == body["bound"] != rid
        assert len(body["request_id"]) == 32
        assert body["client_request_id"] == body["bound_client"] == "abc-123-def-456"
        assert kept.headers["x-client-request-id"] == "abc-123-def-456"
        for bad_id in ("bad id\r\n<script>", "x" * 129, "-leading-dash", "a/b", "\u00e9t\u00e9"):
            bad = await client.get("/whoami", headers={"X-Request-ID": bad_id.encode()})
            assert len(bad.headers["x-request-id"]) == 32
            assert bad.json()["client_request_id"] is None
            assert "x-client-request-id" not in bad.headers
    # The binding is undone after the request.
    bound = structlog.contextvars.get_contextvars()
    assert "request_id" not in bound and "client_request_id" not in bound


@pytest.mark.anyio
async def test_a_client_cannot_reuse_a_server_request_id(make_client) -> None:  # type: ignore[no-untyped-def]
    """Replaying an id the server issued, or one id on many requests, never gives two
    requests the same request id (the audit trail's key). Issue 12, item 13."""
    async with make_client(_app()) as client:
        issued = (await client.get("/whoami")).headers["x-request-id"]
        ids = {issued}
        for _ in range(5):
            again = await client.get("/whoami", headers={"X-Request-ID": issued})
            assert again.json()["client_request_id"] == issued
            ids.add(again.json()["request_id"])
        assert len(ids) == 6


@pytest.mark.parametrize(
    ("trusted", "peer", "xff", "expected"),
    [
        pytest.param([], "203.0.113.7", "1.2.3.4", "203.0.113.7", id="no-proxy-xff-ignored"),
        pytest.param(["10.0.0.0/8"], "203.0.113.7", "1.2.3.4", "203.0.113.7", id="untrusted-peer"),
        pytest.param(["10.0.0.0/8"], "10.0.0.5", "198.51.100.9", "198.51.100.9", id="trusted-peer"),
        pytest.param(
            ["10.0.0.0/8"], "10.0.0.5", "6.6.6.6, 198.51.100.9", "198.51.100.9", id="spoof-left"
        ),
    ],
)
@pytest.mark.anyio
async def test_client_ip_through_proxies(
    trusted: list[str], peer: str, xff: str, expected: str
) -> None:
    """X-Forwarded-For is believed only from configured proxies, right to left."""
    app = _app(resolver=ClientIPResolver(trusted))
    transport = httpx.ASGITransport(app=app, client=(peer, 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/whoami", headers={"X-Forwarded-For": xff})
    assert response.json()["ip"] == expected


@pytest.mark.anyio
async def test_login_outcomes_reach_the_monitor_and_nothing_locks_here(make_client) -> None:  # type: ignore[no-untyped-def]
    """Each 401 on the login route is a LOGIN_FAILURE event and each 2xx a
    LOGIN_SUCCESS for the monitor; the tracking layer counts nothing itself (the
    shared lockout, LoginLockoutMiddleware, does), so a sixth attempt still
    reaches the app."""
    clock = Clock()
    monitor = SecurityMonitor(clock=clock)
    async with monitor, make_client(_app(monitor=monitor)) as client:
        for _ in range(5):
            bad = await client.post("/login", json={"username": "alice", "password": "wrong"})
            assert bad.status_code == 401
        good = await client.post("/login", json={"username": "alice", "password": "right"})
        assert good.status_code == 200
        await monitor.flush()
    summary = await monitor.get_security_summary()
    assert summary["recent_metrics"]["failed_logins"] == 5
    assert summary["recent_metrics"]["successful_logins"] == 1


@pytest.mark.anyio
async def test_login_body_reaches_the_app_intact(make_client) -> None:  # type: ignore[no-untyped-def]
    """Reading the user name does not consume the body the app reads."""
    async with make_client(_app()) as client:
        response = await client.post("/login", json={"username": "bob", "password": "right"})
        assert response.status_code == 200


@pytest.mark.anyio
async def test_activity_is_recorded_per_user_or_ip(make_client) -> None:  # type: ignore[no-untyped-def]
    """Requests land in the tracker under the app's user id, else under ip:<address>."""
    tracker = UserTracker()
    async with make_client(_app(tracker=tracker)) as client:
        await client.get("/me")
        await client.get("/whoami")
    await tracker.flush()
    [mine] = await tracker.get_user_activity("alice")
    assert (mine.path, mine.status_code, mine.client_ip) == ("/me", 200, "203.0.113.7")
    assert [r.path for r in await tracker.get_user_activity("ip:203.0.113.7")] == ["/whoami"]


@pytest.mark.anyio
async def test_authenticated_requests_feed_the_monitor(make_client) -> None:  # type: ignore[no-untyped-def]
    """Requests with a user become REQUEST events (for the anomalous-access detector)."""
    monitor = SecurityMonitor()
    async with monitor, make_client(_app(monitor=monitor)) as client:
        await client.get("/me")
        await monitor.flush()
    assert monitor.metrics.get("requests") == 1
    assert EventKind.REQUEST.value == "request"


def test_websocket_gets_a_request_id() -> None:
    """Websockets pass through and see the request context."""
    with TestClient(_app()) as client, client.websocket_connect("/ws") as ws:
        assert len(ws.receive_json()["rid"]) == 32


async def _raw(app: Starlette, scope_type: str, headers: list[tuple[bytes, bytes]]) -> list[dict]:  # type: ignore[type-arg]
    """Drive ``app`` with one raw ASGI request (headers exactly as given: httpx would
    add a Host of its own); the messages it sent."""
    sent: list[dict] = []  # type: ignore[type-arg]
    scope = {
        "type": scope_type,
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http" if scope_type == "http" else "ws",
        "path": "/ws" if scope_type == "websocket" else "/whoami",
        "raw_path": b"/whoami",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("203.0.113.9", 4000),
        "server": ("127.0.0.1", 8000),
    }
    pending = [
        {"type": "http.request", "body": b""}
        if scope_type == "http"
        else {"type": "websocket.connect"}
    ]

    async def receive() -> dict:  # type: ignore[type-arg]
        return pending.pop() if pending else {"type": "http.disconnect"}

    async def send(message: dict) -> None:  # type: ignore[type-arg]
        sent.append(message)

    await app(scope, receive, send)
    return sent


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ([(b"host", b"localhost:8000")], 200),
        ([], 400),  # no Host: Starlette's TrustedHostMiddleware refuses it too
        ([(b"host", b"localhost"), (b"host", b"evil.example")], 400),  # RFC 9112 3.2
        ([(b"host", b"localhost"), (b"host", b"localhost")], 400),
        ([(b"host", b"evil.example")], 400),
    ],
)
async def test_trusted_hosts_on_raw_requests(
    headers: list[tuple[bytes, bytes]], status: int
) -> None:
    """Missing and repeated Host headers are refused (Starlette's request.url would
    read the first of two; the app would build its URLs from a host it never
    vouched for)."""
    sent = await _raw(_app(hosts=TrustedHosts(DEFAULT_ALLOWED_HOSTS)), "http", headers)
    assert sent[0]["status"] == status


@pytest.mark.anyio
async def test_a_websocket_to_an_unknown_host_is_closed_before_accept() -> None:
    app = _app(hosts=TrustedHosts(DEFAULT_ALLOWED_HOSTS))
    refused = await _raw(app, "websocket", [(b"host", b"evil.example")])
    assert refused == [{"type": "websocket.close", "code": 1008, "reason": "invalid host header"}]
    accepted = await _raw(app, "websocket", [(b"host", b"localhost")])
    assert accepted[0]["type"] == "websocket.accept"


@pytest.mark.anyio
async def test_any_host_is_the_old_behaviour(make_client) -> None:  # type: ignore[no-untyped-def]
    """``ALLOWED_HOSTS=*`` (and the middleware used alone, without hosts) checks none."""
    for hosts in (TrustedHosts(["*"]), None):
        async with make_client(_app(hosts=hosts)) as client:
            response = await client.get("/whoami", headers={"Host": "anything.example"})
            assert response.status_code == 200


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        # No Content-Type: FastAPI reads JSON.
        (b'{"username": "Alice", "password": "x"}', {}),
        (b"username=Alice&password=x", {"Content-Type": "application/x-www-form-urlencoded"}),
        (
            b'--b\r\nContent-Disposition: form-data; name="username"\r\n\r\nAlice\r\n--b--\r\n',
            {"Content-Type": "multipart/form-data; boundary=b"},
        ),
    ],
    ids=["json-without-content-type", "form", "multipart"],
)
@pytest.mark.anyio
async def test_login_name_is_read_as_the_lockout_reads_it(
    make_client,  # type: ignore[no-untyped-def]
    content: bytes,
    headers: dict[str, str],
) -> None:
    """The login's user name comes from the login guard's reader (auth/login_body.py):
    every body shape FastAPI reads, normalized as the lockout counts it, so the
    login's activity lands under the account the lockout counts, ``alice``."""

    async def login(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse({"ok": False}, status_code=401)

    tracker = UserTracker()
    app = Starlette(
        routes=[Route("/login", login, methods=["POST"])],
        middleware=[Middleware(UserTrackingMiddleware, tracker=tracker)],
    )
    async with make_client(app) as client:
        response = await client.post("/login", content=content, headers=headers)
    assert response.status_code == 401
    await tracker.flush()
    [row] = await tracker.get_user_activity("alice")
    assert (row.path, row.status_code) == ("/login", 401)
