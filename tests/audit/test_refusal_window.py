"""A refusal a flood repeats (here the rate limiter's 429) is committed once per
client and reason per window; the next record after the window counts the
refusals in between (``repeats``), so none goes unaccounted for."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pynomaly_security.audit import AuditLogger
from pynomaly_security.middleware.audit import REPEAT_WINDOW, AuditMiddleware
from pynomaly_security.middleware.ratelimit import RateLimitMiddleware
from pynomaly_security.middleware.tracking import UserTrackingMiddleware


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def hello(request: Request) -> JSONResponse:
    return JSONResponse({"hello": True})


@pytest.mark.anyio
async def test_repeated_refusals_are_counted_on_the_next_record(audit: AuditLogger) -> None:
    """One record for the first 429, none for the repeats inside the window, and
    after it a record carrying how many were not written one by one."""
    clock = Clock()
    inner = RateLimitMiddleware(Starlette(routes=[Route("/", hello)]), limits=["1/hour"])
    app = UserTrackingMiddleware(AuditMiddleware(inner, audit_logger=audit, clock=clock))
    transport = httpx.ASGITransport(app=app, client=("192.0.2.44", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        statuses = [(await client.get("/")).status_code for _ in range(4)]
        clock.now += REPEAT_WINDOW
        statuses.append((await client.get("/")).status_code)
        other = httpx.ASGITransport(app=app, client=("192.0.2.45", 1234))
        async with httpx.AsyncClient(transport=other, base_url="http://testserver") as second:
            statuses += [(await second.get("/")).status_code for _ in range(2)]
    assert statuses == [200, 429, 429, 429, 429, 200, 429]
    records = await audit.query(event_type="request_refused")
    assert [(r["source_ip"], r["details"]["reason"], r["details"]["repeats"]) for r in records] == [
        ("192.0.2.44", "rate_limited", 0),
        ("192.0.2.44", "rate_limited", 2),  # the two inside the window
        ("192.0.2.45", "rate_limited", 0),  # another client: its own window
    ]
