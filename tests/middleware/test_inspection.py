"""Input inspection through a real app: block, detect-only, replay, bad input."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from pynomaly_security.detection import Inspector
from pynomaly_security.detection.exemptions import inspection_exempt
from pynomaly_security.middleware.inspection import InputInspectionMiddleware
from pynomaly_security.middleware.stack import SecurityMiddleware
from pynomaly_security.middleware.tracking import UserTrackingMiddleware
from pynomaly_security.monitor import SecurityMonitor, ThreatLevel

SQLI = "1' OR '1'='1"


class Page(BaseModel):
    title: str
    content: str


def _app(
    *, mode: str = "block", monitor: SecurityMonitor | None = None, max_body: int = 1024
) -> tuple[Starlette, list[bytes]]:
    seen: list[bytes] = []

    async def echo(request: Request) -> Response:
        body = await request.body()
        seen.append(body)
        return Response(body, media_type=request.headers.get("content-type", "text/plain"))

    async def parsed(request: Request) -> JSONResponse:
        try:
            data = await request.json()
        except (ValueError, UnicodeDecodeError):
            return JSONResponse({"error": "invalid json"}, status_code=400)
        return JSONResponse({"type": type(data).__name__})

    async def search(request: Request) -> JSONResponse:
        return JSONResponse({"q": request.query_params.get("q", "")})

    @inspection_exempt(fields=["body"])
    async def upload(request: Request) -> Response:
        body = await request.body()
        seen.append(body)
        return Response(body, media_type="application/octet-stream")

    async def stream(request: Request) -> StreamingResponse:
        async def gen() -> AsyncIterator[bytes]:
            yield b"a"
            yield b"b"

        return StreamingResponse(gen())

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    app = Starlette(
        routes=[
            Route("/echo", echo, methods=["POST", "PUT"]),
            Route("/upload", upload, methods=["POST"]),
            Route("/parsed", parsed, methods=["POST"]),
            Route("/search", search),
            Route("/stream", stream),
            WebSocketRoute("/ws", ws),
        ],
        middleware=[
            Middleware(UserTrackingMiddleware),  # type: ignore[arg-type]
            Middleware(
                InputInspectionMiddleware,  # type: ignore[arg-type]
                inspector=Inspector(mode=mode),
                monitor=monitor,
                max_body_size=max_body,
            ),
        ],
    )
    return app, seen


@pytest.mark.anyio
async def test_sql_injection_in_query_is_blocked(make_client) -> None:  # type: ignore[no-untyped-def]
    """A SQL-injection query string gets 403 with the request id and never reaches the app."""
    monitor = SecurityMonitor()
    app, _ = _app(monitor=monitor)
    async with monitor, make_client(app) as client:
        response = await client.get("/search", params={"q": SQLI})
        assert response.status_code == 403
        body = response.json()
        assert body["error"] == "request_blocked"
        assert body["request_id"] == response.headers["x-request-id"]
        await monitor.flush()
        [alert] = await monitor.get_active_alerts()
    assert alert.alert_type == "injection_attack" and alert.threat_level is ThreatLevel.HIGH
    assert "sqli" in alert.details["families"]
    # The alert explains the verdict without carrying the whole value.
    assert all(f["field"].startswith("query.") for f in alert.details["findings"])
    assert monitor.metrics["blocked_requests"] == 1


@pytest.mark.anyio
async def test_a_repeated_clean_request_does_not_hide_a_changed_one(make_client) -> None:  # type: ignore[no-untyped-def]
    """Clean requests are remembered (path, query, inspected headers); a request that
    differs in any of those, or carries a body, is inspected in full."""
    app, _ = _app()
    async with make_client(app) as client:
        for _ in range(3):
            clean = await client.get("/search?q=shoes", headers={"X-Trace": "a1"})
            assert clean.status_code == 200
        for headers in ({"X-Trace": "${jndi:ldap://x/a}"}, {"User-Agent": "() { :; }; /bin/id"}):
            response = await client.get("/search?q=shoes", headers={"X-Trace": "a1", **headers})
            assert response.status_code == 403, headers
        assert (await client.get(f"/search?q={SQLI}", headers={"X-Trace": "a1"})).status_code == 403
        # Same path, query and headers, but a body: the body is inspected.
        assert (await client.request("GET", "/search?q=shoes", headers={"X-Trace": "a1"},
                                     content=SQLI)).status_code == 403  # fmt: skip


@pytest.mark.anyio
async def test_the_clean_memory_under_the_stack_still_blocks(make_client) -> None:  # type: ignore[no-untyped-def]
    """Under the stack's outer layer, a request the inspection layer remembers as
    clean passes, and the same request with a changed header or query is blocked."""
    inner, _ = _app()
    stack = SecurityMiddleware(InputInspectionMiddleware(inner.router, inspector=Inspector()))
    async with make_client(stack) as client:
        for _ in range(3):
            assert (await client.get("/search?q=shoes")).status_code == 200
        jndi = {"X-Trace": "${jndi:ldap://x/a}"}
        assert (await client.get("/search?q=shoes", headers=jndi)).status_code == 403
        assert (await client.get(f"/search?q={SQLI}")).status_code == 403
        assert (await client.get("/search?q=shoes")).status_code == 200


@pytest.mark.anyio
async def test_detect_only_passes_and_reports(make_client) -> None:  # type: ignore[no-untyped-def]
    """In detect mode the request reaches the app and a CRITICAL (unblocked) alert is raised."""
    monitor = SecurityMonitor()
    app, _ = _app(mode="detect", monitor=monitor)
    async with monitor, make_client(app) as client:
        response = await client.get("/search", params={"q": SQLI})
        assert response.status_code == 200 and response.json()["q"] == SQLI
        await monitor.flush()
        [alert] = await monitor.get_active_alerts()
    assert alert.threat_level is ThreatLevel.CRITICAL and alert.details["blocked"] is False


@pytest.mark.anyio
async def test_benign_requests_pass(make_client) -> None:  # type: ignore[no-untyped-def]
    """Ordinary queries and JSON bodies pass untouched."""
    app, _ = _app()
    async with make_client(app) as client:
        assert (await client.get("/search", params={"q": "O'Brien's red shoes"})).status_code == 200
        payload = {"name": "Widget", "tags": ["a", "b"], "price": 9.5}
        response = await client.post("/echo", json=payload)
        assert response.status_code == 200 and response.json() == payload


@pytest.mark.anyio
async def test_json_body_attack_is_blocked(make_client) -> None:  # type: ignore[no-untyped-def]
    """An attack nested in a JSON body is blocked before the app runs."""
    app, seen = _app()
    async with make_client(app) as client:
        response = await client.post(
            "/echo", json={"user": {"comment": "<script>alert(1)</script>"}}
        )
    assert response.status_code == 403 and seen == []


@pytest.mark.anyio
async def test_chunked_body_is_replayed_byte_for_byte(make_client) -> None:  # type: ignore[no-untyped-def]
    """A chunked (no Content-Length) JSON body reaches the app exactly as sent."""
    app, seen = _app()
    raw = json.dumps({"k": "välue", "n": [1, 2, 3]}).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(raw), 5):
            yield raw[i : i + 5]

    async with make_client(app) as client:
        response = await client.post(
            "/echo", content=chunks(), headers={"content-type": "application/json"}
        )
    assert response.status_code == 200 and response.content == raw and seen == [raw]


@pytest.mark.anyio
async def test_oversized_bodies_get_413(make_client) -> None:  # type: ignore[no-untyped-def]
    """Over the limit is 413, whether declared by Content-Length or streamed chunked."""
    app, seen = _app(max_body=1024)
    big = json.dumps({"x": "a" * 5000}).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(big), 512):
            yield big[i : i + 512]

    async with make_client(app) as client:
        declared = await client.post(
            "/echo", content=big, headers={"content-type": "application/json"}
        )
        streamed = await client.post(
            "/echo", content=chunks(), headers={"content-type": "application/json"}
        )
    assert declared.status_code == 413 and streamed.status_code == 413
    assert declared.json()["error"] == "request_too_large" and seen == []


@pytest.mark.anyio
async def test_binary_bodies_stream_through_only_where_exempt(make_client) -> None:  # type: ignore[no-untyped-def]
    """A binary body is read like any other (an app may take it as text): past the
    bound it is refused, never passed unread; on a route exempt from body
    inspection it streams through, unbuffered and unbounded."""
    app, seen = _app(max_body=16)
    blob = bytes(range(256)) * 8
    binary = {"content-type": "application/octet-stream"}
    async with make_client(app) as client:
        refused = await client.post("/echo", content=blob, headers=binary)
        blocked = await client.post("/echo", content=SQLI.encode(), headers=binary)
        response = await client.post("/upload", content=blob, headers=binary)
    assert (refused.status_code, blocked.status_code) == (413, 403)
    assert response.status_code == 200 and response.content == blob and seen == [blob]


@pytest.mark.parametrize(
    ("content", "ctype"),
    [
        pytest.param(b'{"a": ', "application/json", id="truncated-json"),
        pytest.param(b"\xff\xfe\xfa{not utf8", "application/json", id="invalid-utf8"),
        pytest.param(b"a=%ZZ&b=\xff", "application/x-www-form-urlencoded", id="bad-form"),
        pytest.param(b"--xx\r\nbroken", "multipart/form-data; boundary=xx", id="bad-multipart"),
    ],
)
@pytest.mark.anyio
async def test_malformed_bodies_never_500(make_client, content: bytes, ctype: str) -> None:  # type: ignore[no-untyped-def]
    """Malformed and non-UTF-8 bodies get a clear 4xx from us or the app, never a 500."""
    app, _ = _app()
    async with make_client(app) as client:
        response = await client.post("/parsed", content=content, headers={"content-type": ctype})
    # Nothing here is an attack: inspection passes each body on, and the endpoint's
    # own JSON parsing answers 400.
    assert (response.status_code, response.json()) == (400, {"error": "invalid json"})


@pytest.mark.anyio
async def test_deeply_nested_json_is_refused(make_client) -> None:  # type: ignore[no-untyped-def]
    """JSON nested far deeper than any real document gets a 400, not the app's RecursionError."""
    app, seen = _app(max_body=1_000_000)
    # 10,000 levels: under the element cap (deeper bodies are also too many
    # elements, refused 413 before they are parsed).
    deep = b"[" * 10_000 + b"]" * 10_000
    async with make_client(app) as client:
        response = await client.post(
            "/parsed", content=deep, headers={"content-type": "application/json"}
        )
    assert response.status_code == 400 and seen == []


@pytest.mark.anyio
async def test_streaming_response_passes(make_client) -> None:  # type: ignore[no-untyped-def]
    """Streaming responses are not touched."""
    app, _ = _app()
    async with make_client(app) as client:
        assert (await client.get("/stream")).content == b"ab"


def test_websocket_passes_through() -> None:
    """Websockets are not inspected or altered."""
    app, _ = _app()
    with TestClient(app) as client, client.websocket_connect("/ws") as ws:
        ws.send_text("' OR 1=1 --")
        assert ws.receive_text() == "' OR 1=1 --"


@pytest.mark.anyio
async def test_route_exemptions_and_typed_fields(make_client) -> None:  # type: ignore[no-untyped-def]
    """@inspection_exempt clears a field or a route; the rest of the app stays protected."""
    app = FastAPI()
    app.add_middleware(InputInspectionMiddleware, inspector=Inspector())

    @app.post("/cms/pages")
    @inspection_exempt(fields=["body.content"])
    async def save_page(page: Page) -> dict[str, str]:
        return {"title": page.title}

    @app.post("/admin/sql")
    @inspection_exempt()
    async def sql_console(page: Page) -> dict[str, str]:
        return {"ok": "yes"}

    @app.post("/comments")
    async def comment(page: Page) -> dict[str, str]:
        return {"title": page.title}

    html = "<p>Hello</p><script>alert(document.cookie)</script>"
    async with make_client(app) as client:
        ok = await client.post("/cms/pages", json={"title": "Home", "content": html})
        assert ok.status_code == 200
        title_attack = await client.post("/cms/pages", json={"title": html, "content": "x"})
        assert title_attack.status_code == 403
        assert (
            await client.post("/admin/sql", json={"title": SQLI, "content": html})
        ).status_code == 200
        assert (
            await client.post("/comments", json={"title": "t", "content": html})
        ).status_code == 403


@pytest.mark.anyio
async def test_weak_signals_raise_no_alert(make_client) -> None:  # type: ignore[no-untyped-def]
    """Sub-threshold findings (e.g. a curl User-Agent) neither block nor alert."""
    monitor = SecurityMonitor()
    app, _ = _app(monitor=monitor)
    async with monitor, make_client(app) as client:
        response = await client.get(
            "/search", params={"q": "lamp"}, headers={"User-Agent": "curl/8.5.0"}
        )
        assert response.status_code == 200
        await monitor.flush()
        assert await monitor.get_active_alerts() == []
    assert monitor.metrics.get("injection_attempts", 0) == 0


@pytest.mark.anyio
async def test_body_without_content_type_is_inspected(make_client) -> None:  # type: ignore[no-untyped-def]
    """FastAPI reads a body with no Content-Type as JSON, so it is inspected too."""
    app, seen = _app()
    async with make_client(app) as client:
        request = client.build_request(
            "POST", "/echo", content=b'{"c": "<script>alert(1)</script>"}'
        )
        request.headers.pop("content-type", None)
        response = await client.send(request)
    assert response.status_code == 403 and seen == []


class Address(BaseModel):
    zip: int
    street: str


class Order(BaseModel):
    quantity: int
    note: str
    address: Address


@pytest.mark.anyio
async def test_body_model_fields_are_typed(make_client) -> None:  # type: ignore[no-untyped-def]
    """Scalar fields of the route's body model are typed; a value that does not fit
    its type is still scanned, and free-text fields always are."""
    from pynomaly_security.detection.exemptions import typed_fields_of

    app = FastAPI()
    app.add_middleware(InputInspectionMiddleware, inspector=Inspector())

    @app.post("/orders")
    async def create(order: Order) -> dict[str, int]:
        return {"quantity": order.quantity}

    route = next(r for r in app.routes if getattr(r, "path", "") == "/orders")
    typed = typed_fields_of(route)
    assert typed["body.quantity"] == "int" and typed["body.address.zip"] == "int"
    assert "body.note" not in typed
    address = {"zip": 12345, "street": "1 Main St"}
    async with make_client(app) as client:
        ok = await client.post(
            "/orders", json={"quantity": 2, "note": "ring twice", "address": address}
        )
        assert ok.status_code == 200
        bad = await client.post(
            "/orders", json={"quantity": "1 OR 1=1--", "note": "x", "address": address}
        )
        assert bad.status_code == 403


class Price(BaseModel):
    price: float


def _fastapi_app(**middleware: object) -> tuple[FastAPI, list[object]]:
    seen: list[object] = []
    app = FastAPI()
    app.add_middleware(InputInspectionMiddleware, inspector=Inspector(), **middleware)  # type: ignore[arg-type]

    @app.post("/items")
    async def items(page: dict[str, object]) -> dict[str, object]:
        seen.append(page)
        return {"ok": True}

    @app.post("/price")
    async def price(body: Price) -> Price:
        seen.append(body)
        return body

    return app, seen


@pytest.mark.anyio
async def test_two_content_types_are_refused(make_client) -> None:  # type: ignore[no-untyped-def]
    """Issue 12 item 2: JSON then octet-stream made the inspector skip a body FastAPI
    parsed as JSON; an ambiguous request is refused 400 and never reaches the app."""
    monitor = SecurityMonitor()
    app, seen = _fastapi_app(monitor=monitor)
    body = json.dumps({"c": "<script>alert(1)</script>"}).encode()
    headers = [("content-type", "application/json"), ("content-type", "application/octet-stream")]
    async with monitor, make_client(app) as client:
        response = await client.post("/items", content=body, headers=headers)
        assert response.status_code == 400 and seen == []
        assert response.json()["error"] == "ambiguous_content_type"
        assert response.json()["request_id"]
    assert monitor.metrics["blocked_requests"] == 1


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity", b"1e999999"])
@pytest.mark.anyio
async def test_json_non_finite_gets_400_not_500(make_client, token: bytes) -> None:  # type: ignore[no-untyped-def]
    """Issue 12 item 12: {"price": NaN} made FastAPI answer 500; now 400 before the app."""
    app, seen = _fastapi_app()
    async with make_client(app) as client:
        response = await client.post(
            "/price",
            content=b'{"price": ' + token + b"}",
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 400 and seen == []
        assert response.json()["error"] == "json_non_finite"
        ok = await client.post("/price", json={"price": 2.5})
        assert ok.status_code == 200 and ok.json() == {"price": 2.5}


@pytest.mark.anyio
async def test_a_slow_body_gets_408(make_client) -> None:  # type: ignore[no-untyped-def]
    """A client that starts a body and never finishes it is answered 408 when the
    (tiny, for the test) body read timeout passes, instead of holding the request."""
    import anyio

    monitor = SecurityMonitor()
    app, seen = _fastapi_app(monitor=monitor, body_read_timeout=0.05)

    async def slow_body() -> AsyncIterator[bytes]:
        yield b'{"a": '
        await anyio.sleep_forever()  # the outside world: a client that stalls
        yield b"1}"  # pragma: no cover

    async with monitor, make_client(app) as client:
        response = await client.post(
            "/items", content=slow_body(), headers={"content-type": "application/json"}
        )
        assert response.status_code == 408 and seen == []
        assert response.json()["error"] == "body_read_timeout"
    assert monitor.metrics["blocked_requests"] == 1


@pytest.mark.anyio
async def test_the_clean_memory_never_passes_a_refused_request(make_client) -> None:  # type: ignore[no-untyped-def]
    """A request remembered clean, resent with what the memory's key leaves out
    (uninspected headers past the header limit, two Content-Lengths), is refused."""
    inner, _ = _app()
    stack = SecurityMiddleware(InputInspectionMiddleware(inner.router, inspector=Inspector()))
    async with make_client(stack) as client:
        for _ in range(3):
            assert (await client.get("/search?q=shoes")).status_code == 200
        many = [(f"accept-x{i}", "v") for i in range(120)]
        response = await client.get("/search?q=shoes", headers=many)
        assert (response.status_code, response.json()["error"]) == (431, "too_many_headers")
        lengths = [("content-length", "0"), ("content-length", "00")]
        response = await client.get("/search?q=shoes", headers=lengths)
        assert (response.status_code, response.json()["error"]) == (400, "ambiguous_content_length")
        assert (await client.get("/search?q=shoes")).status_code == 200


@pytest.mark.anyio
async def test_a_compressed_body_is_refused(make_client) -> None:  # type: ignore[no-untyped-def]
    """A gzip-encoded JSON body cannot be inspected, so it is refused 415."""
    import gzip

    app, seen = _fastapi_app()
    body = gzip.compress(json.dumps({"c": "<script>alert(1)</script>"}).encode())
    async with make_client(app) as client:
        response = await client.post(
            "/items",
            content=body,
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )
    assert response.status_code == 415 and seen == []


@pytest.mark.anyio
async def test_payloads_after_2000_values_are_blocked_through_the_app(make_client) -> None:  # type: ignore[no-untyped-def]
    """Issue 12 item 1, as reported: a payload after 2,000 empty pairs, 2,000 cookies,
    2,000 query parameters in front of a JSON body, or beside a JSON array of 2,000
    strings reached the app; now it is blocked, and past the field limit refused."""
    app, seen = _app(max_body=1_000_000)
    xss = "<script>alert(1)</script>"
    many = "&".join(f"p{i}=v" for i in range(2000))
    async with make_client(app) as client:
        assert (await client.get("/search?" + "&" * 2000 + f"q={xss}")).status_code == 403
        cookies = "; ".join(f"c{i}=v" for i in range(2000)) + f"; x={xss}"
        assert (await client.get("/search", headers={"cookie": cookies})).status_code == 403
        response = await client.post(f"/echo?{many}", json={"q": xss})
        assert response.status_code == 403
        response = await client.post("/echo", json={"a": ["x"] * 2000, "q": xss})
        assert response.status_code == 403
        response = await client.get("/search?" + "a&" * 10_001)
        assert (response.status_code, response.json()["error"]) == (413, "too_many_fields")
    assert seen == []


@pytest.mark.anyio
async def test_an_http2_body_without_length_headers_is_inspected() -> None:
    """HTTP/2 needs no Content-Length or Transfer-Encoding for a body: such a request
    is neither taken as bodiless nor matched with a remembered clean one."""
    from starlette.types import Message

    app, seen = _app()
    middleware = app.middleware_stack or app.build_middleware_stack()

    async def call(body: bytes) -> int:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "2",
            "method": "POST",
            "scheme": "https",
            "path": "/echo",
            "raw_path": b"/echo",
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"testserver"), (b"content-type", b"application/json")],
            "client": ("203.0.113.7", 50000),
            "server": ("testserver", 443),
        }
        messages: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
        out: list[Message] = []

        async def receive() -> Message:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            out.append(message)

        await middleware(scope, receive, send)
        return int(out[0]["status"])

    assert await call(b'{"q": "shoes"}') == 200
    assert await call(b'{"q": "shoes"}') == 200
    assert await call(b'{"q": "<script>alert(1)</script>"}') == 403
    assert seen == [b'{"q": "shoes"}', b'{"q": "shoes"}']
