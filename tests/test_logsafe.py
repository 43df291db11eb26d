"""Our own outputs hold whatever a client sends: log lines cannot be forged or
broken (control and terminal characters, line separators, lone surrogates), query
strings stay out of the access log. Issue 12, items 14 and "Beyond the list"."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from pynomaly_security import SecuritySettings, setup_security_middleware
from pynomaly_security.auth.lockout import LockoutManager
from pynomaly_security.auth.login_guard import LoginLockoutMiddleware
from pynomaly_security.auth.users import normalize_username
from pynomaly_security.logsafe import (
    LOG_TEXT_MAX,
    EscapeControlCharacters,
    RedactQueryStrings,
    safe_text,
)
from pynomaly_security.middleware.ratelimit import RateLimitMiddleware
from pynomaly_security.storage.memory import MemoryStore

NASTY = ["\n", "\r", "\x1b[31m", "\x00", "\x7f", "\u2028", "\u0085", "\ud800", "\x9b"]


@pytest.fixture
def console() -> Iterator[io.BytesIO]:
    """structlog's console renderer (which writes strings raw) into a UTF-8 stream,
    as a terminal or a log file would take it; restored afterwards."""
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        logger_factory=structlog.PrintLoggerFactory(file=stream),
    )
    yield raw
    structlog.reset_defaults()


def _clean(output: bytes) -> list[str]:
    text = output.decode("utf-8")  # raises if a surrogate got through
    lines = text.splitlines()  # splits on \r, \x1c-\x1e, \x85, \u2028 too
    assert text.count("\n") == len(lines)
    for line in lines:
        assert line.isprintable(), line
    return lines


@pytest.mark.parametrize("bad", NASTY)
def test_safe_text_escapes_what_is_not_printable(bad: str) -> None:
    escaped = safe_text(f"a{bad}b")
    assert escaped.isprintable() and escaped.startswith("a") and escaped.endswith("b")
    assert escaped.encode("utf-8")
    assert safe_text("plain text, ünïcødé, 中文") == "plain text, ünïcødé, 中文"


def test_the_processor_keeps_every_event_on_one_line(console: io.BytesIO) -> None:
    structlog.configure(
        processors=[EscapeControlCharacters(), structlog.dev.ConsoleRenderer(colors=False)],
        logger_factory=structlog.PrintLoggerFactory(
            file=io.TextIOWrapper(console, encoding="utf-8", write_through=True)
        ),
    )
    log = structlog.get_logger()
    for bad in NASTY:
        log.info(f"event{bad}", user_agent=f"curl{bad}x", nested={"k": [f"v{bad}"]}, n=1)
        log.info("evt", **{f"key{bad}": "v"})
    assert len(_clean(console.getvalue())) == 2 * len(NASTY)


def _app(tmp_path: Path) -> Starlette:
    async def login(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse({"ok": False}, status_code=401)

    async def anything(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/login", login, methods=["POST"]), Route("/{p:path}", anything)])
    settings = SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        development_mode=True,
        admin_api_key="log-safety-admin-key-0123456789",
        audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
        audit_log_line=True,
    )
    setup_security_middleware(app, settings=settings)
    return app


async def _call(
    app: ASGIApp,
    path: str,
    headers: list[tuple[bytes, bytes]],
    body: bytes = b"",
    *,
    client: str = "203.0.113.5",
) -> int:
    """One raw ASGI request (paths and headers exactly as given, which no HTTP client
    sends: a server decodes %0a, %1b and invalid UTF-8 into the path for us)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST" if body else "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogatepass"),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": (client, 5000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    messages = [{"type": "http.request", "body": body}]
    statuses: list[int] = []

    async def receive() -> dict[str, object]:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(int(message["status"]))  # type: ignore[call-overload]

    await app(scope, receive, send)
    return statuses[0]


@pytest.mark.anyio
async def test_no_request_forges_or_breaks_our_log_lines(
    console: io.BytesIO, tmp_path: Path
) -> None:
    """Paths, hosts and login names with control characters, terminal escapes, line
    separators and lone surrogates: every request is answered (no 500), each of our
    log lines stays one printable line, and the audit trail stores and verifies them."""
    app = _app(tmp_path)
    stack = app.state.pynomaly_security
    async with app.router.lifespan_context(app):
        for bad in NASTY:
            host = [(b"host", b"localhost")]
            # Starlette's path convertor is ".*", which stops at a newline: no route.
            expected = 404 if bad == "\n" else 200
            assert await _call(app, f"/p{bad}FORGED level=critical", host) == expected
            name = json.dumps({"username": f"al{bad}ice", "password": "x"}).encode()
            ctype = [(b"content-type", b"application/json")]
            assert await _call(app, "/login", host + ctype, name) == 401
            evil = bad.encode("utf-8", "surrogatepass")
            assert await _call(app, "/", [(b"host", b"evil" + evil + b".example")]) == 400
            assert await _call(app, "/", [(b"user-agent", b"x" + evil), *host]) == 200
        records = await stack.audit_logger.query(limit=500)
        assert (await stack.audit_logger.verify()).ok
    lines = _clean(console.getvalue())
    assert sum("http_request" in line for line in lines) == 4 * len(NASTY)
    assert not [line for line in lines if line.startswith("FORGED")]
    logins = [r for r in records if r["event_type"] == "login_failure"]
    assert len(logins) == len(NASTY)


def _uvicorn_record(path_with_query: str) -> logging.LogRecord:
    """A record as uvicorn's access logger makes it (protocols/http/*_impl.py)."""
    return logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", path_with_query, "1.1", 200), None,
    )  # fmt: skip


def test_the_access_log_filter_drops_query_strings() -> None:
    """uvicorn's access log writes the full query string (a token in it lands in the
    log); the filter the example installs keeps the path only."""
    record = _uvicorn_record("/reset?token=s3cr3t-t0ken&user=alice")
    assert RedactQueryStrings().filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "GET /reset?[redacted] HTTP/1.1" 200'
    plain = _uvicorn_record("/items")
    RedactQueryStrings().filter(plain)
    assert plain.getMessage() == '127.0.0.1:5000 - "GET /items HTTP/1.1" 200'
    other = logging.LogRecord("x", logging.INFO, __file__, 1, "%s", ("a?b",), None)
    RedactQueryStrings().filter(other)
    assert other.getMessage() == "a?b"


class _FixedClock:
    """The outside world's time, standing still (no window rolls over mid-test)."""

    def __call__(self) -> float:
        return 1_700_000_000.0


@pytest.mark.anyio
async def test_user_names_and_paths_in_lockout_and_rate_limit_lines_are_escaped(
    console: io.BytesIO,
) -> None:
    """A user name with a terminal escape, a newline (a forged line) or a lone
    surrogate, guessed at until it locks, is stuffed from two addresses and spends
    its account's budget, appears escaped in the account_locked,
    credential_stuffing and distributed_guessing lines; a rate-limited path likewise.
    Every line stays one printable line, and no password is logged."""
    clock = _FixedClock()
    store = MemoryStore(clock=clock)
    lockouts = LockoutManager(
        store, max_attempts=2, stuffing_threshold=2, account_max_attempts=3, clock=clock
    )

    async def login(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse({"ok": False}, status_code=401)

    async def anything(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    inner = Starlette(
        routes=[Route("/login", login, methods=["POST"]), Route("/{p:path}", anything)]
    )
    app = RateLimitMiddleware(
        LoginLockoutMiddleware(inner, lockouts=lockouts),
        store=store,
        route_limits={"/p*": ["1/minute"]},
        limits=(),
    )
    names = ["eve\x1b[31m", "mallory\nFORGED level=critical", "trudy\ud800"]
    ctype = [(b"host", b"t"), (b"content-type", b"application/json")]
    for name in names:
        for address in ("198.51.100.1", "198.51.100.1", "198.51.100.2", "198.51.100.3"):
            body = json.dumps({"username": name, "password": "hunter2-secret"}).encode()
            await _call(app, "/login", ctype, body, client=address)
    path = "/p\x1b[2J\nFORGED level=critical"
    statuses = [await _call(app, path, [(b"host", b"t")]) for _ in range(2)]
    assert statuses[0] != 429 and statuses[1] == 429
    lines = _clean(console.getvalue())
    assert not [line for line in lines if line.startswith("FORGED")]
    assert not [line for line in lines if "hunter2" in line]
    for event in ("account_locked", "credential_stuffing", "distributed_guessing"):
        logged = "\n".join(line for line in lines if event in line)
        for name in names:
            # As the lockout keeps it (normalized), escaped; the renderer doubles "\\".
            expected = safe_text(normalize_username(name))
            assert expected in logged.replace("\\\\", "\\"), (event, name)
    assert any("rate_limited" in line and "x1b[2J" in line for line in lines)


@pytest.mark.anyio
async def test_a_long_attack_path_is_not_copied_whole_into_log_lines(
    console: io.BytesIO, tmp_path: Path
) -> None:
    """A 60 KB path carrying an attack is blocked; each log line naming it keeps at
    most LOG_TEXT_MAX characters of it, with a count of the rest."""
    app = _app(tmp_path)
    path = "/search/" + "a" * 60_000 + "<script>alert(1)</script>"
    async with app.router.lifespan_context(app):
        assert await _call(app, path, [(b"host", b"localhost")]) == 403
    lines = _clean(console.getvalue())
    assert any("request_blocked" in line for line in lines)
    assert any("http_request" in line for line in lines)
    assert all(len(line) < 4 * LOG_TEXT_MAX for line in lines)
    assert any(f"...[{len(path) - LOG_TEXT_MAX} more]" in line for line in lines)


def test_safe_text_cuts_long_text() -> None:
    assert safe_text("x" * 2000, 10) == "x" * 10 + "...[1990 more]"
    assert safe_text("\n" * 20, 4) == "\\n" * 4 + "...[16 more]"
    assert safe_text("y" * 2000, None) == "y" * 2000
