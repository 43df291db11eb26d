"""``GET /metrics`` (Prometheus), ``GET /api/security/metrics/summary`` (JSON) and the
dashboard page (``GET /api/security/dashboard``).

``/metrics`` answers a scraper holding the admin key or the metrics token
(``METRICS_TOKEN``, for a scraper that should not hold the admin key), as
``Authorization: Bearer`` or ``X-API-Key``, compared in constant time; anything
else is 401. Its format follows ``Accept``: OpenMetrics for a scraper that asks
for it (``application/openmetrics-text``), else the Prometheus text format.

The page itself holds no data: its HTML, script and style are public like any
login page's, and everything it shows is read with the admin key the user enters
once (kept in the tab's ``sessionStorage``) from the authenticated
``/api/security`` API. It is served under its own strict policy: no inline script
or style at all, scripts and styles only from this origin with subresource
integrity, Trusted Types required (no string can become markup), no framing.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import SecretStr

from pynomaly_security.metrics.hub import MetricsHub
from pynomaly_security.metrics.scrape import ScrapeAuth, exposition
from pynomaly_security.metrics.summary import build_summary

__all__ = [
    "DASHBOARD_CSP",
    "build_dashboard_router",
    "build_metrics_endpoint_router",
    "build_metrics_summary_router",
]

DASHBOARD_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "
    "require-trusted-types-for 'script'; trusted-types 'none'"
)
_ASSETS = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}


def build_metrics_summary_router(hub: MetricsHub) -> APIRouter:
    """``/metrics/summary`` for the admin router (its auth applies)."""
    router = APIRouter()

    @router.get("/metrics/summary")
    async def metrics_summary(
        minutes: int = Query(1440, ge=1, le=1440),
    ) -> dict[str, Any]:
        return await build_summary(hub, minutes=minutes)

    return router


def build_metrics_endpoint_router(
    hub: MetricsHub,
    *,
    admin_api_key: str | SecretStr | None,
    token: str | SecretStr | None,
    path: str = "/metrics",
) -> APIRouter:
    """``GET {path}``: the exposition, for the admin key or the metrics token."""
    auth = ScrapeAuth(admin_api_key, token)
    router = APIRouter()

    @router.get(path, include_in_schema=False)
    async def metrics(request: Request) -> Response:
        if not auth.allows(request.headers.get("x-api-key"), request.headers.get("authorization")):
            raise HTTPException(
                status_code=401,
                detail="metrics credential required",
                headers={"WWW-Authenticate": "Bearer"},
            )
        body, content_type = await exposition(hub, request.headers.get("accept"))
        return Response(body, headers={"content-type": content_type, "cache-control": "no-store"})

    return router


@dataclass(frozen=True)
class _Page:
    html: bytes
    assets: dict[str, bytes]


def _load_page(prefix: str) -> _Page:
    """The page with each asset's subresource-integrity hash filled in (read once)."""
    files = resources.files("pynomaly_security.dashboard") / "static"
    assets = {name: (files / name).read_bytes() for name in _ASSETS}
    html = (files / "dashboard.html").read_text("utf-8")
    for name, data in assets.items():
        digest = base64.b64encode(hashlib.sha384(data).digest()).decode()
        html = html.replace("{{sri:" + name + "}}", f"sha384-{digest}")
    html = html.replace("{{prefix}}", prefix)
    return _Page(html.encode(), assets)


def build_dashboard_router(prefix: str = "/api/security") -> APIRouter:
    """The page and its two assets: public (no data in them), under :data:`DASHBOARD_CSP`."""
    page = _load_page(prefix)
    router = APIRouter()
    headers = {
        "content-security-policy": DASHBOARD_CSP,
        "cache-control": "no-cache",
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
    }

    @router.get("/dashboard", include_in_schema=False)
    async def dashboard() -> Response:
        return Response(page.html, media_type="text/html; charset=utf-8", headers=headers)

    @router.get("/dashboard/assets/{name}", include_in_schema=False)
    async def dashboard_asset(name: str) -> Response:
        data = page.assets.get(name)
        if data is None:
            raise HTTPException(status_code=404, detail="not found")
        return Response(data, media_type=f"{_ASSETS[name]}; charset=utf-8", headers=headers)

    return router
