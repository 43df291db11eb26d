"""What multi-tenancy costs (issue 21): instructions per request, and RLS on PostgreSQL.

``--instructions`` (valgrind; deterministic where µs on a shared machine are not):
GET /small in-process through the full default stack, per request, for

* tenancy off (the default) and on (``X-Tenant`` header resolved from the worker's
  copy of the registry, the request run in the tenant's scope): resolution;
* a global rate limit, tenancy off and on: the namespacing of every store call
  (one ``ContextVar.get`` and one concatenation per call, two calls per request);
* tenancy with a rate quota (two store calls more): what a quota costs.

Background work that runs on a wall-clock timer is counted per unit of work, not
per tick: valgrind slows the run ~50x, so a timer firing every 0.5 s or 1 s would
run ~50x more often per request than under real load, and how often it fires in a
run depends on the machine's speed (it moved the tenancy Δ by ±3,000). As
``bench/overhead.py`` does for the audit writer and the metrics hub
(``_seal_at_shutdown``), the monitor's idle flush and snapshot refresh
(``flush_interval``, 1 s) and the user activity flush (0.5 s) get an hour here, so
they run once, at shutdown: every access row is still sealed into the audit trail,
every activity row stored and every count flushed, in one batch each, and the
1200 - 200 difference counts exactly 1,000 requests' worth of that work.

``--rls`` (the real PostgreSQL, ``TEST_POSTGRES_URL`` or ``postgresql://postgres@127.0.0.1/postgres``):
one tenant's 200,000 rows of a 400,000-row table read by a role that is not a
superuser, as ``SELECT ... WHERE tenant_id = $1`` on a table without RLS and as
``SELECT ...`` under the forced RLS policy (``tenancy/rls.py``); the median of
``--rounds`` runs of each, interleaved, and their ratio (target: at most +5%).

Usage::

    python bench/tenancy.py --instructions
    python bench/tenancy.py --rls [--rounds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import overhead  # noqa: E402  (the same app, driver and valgrind helpers)

ROWS = {
    "stack": {},
    "stack + tenancy": {"tenancy_enabled": True},
    "stack + rate limit": {"rate_limits": ["1000000000/minute"]},
    "stack + rate limit + tenancy": {
        "rate_limits": ["1000000000/minute"],
        "tenancy_enabled": True,
    },
    "stack + tenancy + rate quota": {"tenancy_enabled": True, "quota": True},
}


def _app(row: str, audit_db: str) -> Any:
    from pynomaly_security import SecuritySettings, setup_security_middleware

    options = dict(ROWS[row])
    quota = options.pop("quota", False)
    plans = {"bench": {"rate": ["1000000000/minute"]} if quota else {}}
    app = overhead.build_app("bare", audit_db)
    settings = SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        master_key=overhead.base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        admin_api_key=secrets.token_urlsafe(32),
        audit_db_url=f"sqlite:///{audit_db}",
        tenancy_plans=plans,
        tenancy_default_plan="bench",
        tenancy_cache_seconds=3600,
        **options,
    )
    setup_security_middleware(app, settings=settings)
    return app


async def _drive(app: Any, requests: int) -> None:
    from pynomaly_security.tenancy.model import Tenant

    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"user-agent", b"wrk"),
        (b"accept", b"*/*"),
        (b"x-tenant", b"acme"),
    ]
    template = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/small",
        "raw_path": b"/small",
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    message = {"type": "http.request", "body": b"", "more_body": False}

    async def receive() -> dict[str, Any]:
        return message

    async def send(msg: dict[str, Any]) -> None:
        if msg["type"] == "http.response.start" and msg["status"] != 200:
            raise RuntimeError(f"unexpected status {msg['status']}")

    async with app.router.lifespan_context(app) as state:
        tenancy = app.state.pynomaly_security.tenancy
        if tenancy is not None:
            await tenancy.registry.create(Tenant(id="acme", plan="bench"))
        for _ in range(200):
            await app(
                {**template, "headers": list(headers), "state": dict(state or {})}, receive, send
            )
        for _ in range(requests):
            await app(
                {**template, "headers": list(headers), "state": dict(state or {})}, receive, send
            )


def _flush_at_shutdown(app: Any) -> None:
    """The timers of the module docstring run at shutdown, once per run."""
    overhead._seal_at_shutdown(app)  # the audit writer, the metrics hub, compliance
    stack = app.state.pynomaly_security
    stack.security_monitor._flush_interval = 3600.0
    if stack.user_tracker is not None:
        stack.user_tracker._interval = 3600.0


def _drive_row(row: str, requests: int) -> None:
    overhead._configure_logging()
    with tempfile.TemporaryDirectory(prefix="tenancy-") as tmp:
        app = _app(row, f"{tmp}/audit.db")
        _flush_at_shutdown(app)
        asyncio.run(_drive(app, requests))


def instructions(only: list[str] | None = None) -> None:
    valgrind = overhead._require_valgrind()

    def count(row: str, requests: int) -> int:
        with tempfile.TemporaryDirectory(prefix="tenancy-vg-") as tmp:
            log = Path(tmp) / "valgrind.log"
            cmd = overhead._under_cachegrind(
                valgrind, log, "--drive-row", row, "--requests", str(requests)
            )
            cmd[cmd.index(str(Path(overhead.__file__).resolve()))] = str(Path(__file__).resolve())
            env = {**os.environ, **overhead._COUNTED_ENV}
            subprocess.run(cmd, cwd=HERE.parent, check=True, env=env)
            return overhead._instructions_in(log)

    print("in-process GET /small under valgrind, instructions per request (1200 - 200)\n")
    print(f"| {'configuration':<30} | {'instructions':>12} | {'Δ':>8} |")
    print(f"|{'-' * 32}|{'-' * 14}|{'-' * 10}|")
    per: dict[str, float] = {}
    reference = {
        "stack + tenancy": "stack",
        "stack + rate limit + tenancy": "stack + rate limit",
        "stack + tenancy + rate quota": "stack + tenancy",
    }
    # The rows asked for, and the rows they are compared with.
    wanted = {*only, *(reference[r] for r in only if r in reference)} if only else set(ROWS)
    for row in ROWS:
        if row not in wanted:
            continue
        per[row] = (count(row, 1200) - count(row, 200)) / 1000
        ref = reference.get(row)
        delta = f"{per[row] - per[ref]:+,.0f}" if ref in per else ""
        print(f"| {row:<30} | {per[row]:>12,.0f} | {delta:>8} |")
    print("\nΔ: tenancy versus the row without it; the quota row versus tenancy alone.")


# -- row-level security on the real PostgreSQL ------------------------------------------


async def rls(rounds: int) -> None:
    import asyncpg

    from pynomaly_security.tenancy.context import tenant_scope
    from pynomaly_security.tenancy.rls import rls_statements, tenant_transaction

    url = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    tag = secrets.token_hex(4)
    role, schema = f"bench_app_{tag}", f"bench_rls_{tag}"
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{role}-pw' NOSUPERUSER")
        await admin.execute(f"CREATE SCHEMA {schema}")
        for table in ("plain", "secured"):
            await admin.execute(
                f"CREATE TABLE {schema}.{table} (id bigint PRIMARY KEY, tenant_id text NOT NULL,"
                " name text NOT NULL, price numeric NOT NULL)"
            )
            # 400,000 rows, half of them acme's (interleaved with globex's).
            await admin.execute(
                f"INSERT INTO {schema}.{table} SELECT g, CASE WHEN g % 2 = 0 THEN 'acme'"
                " ELSE 'globex' END, 'item ' || g, g % 1000 FROM generate_series(1, 400000) g"
            )
            await admin.execute(f"CREATE INDEX ON {schema}.{table} (tenant_id)")
            await admin.execute(f"ANALYZE {schema}.{table}")
        for sql in rls_statements(f"{schema}.secured"):
            await admin.execute(sql)
        await admin.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        await admin.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}")
        host = url.split("://", 1)[1].rsplit("@", 1)[-1]
        conn = await asyncpg.connect(f"postgresql://{role}:{role}-pw@{host}")
        try:
            plain_sql = (
                f"SELECT id, tenant_id, name, price FROM {schema}.plain WHERE tenant_id = $1"
            )
            rls_sql = f"SELECT id, tenant_id, name, price FROM {schema}.secured"
            # The rows fetched (client decoding included), then the server alone: the
            # sum of the 200,000 rows' prices, one row back.
            plain_sum = f"SELECT sum(price) FROM {schema}.plain WHERE tenant_id = $1"
            rls_sum = f"SELECT sum(price) FROM {schema}.secured"
            times: dict[str, list[float]] = {
                "no RLS (WHERE tenant_id = $1)": [],
                "RLS policy": [],
                "sum, no RLS": [],
                "sum, RLS policy": [],
            }
            with tenant_scope("acme"):
                for i in range(rounds + 2):
                    async with conn.transaction():
                        t0 = time.perf_counter()
                        rows = await conn.fetch(plain_sql, "acme")
                        t1 = time.perf_counter()
                    assert len(rows) == 200_000
                    async with tenant_transaction(conn):
                        t2 = time.perf_counter()
                        rows = await conn.fetch(rls_sql)
                        t3 = time.perf_counter()
                    assert len(rows) == 200_000
                    assert {r[1] for r in rows} == {"acme"}
                    async with conn.transaction():
                        t4 = time.perf_counter()
                        await conn.fetchval(plain_sum, "acme")
                        t5 = time.perf_counter()
                    async with tenant_transaction(conn):
                        t6 = time.perf_counter()
                        await conn.fetchval(rls_sum)
                        t7 = time.perf_counter()
                    if i >= 2:  # two warm-up rounds
                        times["no RLS (WHERE tenant_id = $1)"].append(t1 - t0)
                        times["RLS policy"].append(t3 - t2)
                        times["sum, no RLS"].append(t5 - t4)
                        times["sum, RLS policy"].append(t7 - t6)
                plan = await _explain(conn, rls_sql)
        finally:
            await conn.close()
    finally:
        await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await admin.execute(f"DROP OWNED BY {role}")
        await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()
    medians = {k: statistics.median(v) * 1000 for k, v in times.items()}
    print(f"200,000 of 400,000 rows, {rounds} interleaved rounds, median ms (non-superuser)\n")
    for name, ms in medians.items():
        print(f"  {name:<32} {ms:8.1f} ms")
    base = medians["no RLS (WHERE tenant_id = $1)"]
    print(f"\n  rows fetched, RLS / no RLS: {medians['RLS policy'] / base:.3f} (target <= 1.05)")
    ratio = medians["sum, RLS policy"] / medians["sum, no RLS"]
    print(f"  server only (sum), RLS / no RLS: {ratio:.3f}")
    print("\n  plan under RLS (the setting is an InitPlan, evaluated once):")
    for line in plan:
        print("    " + line)


async def _explain(conn: Any, sql: str) -> list[str]:
    from pynomaly_security.tenancy.rls import tenant_transaction

    async with tenant_transaction(conn):
        return [r[0] for r in await conn.fetch("EXPLAIN " + sql)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--instructions", action="store_true")
    parser.add_argument("--rls", action="store_true")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--rows", help="--instructions: these rows only (comma-separated)")
    parser.add_argument("--drive-row", help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, default=1000, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.drive_row:
        _drive_row(args.drive_row, args.requests)
    elif args.instructions:
        instructions(args.rows.split(",") if args.rows else None)
    elif args.rls:
        asyncio.run(rls(args.rounds))
    else:
        parser.print_help()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
