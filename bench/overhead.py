"""Overhead of the default security stack versus bare FastAPI, measured with wrk.

Starts two uvicorn servers on 127.0.0.1 (separate processes, one worker each):
the same small FastAPI app bare, and under ``setup_security_middleware`` with
everything on (headers with HSTS and CSP, tracking, audit to a temporary SQLite
file, inspection, monitoring, an admin key). Each is loaded with wrk in turn,
alternating bare and stack over several rounds, for ``GET`` of a small JSON and
``POST`` of a 1 KB JSON body; the medians over the rounds are printed with the
ratio to bare. On a machine with at least two cores the servers and wrk are
pinned to different cores with ``taskset``.

Usage::

    python bench/overhead.py [--duration 5] [--rounds 3] [--connections 32]
    python bench/overhead.py --components    # in-process µs per component
    python bench/overhead.py --instructions  # valgrind: instructions per request
    python bench/overhead.py --instructions --only post  # the 1 KB POST only
    python bench/overhead.py --components --instructions  # valgrind, per component

wrk is Debian's package; run as root, the script installs it when missing.
"""

from __future__ import annotations

import argparse
import base64
import inspect
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
LUA = HERE / "overhead.lua"

# A realistic, benign 1 KB JSON body (the inspection middleware scans all of it).
_BODY: dict[str, Any] = {
    "name": "Ergonomic keyboard",
    "description": (
        "A split mechanical keyboard with tented halves, hot-swappable switches and a "
        "detachable palm rest. Ships with a braided cable, a carrying case and two sets "
        "of keycaps. Suitable for long typing sessions and programming work."
    ),
    "price": 189.5,
    "currency": "EUR",
    "tags": ["keyboard", "ergonomic", "mechanical", "split", "office", "accessories"],
    "dimensions": {"width_mm": 420, "depth_mm": 160, "height_mm": 38, "weight_g": 980},
    "stock": [{"warehouse": f"wh-{i}", "quantity": 10 + i, "aisle": f"A{i}"} for i in range(6)],
}


def _body_bytes() -> bytes:
    """The body, padded with a "notes" field to exactly 1024 bytes."""
    body = {**_BODY, "notes": ""}
    body["notes"] = "x" * (1024 - len(json.dumps(body).encode()))
    raw = json.dumps(body).encode()
    assert len(raw) == 1024, len(raw)
    return raw


# -- the servers (run in a child process: ``overhead.py --serve bare|stack``) ----------


def build_app(kind: str, audit_db: str) -> Any:
    from fastapi import FastAPI

    app = FastAPI(title=f"overhead-{kind}")

    @app.get("/small")
    async def small() -> dict[str, Any]:
        return {"status": "ok", "items": [1, 2, 3]}

    @app.post("/items")
    async def create(payload: dict[str, Any]) -> dict[str, Any]:
        return {"received": len(payload), "name": payload.get("name")}

    if kind == "stack":
        from pynomaly_security import SecuritySettings, setup_security_middleware

        settings = SecuritySettings(
            _env_file=None,  # type: ignore[call-arg]
            development_mode=False,  # production defaults: HSTS on, a real master key
            master_key=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            admin_api_key=secrets.token_urlsafe(32),
            audit_db_url=f"sqlite:///{audit_db}",
        )
        setup_security_middleware(app, settings=settings)
    return app


def _configure_logging() -> None:
    """What a production app does with the stack's structured logs: JSON lines to a
    sink (here /dev/null), so their formatting cost is measured but no terminal is."""
    import structlog

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.WriteLoggerFactory(file=open(os.devnull, "w")),  # noqa: SIM115
        cache_logger_on_first_use=True,
    )


def serve(kind: str, port: int, audit_db: str) -> None:
    import uvicorn

    _configure_logging()
    app = build_app(kind, audit_db)
    if os.environ.get(_FLUSH_AT_EXIT):
        _seal_at_shutdown(app)

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        workers=1,
        log_level="warning",
        access_log=False,
    )


_PROBE = b"GET /small HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"

# -- instructions per request, under valgrind (``--instructions``) -----------------------

_FLUSH_AT_EXIT = "OVERHEAD_AUDIT_FLUSH_AT_EXIT"
_METRICS_FLUSH = "OVERHEAD_METRICS_FLUSH"
# The hash seed alone moves an instruction count by about 1% (dict and set layouts).
_COUNTED_ENV = {"PYTHONHASHSEED": "0"}


def _seal_at_shutdown(app: Any) -> None:
    """Under valgrind the app runs ~50x slower: a flush every 200 ms of wall time
    would seal a handful of rows per batch and count the per-batch cost ~50x more
    than under real load. The audit writer seals everything at shutdown instead.
    The metrics hub likewise adds its counts up at shutdown: its flush every second
    (about 20,000 instructions, whatever the load) would count as ~4,000 per request
    at the ~30 requests/s of a server under valgrind, and ~2 at 10,000 requests/s
    (``python bench/overhead.py --instructions --metrics-flush`` keeps it)."""
    stack = getattr(app.state, "pynomaly_security", None)
    if stack is not None and stack.audit_logger is not None:
        stack.audit_logger._writer._interval = 3600.0
    if stack is not None:
        # The compliance validator's runs are time-driven background work (every minute,
        # every hour, and one at start-up), none of it per request: under valgrind's
        # ~50x slowdown they would be charged to requests ~50x, and the start-up run
        # would land in one of the two counted runs only. bench/compliance.py times them.
        stack.compliance = None
    if stack is not None and stack.metrics is not None and not os.environ.get(_METRICS_FLUSH):
        stack.metrics.flush_seconds = 3600.0


def _require_valgrind() -> str:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    return valgrind


def _under_cachegrind(valgrind: str, log: Path, *args: str) -> list[str]:
    """This script with ``args``, run under cachegrind (instruction count to ``log``)."""
    return [
        valgrind, "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
        f"--log-file={log}", sys.executable, str(Path(__file__).resolve()), *args,
    ]  # fmt: skip


def _instructions_in(log: Path) -> int:
    """The instruction count valgrind wrote to ``log``."""
    for line in log.read_text().splitlines():
        if "I" in line and "refs:" in line:
            return int(line.split("refs:")[1].strip().replace(",", ""))
    sys.exit("valgrind printed no instruction count")


def _serve_counted(valgrind: str, kind: str, requests: int, post: bool = False) -> int:
    """Instructions a uvicorn server (under cachegrind) executes from start to exit
    while serving ``requests`` GETs of /small (``post``: POSTs of the 1 KB JSON body
    to /items) over 8 keep-alive connections."""
    import http.client
    import threading

    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="overhead-vg-") as tmp:
        log = Path(tmp) / "valgrind.log"
        cmd = _under_cachegrind(
            valgrind, log, "--serve", kind, "--port", str(port), "--audit-db", f"{tmp}/audit.db"
        )
        env = {**os.environ, **_COUNTED_ENV, _FLUSH_AT_EXIT: "1"}
        proc = subprocess.Popen(cmd, cwd=HERE.parent, env=env)
        try:
            deadline = time.monotonic() + 600
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        sys.exit(f"the {kind} server under valgrind did not start")
                    time.sleep(0.5)

            # wrk's request headers; the POST adds its body's type, as overhead.lua does.
            headers = {"User-Agent": "wrk", "Accept": "*/*"}
            method, path, body = "GET", "/small", None
            if post:
                method, path, body = "POST", "/items", _body_bytes()
                headers["Content-Type"] = "application/json"

            def client(n: int) -> None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
                for _ in range(n):
                    conn.request(method, path, body=body, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    if response.status != 200:
                        raise RuntimeError(f"unexpected status {response.status}")
                conn.close()

            threads = [threading.Thread(target=client, args=(requests // 8,)) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            proc.terminate()
            proc.wait(timeout=600)
        return _instructions_in(log)


def instructions(requests: int, only: str | None = None) -> None:
    """Instructions per request, bare and stack: deterministic where wall-clock
    figures on a shared machine are not (the difference of two runs, ``requests``
    and ``requests // 6`` requests, so start-up and shutdown cancel out). The GET
    of /small, then the 1 KB JSON POST (``only`` picks one)."""
    valgrind = _require_valgrind()
    small = requests // 6
    loads = {"get": "GET /small", "post": "POST /items (1 KB JSON)"}
    for load, name in loads.items():
        if only is not None and load != only:
            continue
        per_request = {}
        for kind in ("bare", "stack"):
            counts = [_serve_counted(valgrind, kind, n, load == "post") for n in (small, requests)]
            per_request[kind] = (counts[1] - counts[0]) / (requests - small)
            print(f"{kind:<6} {per_request[kind]:>10,.0f} instructions per {name}")
        ratio = per_request["bare"] / per_request["stack"]
        goal = " (goal >= 80%)" if load == "get" else ""
        print(
            f"{name}: the stack executes {per_request['stack'] / per_request['bare']:.3f}x "
            f"the bare app's instructions per request: it would keep {ratio:.1%} of bare "
            f"requests/s on a CPU-bound core{goal}; every audit row is sealed in this count\n"
        )


# -- per-component cost, in-process (``--components``) -----------------------------------

# Each row switches on one component over the always-present tracking layer, so
# its cost is (row - "tracking only"); the last row is the full default stack.
_COMPONENTS: dict[str, dict[str, bool]] = {
    "bare FastAPI": {},
    "tracking only": {},
    "+ user tracker": {"enable_user_tracking": True},
    "+ security headers": {"enable_security_headers": True},
    "+ audit": {"enable_audit_logging": True},
    "+ inspection": {"enable_input_inspection": True},
    "+ monitoring": {"enable_security_monitoring": True},
    "+ rate limiting": {"enable_rate_limiting": True},
    "+ SQL sink": {"enable_sql_protection": True},
    "full default stack": {},  # every enable_* flag left at its default (all on)
}


def _component_app(row: str, audit_db: str) -> Any:
    app = build_app("bare", audit_db)
    if row == "bare FastAPI":
        return app
    from pynomaly_security import SecuritySettings, setup_security_middleware

    # Every enable_* switch the plugin has (new components included) starts off.
    switches = [
        name
        for name in inspect.signature(setup_security_middleware).parameters
        if name.startswith("enable_")
    ]
    flags = {} if row == "full default stack" else dict.fromkeys(switches, False)
    flags.update({k: v for k, v in _COMPONENTS[row].items() if k in switches})
    settings = SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        master_key=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        admin_api_key=secrets.token_urlsafe(32),
        audit_db_url=f"sqlite:///{audit_db}",
        # No global limit is the default; the rate-limiting row sets one that never
        # trips (one client sends everything), so it measures counting, not 429s.
        rate_limits=["1000000000/minute"] if row == "+ rate limiting" else [],
    )
    setup_security_middleware(app, settings=settings, **flags)
    return app


async def _drive(app: Any, requests: int, body: bytes | None) -> tuple[float, float]:
    """Serve ``requests`` requests through the ASGI app in-process, lifespan included.

    Returns (wall µs, process CPU µs) per request; CPU counts every thread, and the
    lifespan shutdown (the audit writer's last flush) is included in both."""
    path, method = ("/items", "POST") if body is not None else ("/small", "GET")
    headers = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk"), (b"accept", b"*/*")]
    if body is not None:
        headers += [(b"content-type", b"application/json"), (b"content-length", b"1024")]
    template = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    request_message = {"type": "http.request", "body": body or b"", "more_body": False}

    async def receive() -> dict[str, Any]:
        return request_message

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] >= 300:
            raise RuntimeError(f"unexpected status {message['status']}")

    async with app.router.lifespan_context(app) as state:
        for _ in range(200):  # warm-up
            await app(
                {**template, "headers": list(headers), "state": dict(state or {})}, receive, send
            )
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for _ in range(requests):
            await app(
                {**template, "headers": list(headers), "state": dict(state or {})}, receive, send
            )
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return wall / requests * 1e6, cpu / requests * 1e6


def components(requests: int, repeats: int) -> None:
    import asyncio

    _configure_logging()
    body = _body_bytes()
    print(
        f"in-process, {requests} sequential requests x {repeats} (median), "
        "µs per request (process CPU, all threads)\n"
    )
    print(
        f"| {'configuration':<20} | {'GET µs':>7} | {'Δ GET':>6} | {'POST µs':>7} | {'Δ POST':>6} |"
    )
    print(f"|{'-' * 22}|{'-' * 9}|{'-' * 8}|{'-' * 9}|{'-' * 8}|")
    base: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="overhead-") as tmp:
        for row in _COMPONENTS:
            cells = []
            for kind, payload in (("get", None), ("post", body)):
                cpu = statistics.median(
                    asyncio.run(
                        _drive(_component_app(row, f"{tmp}/{row[:4]}{i}.db"), requests, payload)
                    )[1]
                    for i in range(repeats)
                )
                ref = base.get(kind if row != "tracking only" else "bare-" + kind)
                if row == "bare FastAPI":
                    base["bare-" + kind] = cpu
                if row == "tracking only":
                    base[kind] = cpu
                delta = "" if ref is None else f"{cpu - ref:+.0f}"
                if row == "full default stack":
                    delta = f"{cpu - base['bare-' + kind]:+.0f}"
                cells += [f"{cpu:7.0f}", f"{delta:>6}"]
            print(f"| {row:<20} | " + " | ".join(cells) + " |")
    print("\nΔ: versus 'tracking only' (which is versus bare); the full stack versus bare.")


def _drive_row(row: str, requests: int) -> None:
    """Serve ``requests`` GETs of /small in-process through one ``_COMPONENTS`` row
    (run under valgrind by :func:`component_instructions`)."""
    import asyncio

    _configure_logging()
    with tempfile.TemporaryDirectory(prefix="overhead-") as tmp:
        app = _component_app(row, f"{tmp}/audit.db")
        _seal_at_shutdown(app)
        asyncio.run(_drive(app, requests, None))


def component_instructions() -> None:
    """Instructions per GET of each ``_COMPONENTS`` row, in-process under valgrind:
    deterministic, unlike ``--components``'s µs on a shared machine. In-process there
    is no server, so the response headers' validation and serialisation (uvicorn: about
    1,500 instructions plus 55 per character, per header) is not in these figures."""
    valgrind = _require_valgrind()

    def count(row: str, requests: int) -> int:
        with tempfile.TemporaryDirectory(prefix="overhead-vg-") as tmp:
            log = Path(tmp) / "valgrind.log"
            cmd = _under_cachegrind(valgrind, log, "--drive-row", row, "--requests", str(requests))
            subprocess.run(cmd, cwd=HERE.parent, check=True, env={**os.environ, **_COUNTED_ENV})
            return _instructions_in(log)

    print("in-process GET /small under valgrind, instructions per request (1200 - 200)\n")
    print(f"| {'configuration':<20} | {'instructions':>12} | {'Δ':>8} |")
    print(f"|{'-' * 22}|{'-' * 14}|{'-' * 10}|")
    base: dict[str, float] = {}
    for row in _COMPONENTS:
        per = (count(row, 1200) - count(row, 200)) / 1000
        ref = base.get("tracking" if row not in ("tracking only", "full default stack") else "bare")
        base.setdefault("bare", per)
        if row == "tracking only":
            base["tracking"] = per
        delta = "" if row == "bare FastAPI" else f"{per - (ref or per):+,.0f}"
        print(f"| {row:<20} | {per:>12,.0f} | {delta:>8} |")
    print("\nΔ: versus 'tracking only' (which, like the full stack, is versus bare).")


# -- the driver -------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int
    cpu_us: float  # server CPU per request (all threads), nan where /proc is missing


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ensure_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk:
        return wrk
    if os.geteuid() != 0:
        sys.exit("wrk is not installed: apt-get install wrk (run this script as root to do it)")
    print("installing wrk (apt-get)...", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)
    wrk = shutil.which("wrk")
    if not wrk:
        sys.exit("wrk could not be installed")
    return wrk


def _pin(cores: str | None) -> list[str]:
    taskset = shutil.which("taskset")
    return [taskset, "-c", cores] if taskset and cores is not None else []


def _cpu_seconds(pid: int) -> float:
    """user + system CPU of a process and all its threads (Linux /proc), else nan."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Server:
    url: str
    pid: int


@contextmanager
def _server(kind: str, audit_db: str, cores: str | None) -> Iterator[Server]:
    port = _free_port()
    cmd = [*_pin(cores), sys.executable, str(Path(__file__).resolve()), "--serve", kind]
    cmd += ["--port", str(port), "--audit-db", audit_db]
    proc = subprocess.Popen(cmd, cwd=HERE.parent)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                sys.exit(f"the {kind} server exited with {proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    # A Host the stack allows (ALLOWED_HOSTS: local names by default).
                    s.sendall(_PROBE)
                    if s.recv(64).startswith(b"HTTP/1.1 200"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                sys.exit(f"the {kind} server did not answer within 60 s")
            time.sleep(0.2)
        yield Server(url, proc.pid)  # taskset execs the server: same pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wrk(
    wrk: str,
    server: Server,
    path: str,
    seconds: int,
    connections: int,
    body_file: str | None,
    cores: str | None,
) -> Run:
    env = {**os.environ, "OVERHEAD_BODY_FILE": body_file or ""}
    cmd = [*_pin(cores), wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(LUA)]
    cpu0 = _cpu_seconds(server.pid)
    out = subprocess.run(
        [*cmd, server.url + path], capture_output=True, text=True, env=env, check=True
    ).stdout
    cpu = _cpu_seconds(server.pid) - cpu0
    line = next(x for x in out.splitlines() if x.startswith("OVERHEAD_RESULT "))
    data = json.loads(line.split(" ", 1)[1])
    return Run(
        cpu_us=cpu / max(data["requests"], 1) * 1e6,
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        non_2xx=data["non_2xx"],
        errors=data["socket_errors"],
    )


def _median(runs: list[Run]) -> Run:
    return Run(
        rps=statistics.median(r.rps for r in runs),
        p50_ms=statistics.median(r.p50_ms for r in runs),
        p99_ms=statistics.median(r.p99_ms for r in runs),
        non_2xx=sum(r.non_2xx for r in runs),
        errors=sum(r.errors for r in runs),
        cpu_us=statistics.median(r.cpu_us for r in runs),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per run (5)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up seconds per target (2)")
    parser.add_argument("--rounds", type=int, default=5, help="bare/stack alternations (5)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--only", choices=["get", "post"], help="run one load only (default: both)")
    parser.add_argument(
        "--components",
        action="store_true",
        help="instead of wrk: in-process µs per request of each component "
        "(with --instructions: instructions under valgrind, deterministic)",
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="instead of wrk: instructions per request under valgrind (deterministic)",
    )
    parser.add_argument(
        "--requests", type=int, help="for --components (5000) or --instructions (2400)"
    )
    parser.add_argument(
        "--metrics-flush",
        action="store_true",
        help="with --instructions: keep the metrics hub's flush every second under valgrind "
        "(counted per request at valgrind's request rate)",
    )
    parser.add_argument("--serve", choices=["bare", "stack"], help=argparse.SUPPRESS)
    parser.add_argument("--drive-row", choices=list(_COMPONENTS), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--audit-db", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port, args.audit_db)
        return 0
    if args.drive_row:
        _drive_row(args.drive_row, args.requests)
        return 0
    if args.components and args.instructions:
        component_instructions()
        return 0
    if args.components:
        components(args.requests or 5000, args.rounds)
        return 0
    if args.instructions:
        if args.metrics_flush:
            os.environ[_METRICS_FLUSH] = "1"
        instructions(args.requests or 2400, args.only)
        return 0

    wrk = _ensure_wrk()
    # Two cores or more: the servers on core 0, wrk on core 1 (so the load generator
    # does not steal the server's CPU); otherwise no pinning.
    server_cores, wrk_cores = ("0", "1") if (os.cpu_count() or 1) >= 2 else (None, None)
    seconds = args.duration
    load_before = os.getloadavg()[0]
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="overhead-") as tmp:
        body_file = Path(tmp) / "body.json"
        body_file.write_bytes(_body_bytes())
        audit_db = str(Path(tmp) / "audit.db")
        servers = {
            kind: stack.enter_context(_server(kind, audit_db, server_cores))
            for kind in ("bare", "stack")
        }
        loads = {
            "GET /small": ("/small", None),
            "POST /items (1 KB JSON)": ("/items", str(body_file)),
        }
        if args.only is not None:
            loads = {k: v for k, v in loads.items() if k.lower().startswith(args.only)}
        results: dict[tuple[str, str], list[Run]] = {}
        for name, (path, body) in loads.items():
            for server in servers.values():
                _wrk(wrk, server, path, args.warmup, args.connections, body, wrk_cores)
            for _ in range(args.rounds):
                for kind, server in servers.items():
                    run = _wrk(wrk, server, path, seconds, args.connections, body, wrk_cores)
                    results.setdefault((name, kind), []).append(run)
                    print(
                        f"  {name:<24} {kind:<5} {run.rps:>9.0f} req/s  p50 {run.p50_ms:6.2f} ms"
                        f"  p99 {run.p99_ms:6.2f} ms  server CPU {run.cpu_us:5.0f} µs/req",
                        file=sys.stderr,
                    )

    print(
        f"\nwrk -t1 -c{args.connections}, {seconds:g} s x {args.rounds} alternating rounds; "
        f"servers on core {server_cores}, wrk on core {wrk_cores}; python "
        f"{sys.version.split()[0]}; load average before: {load_before:.2f}\n"
        "req/s, p50, p99, CPU: medians over the rounds (req/s range beside); vs bare: the\n"
        "median of the per-round ratios stack/bare (each pair run back to back); CPU: the\n"
        "server's CPU time per request (all threads), and 'CPU vs bare' = bare CPU / stack\n"
        "CPU, the throughput share on a dedicated core (insensitive to other processes).\n"
    )
    header = (
        f"| {'load':<24} | {'app':<5} | {'req/s':>8} | {'range':>13} | {'p50 ms':>7} "
        f"| {'p99 ms':>7} | {'vs bare':>7} | {'CPU µs':>6} | {'CPU vs bare':>11} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    failed = False
    ratios: dict[str, float] = {}
    for name in loads:
        bare_runs = results[(name, "bare")]
        bare_cpu = _median(bare_runs).cpu_us
        for kind in servers:
            runs = results[(name, kind)]
            m = _median(runs)
            ratio = statistics.median(r.rps / b.rps for r, b in zip(runs, bare_runs, strict=True))
            ratios[f"{name} {kind}"] = ratio
            cpu_ratio = bare_cpu / m.cpu_us if m.cpu_us else float("nan")
            ratios[f"{name} {kind} cpu"] = cpu_ratio
            spread = f"{min(r.rps for r in runs):.0f}-{max(r.rps for r in runs):.0f}"
            print(
                f"| {name:<24} | {kind:<5} | {m.rps:>8.0f} | {spread:>13} | {m.p50_ms:>7.2f} "
                f"| {m.p99_ms:>7.2f} | {ratio:>7.0%} | {m.cpu_us:>6.0f} | {cpu_ratio:>11.0%} |"
            )
            if m.non_2xx or m.errors:
                failed = True
                print(f"  ! {kind}: {m.non_2xx} non-2xx answers, {m.errors} socket errors")
    if "GET /small stack" in ratios:
        print(
            f"\nGET /small: the default stack keeps {ratios['GET /small stack']:.0%} of bare "
            f"requests/s ({ratios['GET /small stack cpu']:.0%} by server CPU per request); "
            "goal >= 80%"
        )
    if load_before > 0.5:
        print(
            f"note: the load average was {load_before:.2f} before the run; other processes "
            "share these cores, so absolute figures are noisy (the paired ratios less so)"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
