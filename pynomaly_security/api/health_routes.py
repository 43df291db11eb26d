"""``GET /api/security/health``: up or down for anyone, the detail for the admin.

A load balancer or orchestrator probes it without a key and gets only
``{"status": "up"}`` (200) or ``{"status": "down"}`` (503): what the stack is
made of and where its backends live is the admin's to see. With the admin key
(``X-API-Key`` or ``Authorization: Bearer``, as on every admin route) the body is
:func:`~pynomaly_security.health.check_health`'s. Probes share one result for
``cache_seconds``, so a flood of unauthenticated probes costs one backend ping
per second, not one per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import SecretStr

from pynomaly_security.api.deps import AdminAPIKey
from pynomaly_security.health import check_health

if TYPE_CHECKING:
    from pynomaly_security.plugin import SecurityStack

__all__ = ["build_health_router"]


def build_health_router(
    stack: SecurityStack,
    admin_api_key: str | SecretStr | None,
    *,
    cache_seconds: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
) -> APIRouter:
    """The health route (no router-wide auth: the key only decides the detail).
    Without an admin key configured, nobody gets the detail here."""
    admin = AdminAPIKey(admin_api_key, auto_error=False) if admin_api_key is not None else None

    async def no_admin() -> None:
        return None

    cached: list[tuple[float, dict[str, Any]]] = []  # at most one entry

    async def report() -> dict[str, Any]:
        now = clock()
        if cached and now - cached[0][0] < cache_seconds:
            return cached[0][1]
        found = await check_health(stack)
        cached[:] = [(now, found)]
        return found

    router = APIRouter(tags=["security"])

    @router.get("/health", summary="Health of the security stack")
    async def health(who: str | None = Depends(admin or no_admin)) -> JSONResponse:
        found = await report()
        status = 200 if found["status"] == "up" else 503
        body = found if who == "admin" else {"status": found["status"]}
        return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})

    return router
