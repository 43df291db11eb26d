"""Cost of the monitor's state per backend: what a worker's background flush and an
admin read pay (never a request: the request path only buffers).

    python bench/state.py [--rounds 200] [--redis redis://127.0.0.1:6379/15]
                          [--postgres postgresql://postgres@127.0.0.1:5432/test]

Per backend (memory, a SQLite file in a temporary directory, Redis, PostgreSQL in a
throw-away schema), the median milliseconds of: putting an alert into a collection
already holding ``--alerts`` of them, acknowledging one (compare-and-set), listing the
100 newest unacknowledged, counting them by level, one activity flush (500 rows in
50 streams of a log holding ``--streams`` streams), one tally flush (7 counters).
Redis and PostgreSQL rows are skipped when the server does not answer; Redis keys
use the prefix ``pns-bench:`` and are deleted after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pynomaly_security.exceptions import StorageError
from pynomaly_security.storage import StorageRegistry
from pynomaly_security.storage.base import MonitorState

LEVELS = ("low", "medium", "high", "critical")


def _alert(n: int) -> dict[str, Any]:
    return {
        "alert_id": f"a{n}",
        "alert_type": "injection_attack",
        "threat_level": LEVELS[n % 4],
        "acknowledged": False,
        "message": "Injection attempt blocked",
        "details": {"path": "/search", "findings": [{"rule": "sqli-union", "excerpt": "x" * 40}]},
        "timestamp": 1_700_000_000.0 + n,
    }


async def _median_ms(rounds: int, op: Callable[[int], Awaitable[object]]) -> float:
    times = []
    for n in range(rounds):
        start = time.perf_counter()
        await op(n)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


async def measure(state: MonitorState, args: argparse.Namespace) -> dict[str, float]:
    alerts = state.documents("bench-alerts", indexed=("threat_level", "acknowledged"), keep=10_000)
    for n in range(args.alerts):
        await alerts.put(f"a{n}", _alert(n))
    log = state.log("bench-activity", max_entries=1000, max_streams=100_000)
    for start in range(0, args.streams, 500):
        await log.append(
            [(f"ip:10.0.{n // 256}.{n % 256}", [[n]]) for n in range(start, start + 500)]
        )
    row = [1_700_000_000_000_000, "GET", "/items", 200, 1500, "req-id", None, "10.0.0.1"]
    base = args.alerts
    return {
        "put alert": await _median_ms(args.rounds, lambda n: alerts.put(f"b{n}", _alert(base + n))),
        "acknowledge": await _median_ms(
            args.rounds,
            lambda n: alerts.update(
                f"b{n}",
                {"acknowledged": True, "acknowledged_at": 1.0},
                only_if={"acknowledged": False},
            ),
        ),
        "list 100": await _median_ms(
            args.rounds, lambda n: alerts.find({"acknowledged": False}, limit=100)
        ),
        "count by level": await _median_ms(
            args.rounds, lambda n: alerts.count({"acknowledged": False}, group_by="threat_level")
        ),
        "flush 500 rows": await _median_ms(
            args.rounds, lambda n: log.append([(f"user{n}-{s}", [row] * 10) for s in range(50)])
        ),
        "flush tallies": await _median_ms(
            args.rounds,
            lambda n: state.add_tallies("bench", {f"m{i}": 1 for i in range(7)}),
        ),
    }


async def _postgres_schema(url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=2)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def _redis_clear(url: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(url)
    try:
        async for key in client.scan_iter(match="pns-bench:*", count=1000):
            await client.delete(key)
    finally:
        await client.aclose()


async def main(args: argparse.Namespace) -> None:
    schema = f"bench_state_{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory() as tmp:
        urls = {
            "memory": ("memory://", {}),
            "sqlite": (f"sqlite:///{Path(tmp) / 'state.db'}", {}),
            "redis": (args.redis, {"key_prefix": "pns-bench:"}),
            "postgresql": (f"{args.postgres}?search_path={schema}", {}),
        }
        print(f"rounds={args.rounds} alerts={args.alerts} streams={args.streams} (median ms)")
        for name, (url, options) in urls.items():
            try:
                if name == "postgresql":
                    await _postgres_schema(args.postgres, f"CREATE SCHEMA {schema}")
                async with StorageRegistry() as storage:
                    figures = await measure(storage.state(url, **options), args)
                if name == "redis":
                    await _redis_clear(url)
            except (OSError, StorageError) as exc:
                print(f"{name:<11} skipped: {type(exc).__name__}")
                continue
            finally:
                if name == "postgresql":
                    with contextlib.suppress(OSError):
                        await _postgres_schema(args.postgres, f"DROP SCHEMA {schema} CASCADE")
            print(f"{name:<11} " + "  ".join(f"{k} {v:.2f}" for k, v in figures.items()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--alerts", type=int, default=5000)
    parser.add_argument("--streams", type=int, default=20_000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    asyncio.run(main(parser.parse_args()))
