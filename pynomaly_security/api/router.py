"""``/api/security/*``: status, alerts, acknowledge, user activity.

Thin handlers: validate, ask the monitor or tracker, return a schema model.
Every route requires the admin key by default; without a key configured the
router refuses to be built unless an explicit auth dependency is given.
Alerts, acknowledgements, activity and the status counters come from the
shared store, so every worker answers the same; a store that fails is a 503.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import SecretStr

from pynomaly_security.api.deps import AdminAPIKey
from pynomaly_security.api.schemas import (
    ActivityOut,
    AlertOut,
    AlertsOut,
    StatusOut,
    UserActivityOut,
)
from pynomaly_security.exceptions import ConfigurationError, StorageError
from pynomaly_security.monitor.activity import UserTracker
from pynomaly_security.monitor.events import SecurityAlert, ThreatLevel
from pynomaly_security.monitor.monitor import SecurityMonitor

if TYPE_CHECKING:
    from pynomaly_security.tenancy.parts import Tenancy

__all__ = ["TENANT_ADMIN_PATHS", "add_security_endpoints", "create_security_router"]

TENANT_ADMIN_PATHS = ("/alerts", "/users/", "/incidents", "/decisions", "/lockouts")
"""Routes (below the prefix) a tenant admin key may use, inside its tenant: those
whose state is per tenant (``api/deps.py``)."""

_NO_AUTH = (
    "the /api/security router needs authentication: set PYNOMALY_SECURITY__ADMIN_API_KEY "
    "or pass auth_dependency=... (a FastAPI dependency that raises 401/403 for non-admins)"
)


def create_security_router(
    *,
    security_monitor: SecurityMonitor,
    user_tracker: UserTracker | None = None,
    admin_api_key: str | SecretStr | None = None,
    auth_dependency: Callable[..., Any] | None = None,
    prefix: str = "/api/security",
    extra_routers: Sequence[APIRouter] = (),
    audit_logger: Any = None,
    sqli_edge: Callable[[], str] | None = None,
    tenancy: Tenancy | None = None,
) -> APIRouter:
    """Build the router. ``auth_dependency`` replaces the admin-key check;
    with an ``audit_logger``, admin actions are committed to the audit trail;
    ``sqli_edge`` reads the inspection's effective ``SQLI_EDGE_MODE`` for ``/status``
    (``auto`` moves from ``block`` to ``sink_confirmed`` at the sink's first statement).
    With ``tenancy`` (issue 21) tenant admin keys are admitted on
    :data:`TENANT_ADMIN_PATHS`, and the platform admin's alert list without
    ``X-Tenant`` spans every tenant."""
    if auth_dependency is None:
        if admin_api_key is None:
            raise ConfigurationError(_NO_AUTH)
        auth_dependency = AdminAPIKey(
            admin_api_key,
            tenants=tenancy.registry if tenancy is not None else None,
            tenant_paths=[prefix + p for p in TENANT_ADMIN_PATHS],
        )
    router = APIRouter(
        prefix=prefix,
        tags=["security"],
        dependencies=[Depends(auth_dependency)],
        route_class=_StoreFailureRoute,
    )
    monitor = security_monitor

    @router.get("/status", response_model=StatusOut)
    async def security_status() -> StatusOut:
        await monitor.flush(timeout=0.2)  # read-your-writes for events just submitted
        return StatusOut(
            **await monitor.get_security_summary(),
            sqli_edge=sqli_edge() if sqli_edge is not None else None,
        )

    @router.get("/alerts", response_model=AlertsOut)
    async def list_alerts(
        threat_level: ThreatLevel | None = None, limit: int = Query(1000, ge=1, le=10_000)
    ) -> AlertsOut:
        await monitor.flush(timeout=0.2)

        async def read() -> list[SecurityAlert]:
            return await monitor.get_active_alerts(threat_level, limit=limit)

        alerts = (
            await tenancy.visible(read, newest=_timestamp, limit=limit)
            if tenancy is not None
            else await read()
        )
        return AlertsOut(count=len(alerts), alerts=[AlertOut.from_alert(a) for a in alerts])

    @router.post("/alerts/{alert_id}/acknowledge", response_model=AlertOut)
    async def acknowledge_alert(alert_id: str) -> AlertOut:
        if not await monitor.acknowledge_alert(alert_id):
            raise HTTPException(status_code=404, detail="alert not found")
        alert = await monitor.get_alert(alert_id)
        if alert is None:  # evicted in between: as good as unknown
            raise HTTPException(status_code=404, detail="alert not found")
        if audit_logger is not None:
            from pynomaly_security.audit import SecurityEventType

            await audit_logger.log_audit_event(
                "acknowledge_alert",
                f"alert:{alert_id}",
                user_id="admin",
                details={"alert_type": alert.alert_type, "threat_level": alert.threat_level.value},
                event_type=SecurityEventType.ADMIN_ACTION,
            )
        return AlertOut.from_alert(alert)

    @router.get("/users/{user_id}/activity", response_model=UserActivityOut)
    async def user_activity(
        user_id: str, hours: float = Query(24, gt=0, le=24 * 90)
    ) -> UserActivityOut:
        records = await user_tracker.get_user_activity(user_id, hours) if user_tracker else []
        return UserActivityOut(
            user_id=user_id,
            hours=hours,
            count=len(records),
            activities=[ActivityOut(**r.to_dict()) for r in records],
        )

    for extra in extra_routers:
        router.include_router(extra)
    return router


def _timestamp(alert: SecurityAlert) -> float:
    return alert.timestamp


class _StoreFailureRoute(APIRoute):
    """A route that answers 503 when the shared store fails (Redis down), instead
    of a 500: the admin sees that the state is unreachable, not a crash."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except StorageError:
                return JSONResponse(
                    {"detail": "security state unavailable"},
                    status_code=503,
                    headers={"Retry-After": "5"},
                )

        return route


def add_security_endpoints(
    app: FastAPI,
    security_monitor: SecurityMonitor | None = None,
    user_tracker: UserTracker | None = None,
    *,
    auth_dependency: Callable[..., Any] | None = None,
    admin_api_key: str | SecretStr | None = None,
    prefix: str = "/api/security",
    include_in_schema: bool | None = None,
) -> APIRouter:
    """Mount ``/api/security/*`` on ``app``.

    Defaults come from the :class:`~pynomaly_security.plugin.SecurityStack`
    that :func:`~pynomaly_security.setup_security_middleware` stored on
    ``app.state``: its monitor, tracker, admin key and extra routers (audit, lockouts).
    With a stack, ``GET {prefix}/health`` is mounted too: up/down for anyone, the
    detail for the admin key (``api/health_routes.py``).
    ``include_in_schema`` (default: the ``ADMIN_ROUTES_IN_SCHEMA`` setting, off)
    lists the routes in the app's OpenAPI schema: a public ``/docs`` should not
    map the admin API for every visitor (the routes work either way).
    """
    stack = getattr(app.state, "pynomaly_security", None)
    extra: list[APIRouter] = []
    audit_logger = None
    sqli_edge = None
    if stack is not None:
        audit_logger = stack.audit_logger
        inspector = stack.inspector
        if inspector is not None:
            sqli_edge = lambda: inspector.sqli_edge  # noqa: E731  # read at each request
        security_monitor = security_monitor or stack.security_monitor
        user_tracker = user_tracker or stack.user_tracker
        if admin_api_key is None:
            admin_api_key = stack.settings.admin_api_key
        extra = list(stack.admin_routers)
        if include_in_schema is None:
            include_in_schema = stack.settings.admin_routes_in_schema
    if security_monitor is None:
        raise ConfigurationError(
            "add_security_endpoints needs a SecurityMonitor: call setup_security_middleware(app) "
            "first or pass security_monitor=..."
        )
    router = create_security_router(
        security_monitor=security_monitor,
        user_tracker=user_tracker,
        admin_api_key=admin_api_key,
        auth_dependency=auth_dependency,
        prefix=prefix,
        extra_routers=extra,
        audit_logger=audit_logger,
        sqli_edge=sqli_edge,
        tenancy=stack.tenancy if stack is not None else None,
    )
    app.include_router(router, include_in_schema=bool(include_in_schema))
    if stack is not None and getattr(stack, "metrics", None) is not None:
        _mount_metrics(app, stack, admin_api_key, prefix)
    if stack is not None:
        # Outside the admin router's auth: a probe without the key gets up/down.
        from pynomaly_security.api.health_routes import build_health_router

        app.include_router(
            build_health_router(stack, admin_api_key),
            prefix=prefix,
            include_in_schema=bool(include_in_schema),
        )
        if stack.tenancy is not None and admin_api_key is not None:
            # Issue 21: its own check (platform key, or a tenant admin's key for its tenant).
            from pynomaly_security.api.tenant_routes import build_tenant_router

            app.include_router(
                build_tenant_router(stack.tenancy, admin_api_key, audit_logger, stack.policies),
                prefix=prefix,
                include_in_schema=bool(include_in_schema),
            )
    return router


def _mount_metrics(
    app: FastAPI, stack: Any, admin_api_key: str | SecretStr | None, prefix: str
) -> None:
    """``GET /metrics`` (admin key or metrics token) and the dashboard page (no data in
    it: what it shows comes from the authenticated router above)."""
    from pynomaly_security.api.metrics_routes import (
        build_dashboard_router,
        build_metrics_endpoint_router,
    )

    section = stack.settings.metrics
    if admin_api_key is not None or section.token is not None:
        app.include_router(
            build_metrics_endpoint_router(
                stack.metrics, admin_api_key=admin_api_key, token=section.token, path=section.path
            )
        )
    app.include_router(build_dashboard_router(prefix), prefix=prefix, include_in_schema=False)
