"""learn -> detect -> prevent through the example app over HTTP (issue 22, items 3, 6).

Three app instances in turn share one durable state file (``STATE_URL``, SQLite),
as a restarted deployment would: what the first learned, the second detects with
and the third blocks with.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from examples.app import create_app
from pynomaly_security import SecuritySettings
from pynomaly_security.middleware.anomaly import AnomalyMiddleware
from pynomaly_security.plugin import SecurityStack

from ._traffic import WORDS

KEY = "test-admin-key-0123456789abcdef"
ADMIN = {"X-API-Key": KEY}
ODD = "/search?q=" + "7" * 300 + "&debug=1"
"""A search no user of this app sends: digits where words go, far too long, and a
parameter the endpoint never had; nothing an injection rule would flag."""


def _settings(tmp_path: Path, mode: str, **extra: Any) -> SecuritySettings:
    return SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        admin_api_key=KEY,
        development_mode=True,
        audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
        state_url=f"sqlite:///{tmp_path / 'state.db'}",
        anomaly_mode=mode,
        anomaly_min_requests=20,
        anomaly_flush_seconds=0.01,
        **extra,
    )


@asynccontextmanager
async def _serving(
    settings: SecuritySettings,
) -> AsyncIterator[tuple[httpx.AsyncClient, SecurityStack]]:
    app: FastAPI = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c, app.state.pynomaly_security


async def _browse(client: httpx.AsyncClient, n: int, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(n):
        q = " ".join(rng.sample(WORDS, rng.randint(1, 2)))
        assert (await client.get("/search", params={"q": q})).status_code == 200
        item = {"name": rng.choice(WORDS), "description": "", "price": rng.randint(1, 99)}
        assert (await client.post("/items", json=item)).status_code == 201


@pytest.mark.anyio
async def test_learn_then_detect_then_prevent(tmp_path: Path) -> None:
    """Learned profiles survive the restart; detect alerts with an explanation on a
    request shaped unlike its endpoint's traffic; prevent refuses it; normal requests pass."""
    async with _serving(_settings(tmp_path, "learn")) as (client, stack):
        await _browse(client, 60, seed=1)
        status = (await client.get("/api/security/anomaly", headers=ADMIN)).json()
        assert status["mode"] == "learn"
        await stack.security_monitor.flush()
        assert (await client.get("/api/security/anomaly/latest", headers=ADMIN)).json()[
            "requests"
        ] == []  # learning scores nothing

    async with _serving(_settings(tmp_path, "detect")) as (client, stack):
        status = (await client.get("/api/security/anomaly", headers=ADMIN)).json()
        assert status["profile"]["requests"] >= 120, status  # read back from the state file
        await _browse(client, 5, seed=2)
        assert (await client.get(ODD)).status_code == 200  # detect: served, reported
        await stack.security_monitor.flush()
        latest = (
            await client.get("/api/security/anomaly/latest?alerts_only=true", headers=ADMIN)
        ).json()["requests"]
        assert len(latest) == 1 and latest[0]["endpoint"] == "/search"
        assert latest[0]["score"] <= 30
        features = {(e["feature"], e["where"]) for e in latest[0]["explanation"]}
        assert ("unknown parameter", "debug") in features
        alerts = (await client.get("/api/security/alerts", headers=ADMIN)).json()["alerts"]
        mine = [a for a in alerts if a["alert_type"] == "behavioural_anomaly"]
        assert len(mine) == 1 and mine[0]["details"]["explanation"]
        assert "7777" not in str(mine[0])  # the explanation names features, never values

    prevent = _settings(tmp_path, "prevent", anomaly_block_score=30, anomaly_alert_score=40)
    async with _serving(prevent) as (client, stack):
        refused = await client.get(ODD)
        assert refused.status_code == 403 and refused.json()["error"] == "anomalous_request"
        await _browse(client, 5, seed=3)  # ordinary traffic still passes
        await stack.security_monitor.flush()
        latest = (await client.get("/api/security/anomaly/latest", headers=ADMIN)).json()
        blocked = [r for r in latest["requests"] if r["blocked"]]
        assert len(blocked) == 1 and blocked[0]["status"] == 403


@pytest.mark.anyio
async def test_off_adds_nothing_and_exclusions_hold(tmp_path: Path) -> None:
    """Off (the default): no anomaly layer in the chain; on, excluded and unlisted
    routes are not observed."""
    off = create_app(
        SecuritySettings(_env_file=None, development_mode=True, admin_api_key=KEY)  # type: ignore[call-arg]
    )
    assert AnomalyMiddleware not in [m.cls for m in off.user_middleware]
    assert off.state.pynomaly_security.anomaly is None
    settings = _settings(tmp_path, "learn", anomaly_routes="/search")
    async with _serving(settings) as (client, stack):
        await _browse(client, 3, seed=4)
        await client.get("/api/security/anomaly", headers=ADMIN)
        await stack.security_monitor.flush()
        assert stack.anomaly is not None
        profile = stack.anomaly.profile
        assert set(profile.endpoints) == {"/search"}


@pytest.mark.anyio
async def test_hostile_input_is_never_a_500(tmp_path: Path) -> None:
    """Without the inspection layer in front, odd input reaches the anomaly layer: deep
    JSON, broken percent-encoding, thousands of parameters, bytes that are not UTF-8 are
    observed or passed, and answered by the app, never a 500."""
    from pynomaly_security import setup_security_middleware

    app = FastAPI()

    @app.post("/echo")
    async def echo() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/echo")
    async def echo_get() -> dict[str, str]:
        return {"ok": "yes"}

    settings = _settings(tmp_path, "prevent")
    stack = setup_security_middleware(app, settings=settings, enable_input_inspection=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("198.51.100.8", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            deep = "[" * 50_000 + "]" * 50_000
            answers = [
                await c.post("/echo", content=deep, headers={"content-type": "application/json"}),
                await c.post(
                    "/echo",
                    content=b"%%%&=&&a=%zz&\xff\xfe=1",
                    headers={"content-type": "application/x-www-form-urlencoded"},
                ),
                await c.get("/echo?" + "&".join(f"p{i}=%ff" for i in range(3000))),
                await c.get("/echo?q=%C0%AF%00%0d%0a"),
            ]
        await stack.security_monitor.flush()
        assert [a.status_code for a in answers] == [200] * 4
        assert stack.anomaly is not None and stack.anomaly.counts["scored"] == 4
