"""Per-request overhead of RateLimitMiddleware: off vs in-memory vs Redis.

Calls the ASGI app directly (no sockets, no HTTP parsing), so the difference
between the rows is the middleware itself: key derivation, the limits
sliding-window hit + window stats, and the RateLimit headers.

    python bench/ratelimit.py [--requests 20000] [--redis redis://127.0.0.1:6379/15]

Redis rows are skipped when Redis does not answer. The Redis keys written use
the prefix ``pns-bench:`` and expire with their window.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message

from pynomaly_security.middleware.ratelimit import RateLimitMiddleware
from pynomaly_security.storage import Store, create_store


async def ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def scope(ip: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench")],
        "client": (ip, 1234),
        "server": ("bench", 80),
        "state": {},
    }


async def run(app: ASGIApp, requests: int, distinct_ips: int) -> list[float]:
    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    status: list[int] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    timings = []
    for i in range(requests):
        s = scope(
            f"10.{(i % distinct_ips) // 65536 % 256}.{(i % distinct_ips) // 256 % 256}.{i % 256}"
        )
        start = time.perf_counter()
        await app(s, receive, send)
        timings.append(time.perf_counter() - start)
    if any(code != 200 for code in status):
        raise SystemExit("bench saw non-200 answers: the limit is too low")
    return timings


def limited(store: Store) -> ASGIApp:
    return RateLimitMiddleware(
        Starlette(routes=[Route("/", ok)]), store=store, limits=["1000000/minute"]
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--distinct-ips", type=int, default=1_000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    args = parser.parse_args()

    variants: list[tuple[str, ASGIApp, Store | None]] = [
        ("off", Starlette(routes=[Route("/", ok)]), None)
    ]
    memory = create_store("memory://")
    variants.append(("memory", limited(memory), memory))
    redis_store = create_store(args.redis, key_prefix="pns-bench:")
    if await redis_store.healthcheck():
        variants.append(("redis", limited(redis_store), redis_store))
    else:
        print(f"(redis at {args.redis} not answering: skipped)")

    print(f"{args.requests} requests per variant, {args.distinct_ips} distinct client IPs")
    print(f"{'variant':8} {'mean us':>9} {'p50 us':>9} {'p99 us':>9} {'overhead us':>12}")
    baseline = None
    for name, app, _ in variants:
        await run(app, min(2_000, args.requests), args.distinct_ips)  # warm-up
        timings = await run(app, args.requests, args.distinct_ips)
        mean = statistics.fmean(timings) * 1e6
        p50 = statistics.median(timings) * 1e6
        p99 = sorted(timings)[int(len(timings) * 0.99)] * 1e6
        baseline = mean if baseline is None else baseline
        print(f"{name:8} {mean:9.1f} {p50:9.1f} {p99:9.1f} {mean - baseline:12.1f}")
    await redis_store.aclose()
    await memory.aclose()


if __name__ == "__main__":
    asyncio.run(main())
