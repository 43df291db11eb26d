"""``GET /anomaly``: behavioural detection's state and latest scores (issue 22).

Read-only, for operators and dashboards. No admin-key check here on purpose: the
main router includes this router under ``/api/security`` behind the admin-key
dependency. ``GET /anomaly`` answers this worker's mode, model, profile size and
counts; ``GET /anomaly/latest?limit=50&alerts_only=false`` this worker's latest
scored requests, newest first (score 1-99, low: likely an attack, with the
explanation; never a value of the request); ``GET /anomaly/principals/{user}``
one principal's recent behaviour. Alerts of every worker are the monitor's
(``/api/security/alerts``, type ``behavioural_anomaly``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from pynomaly_security.anomaly.engine import AnomalyEngine

__all__ = ["build_anomaly_router"]


def build_anomaly_router(engine: AnomalyEngine) -> APIRouter:
    router = APIRouter(tags=["security-anomaly"])

    @router.get("/anomaly")
    async def anomaly_status() -> dict[str, Any]:
        return engine.status()

    @router.get("/anomaly/latest")
    async def anomaly_latest(
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        alerts_only: bool = False,
    ) -> dict[str, Any]:
        return {"mode": engine.mode, "requests": engine.latest(limit, alerts_only=alerts_only)}

    @router.get("/anomaly/principals/{principal}")
    async def anomaly_principal(principal: str) -> dict[str, Any]:
        found = engine.behaviour(principal[:256])
        if found is None:
            raise HTTPException(404, "no recent behaviour of this principal")
        return found

    return router
