"""A host app with its own login routes, for the two-worker lockout test.

uvicorn imports it in each worker; configuration comes from the environment the
test sets, so both workers share one Redis. Every password check is counted in
Redis too, so the test can tell how many guesses were really checked.
"""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

import redis.asyncio as aioredis
from fastapi import FastAPI, Form, HTTPException, Request

from pynomaly_security import setup_security_middleware
from pynomaly_security.settings import SecuritySettings

RIGHT = "guess-30-is-right"
REDIS_URL = os.environ["PNS_TEST_REDIS_URL"]

app = FastAPI()
_counter = aioredis.from_url(REDIS_URL)


async def check(username: str, password: str, shape: str) -> dict[str, str]:
    await _counter.incr(f"pns-test:checked:{shape}")
    await asyncio.sleep(0.005)  # a password check takes time: other guesses arrive meanwhile
    if username == "alice" and password == RIGHT:
        return {"token": "t"}
    raise HTTPException(401, "invalid credentials")


@app.get("/health")
async def health() -> str:
    return str(os.getpid())


@app.post("/login")
async def json_login(request: Request) -> dict[str, str]:
    body = await request.json()
    return await check(body["username"], body["password"], "json")


@app.post("/auth/login")
async def form_login(
    username: Annotated[str, Form()], password: Annotated[str, Form()]
) -> dict[str, str]:
    return await check(username, password, "form")


@app.post("/api/login")
async def multipart_login(
    username: Annotated[str, Form()], password: Annotated[str, Form()]
) -> dict[str, str]:
    return await check(username, password, "multipart")


setup_security_middleware(
    app,
    settings=SecuritySettings(
        _env_file=None,
        development_mode=True,
        redis_url=REDIS_URL,
        admin_api_key="test-admin-key-0123456789abcdef",
        audit_db_url=f"sqlite:///{os.environ['PNS_TEST_AUDIT_DB']}",
        enable_audit_logging=False,
        brute_force_max_attempts=int(os.environ.get("PNS_TEST_ATTEMPTS", "5")),
        auth_rate_limits_enabled=False,  # the lockout alone must hold
    ),
)
