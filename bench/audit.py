"""Audit trail benchmark.

    python bench/audit.py [--duration 3] [--requests 20000] [--postgres URL | --no-postgres]
                          [--http [--http-seconds 5]]

Prints, in one run:

1. security events per second committed (``log_security_event`` returned, so
   durable: SQLite ``synchronous=FULL`` / PostgreSQL commit) with 1, 8 and 64
   concurrent writers, on SQLite (a temporary file) and PostgreSQL;
2. the per-request cost of ``AuditMiddleware`` against the same app without
   it, calling the ASGI app in-process (no network noise), with the ratio;
   then the two parts of an access record's cost: ``log_request`` on the
   request path, and the flush that seals queued records (one ``access_batch``
   chain record per flush) in process CPU time, all threads (the writer thread
   holds the GIL of the same process), per record;
3. with ``--http``, the same two apps served by uvicorn on 127.0.0.1 and loaded
   with wrk (Debian's package) in alternating rounds: requests/s and ratio.

structlog is configured here (the benchmark is the application) to drop
``info`` lines, as production logging filters usually do; the canonical line
is still built and offered to structlog.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pynomaly_security.audit import AuditLogger, AuditStore, SecurityEventType
from pynomaly_security.audit.sealing import AuditKeys
from pynomaly_security.crypto import KeyRing
from pynomaly_security.middleware.audit import AuditMiddleware
from pynomaly_security.storage import StorageRegistry

KEYS = AuditKeys(KeyRing(os.urandom(32)))


def audit_store(url: str, *, prefix: str) -> AuditStore:
    """An audit store with a pool of its own (closed with the store)."""
    return StorageRegistry().audit_log(url, prefix=prefix)


async def events_per_second(
    url: str, prefix: str, writers: int, duration: float, anchor: Path | None = None
) -> float:
    """Each commit also signs a checkpoint and (security events) appends it to
    ``anchor``, the file anchor a default SQLite setup writes."""
    audit = AuditLogger(
        audit_store(url, prefix=prefix), KEYS, checkpoint_every=1000, anchor_file=anchor
    )
    count = 0
    async with audit:
        deadline = time.perf_counter() + duration

        async def writer(n: int) -> None:
            nonlocal count
            while time.perf_counter() < deadline:
                await audit.log_security_event(
                    SecurityEventType.ACCESS_DENIED, "bench", details={"w": n}, user_id=f"u{n}"
                )
                count += 1

        started = time.perf_counter()
        await asyncio.gather(*(writer(n) for n in range(writers)))
        elapsed = time.perf_counter() - started
        result = await audit.verify()
        assert result.ok, result.message
    return count / elapsed


def _app(audit: AuditLogger | None, lifespan: Any = None) -> Any:
    async def item(request: Request) -> JSONResponse:
        return JSONResponse({"id": 1, "name": "widget"})

    middleware = [] if audit is None else [Middleware(AuditMiddleware, audit_logger=audit)]
    return Starlette(routes=[Route("/items/1", item)], middleware=middleware, lifespan=lifespan)


async def _drive(app: Any, n: int) -> float:
    """Mean microseconds per request, calling the ASGI app directly."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/items/1", "raw_path": b"/items/1", "query_string": b"",
        "root_path": "", "headers": [(b"host", b"bench")], "client": ("127.0.0.1", 5000),
        "server": ("bench", 80),
    }  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    for _ in range(500):  # warm-up
        await app(dict(scope), receive, send)
    started = time.perf_counter()
    for _ in range(n):
        await app(dict(scope), receive, send)
    return (time.perf_counter() - started) / n * 1e6


async def middleware_overhead(db_url: str, n: int) -> tuple[float, float]:
    bare = _app(None)
    audit = AuditLogger(audit_store(db_url, prefix="bench_mw"), KEYS)
    async with audit:
        audited = _app(audit)
        runs_bare, runs_audit = [], []
        for _ in range(5):  # interleaved so drift hits both sides alike
            runs_bare.append(await _drive(bare, n // 5))
            runs_audit.append(await _drive(audited, n // 5))
    return statistics.median(runs_bare), statistics.median(runs_audit)


async def access_record_cost(db_url: str, n: int, users: int) -> tuple[float, float, int]:
    """µs per ``log_request`` call; process-CPU µs per record to seal and commit them
    (the final flush of ``aclose``); chain records written.

    ``users`` distinct user ids over the records (0: anonymous requests), since
    each distinct subject in a batch costs one subject-key encryption.
    """
    prefix = f"bench_flush_{users}"
    audit = AuditLogger(audit_store(db_url, prefix=prefix), KEYS)
    await audit.start()
    names = [None] * n if not users else [f"user-{i % users}" for i in range(n)]
    started = time.perf_counter()
    for i in range(n):  # no await: the writer cannot flush meanwhile
        audit.log_request(
            method="GET", path="/items/1", status_code=200, duration_ms=0.42,
            request_id="0f1e2d3c4b5a69788796a5b4c3d2e1f0", client_ip="198.51.100.7",
            user_id=names[i],
        )  # fmt: skip
    per_call = (time.perf_counter() - started) / n * 1e6
    cpu = time.process_time()
    await audit.aclose()
    per_record = (time.process_time() - cpu) / n * 1e6
    store = audit_store(db_url, prefix=prefix)
    await store.open()
    records = len(await store.records(0, 1_000_000))
    await store.aclose()
    return per_call, per_record, records


def _pg_up(url: str) -> bool:
    host_port = url.split("@")[-1].split("/")[0]
    host, _, port = host_port.partition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port or 5432)), timeout=0.5):
            return True
    except OSError:
        return False


def _serve(kind: str, port: int, db_url: str) -> None:
    """Child process: serve the bare or the audited app with uvicorn."""
    import uvicorn

    audit = None if kind == "bare" else AuditLogger(audit_store(db_url, prefix="bench_http"), KEYS)

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> Any:
        if audit is None:
            yield
            return
        async with audit:
            yield

    app = _app(audit, lifespan)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_rounds(db_url: str, seconds: int, rounds: int = 3) -> dict[str, float]:
    """Median wrk requests/s of the bare and the audited app, alternating."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("--http needs wrk (apt-get install wrk)")
    pin = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    procs, ports = {}, {}
    try:
        for kind in ("bare", "audit"):
            ports[kind] = _free_port()
            cmd = [
                sys.executable,
                __file__,
                "--serve",
                kind,
                "--port",
                str(ports[kind]),
                "--db",
                db_url,
            ]
            procs[kind] = subprocess.Popen(["taskset", "-c", "0", *cmd] if pin else cmd)
        for port in ports.values():
            for _ in range(100):  # wait for the server (bounded)
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection(("127.0.0.1", port), 0.2),
                ):
                    break
                time.sleep(0.1)
        rates: dict[str, list[float]] = {"bare": [], "audit": []}
        for _ in range(rounds):
            for kind, port in ports.items():
                load = [wrk, "-t1", "-c32", f"-d{seconds}s", f"http://127.0.0.1:{port}/items/1"]
                out = subprocess.run(
                    (["taskset", "-c", "1", *load] if pin else load),
                    capture_output=True, text=True, check=True,
                ).stdout  # fmt: skip
                line = next(x for x in out.splitlines() if x.startswith("Requests/sec:"))
                rates[kind].append(float(line.split()[1]))
        return {kind: statistics.median(values) for kind, values in rates.items()}
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait(timeout=30)


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per writer run")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument(
        "--no-anchor", action="store_true", help="no file anchor (default: one, as in production)"
    )
    parser.add_argument("--http", action="store_true", help="also load uvicorn with wrk")
    parser.add_argument("--http-seconds", type=int, default=5)
    parser.add_argument("--serve", choices=["bare", "audit"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    return parser.parse_args()


async def in_process(args: argparse.Namespace, sqlite_url: str) -> None:
    backends = [("sqlite", sqlite_url)]
    if not args.no_postgres and _pg_up(args.postgres):
        backends.append(("postgres", args.postgres))
    print("security events/s committed (durable before return)")
    print(f"{'backend':<10}{'writers':>8}{'events/s':>12}")
    for name, url in backends:
        for writers in (1, 8, 64):
            prefix = f"bench_{writers}_{os.getpid()}"
            anchor = None if args.no_anchor else Path(args.tmp) / f"{name}-{prefix}.anchors.jsonl"
            rate = await events_per_second(url, prefix, writers, args.duration, anchor)
            print(f"{name:<10}{writers:>8}{rate:>12,.0f}")
            if name == "postgres":
                store: Any = audit_store(url, prefix=prefix)
                await store.open()
                await store.drop()
                await store.aclose()
    bare, audited = await middleware_overhead(sqlite_url, args.requests)
    print()
    print(f"request cost, in-process ASGI, median of 5 x {args.requests // 5} GETs")
    print(f"{'no audit middleware':<28}{bare:>8.1f} us/request")
    print(f"{'with AuditMiddleware':<28}{audited:>8.1f} us/request")
    print(f"{'overhead':<28}{audited - bare:>8.1f} us/request  (ratio {audited / bare:.2f}x)")
    print()
    print(f"access records: {args.requests} log_request calls, then flushed (SQLite)")
    print(f"{'users':<12}{'log_request us':>16}{'flush CPU us/rec':>18}{'chain records':>15}")
    for users in (0, 10, 1000):
        call, flush, records = await access_record_cost(sqlite_url, args.requests, users)
        label = "anonymous" if not users else str(users)
        print(f"{label:<12}{call:>16.2f}{flush:>18.2f}{records:>15}")


def main() -> None:
    args = _args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    if args.serve:
        _serve(args.serve, args.port, args.db)
        return
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        args.tmp = tmp
        asyncio.run(in_process(args, sqlite_url))
        if args.http:
            rates = http_rounds(sqlite_url, args.http_seconds)
            print()
            print(f"uvicorn + wrk (-c32), median of 3 alternating rounds of {args.http_seconds}s")
            print(f"{'no audit middleware':<28}{rates['bare']:>10,.0f} req/s")
            ratio = rates["audit"] / rates["bare"]
            print(
                f"{'with AuditMiddleware':<28}{rates['audit']:>10,.0f} req/s  ({ratio:.1%} of bare)"
            )


if __name__ == "__main__":
    main()
