"""A tiny app for the multi-worker test: uvicorn imports it in each worker.

Configuration comes from the environment the test sets, so every worker
builds the same limits against the same Redis.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from pynomaly_security.middleware.ratelimit import RateLimitMiddleware
from pynomaly_security.storage import create_store


async def whoami(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(os.getpid()))


app = Starlette(
    routes=[Route("/", whoami), Route("/health", whoami)],
    middleware=[
        Middleware(
            RateLimitMiddleware,
            store=create_store(os.environ["PNS_TEST_REDIS_URL"], key_prefix="pns-workers:"),
            limits=[os.environ.get("PNS_TEST_LIMIT", "20/day")],
            exempt_paths=["/health"],
        )
    ],
)
