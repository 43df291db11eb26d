"""``/api/security/tenants``: the tenant admin API (issue 21, item 7).

Mounted beside the admin router (like ``/health``), with its own check: the
platform admin key (``X-API-Key``) sees every tenant; a tenant admin key (shown
once, when the tenant is created) sees only its tenant, and must name it
(``X-Tenant`` for the list). Everything else is the generic ``404``: a tenant
admin cannot tell another tenant from a missing one.

Sensitive changes (suspend or reactivate, change plan, delete, rotate keys) are
the platform admin's and need a recently re-authenticated session too
(``api/reauth.py``); overrides may be set by a tenant admin (they can only narrow,
checked here: a loosening override is ``422`` naming the field). Every change is
an audit record.
"""

# No ``from __future__ import annotations``: the routes' ``Who`` dependency is local to
# build_tenant_router (it closes over the registry), and FastAPI resolves string
# annotations in the module's globals only.
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from pynomaly_security._context import get_request_context
from pynomaly_security.api.reauth import reauthenticated_user
from pynomaly_security.tenancy.context import tenant_scope
from pynomaly_security.tenancy.model import Tenant, TenantOverrides, check_narrowing

__all__ = ["build_tenant_router"]

_NOT_FOUND = HTTPException(status_code=404, detail="Not Found")


@dataclass(frozen=True, slots=True)
class Caller:
    platform: bool
    tenant: str | None = None


class TenantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str = Field(default="", max_length=200)
    plan: str | None = None
    overrides: TenantOverrides = Field(default_factory=TenantOverrides)
    database_url: str | None = Field(default=None, max_length=2000)


class TenantPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    status: Literal["active", "suspended"] | None = None
    plan: str | None = None
    overrides: TenantOverrides | None = None


def build_tenant_router(
    tenancy: Any, admin_api_key: str | SecretStr, audit_logger: Any, policies: Any = None
) -> APIRouter:
    """The router over ``stack.tenancy`` (a :class:`~pynomaly_security.tenancy.parts.Tenancy`);
    with the stack's policy engine, each tenant's own policies too."""
    key = (
        admin_api_key.get_secret_value() if isinstance(admin_api_key, SecretStr) else admin_api_key
    ).encode()
    registry, settings = tenancy.registry, tenancy.settings

    async def caller(request: Request) -> Caller:
        presented = request.headers.get("x-api-key")
        if not presented:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            presented = token.strip() if scheme.lower() == "bearer" else ""
        if presented and hmac.compare_digest(presented.encode(), key):
            return Caller(platform=True)
        tenant_id = request.path_params.get("tenant_id") or request.headers.get(
            settings.tenancy.header, ""
        )
        if presented and tenant_id and await registry.admin_of(tenant_id, presented):
            return Caller(platform=False, tenant=tenant_id)
        raise HTTPException(401, "admin key required", headers={"WWW-Authenticate": "Bearer"})

    def visible(who: Caller, tenant_id: str) -> None:
        if not who.platform and who.tenant != tenant_id:
            raise _NOT_FOUND

    def platform_only(who: Caller) -> None:
        if not who.platform:
            raise HTTPException(403, "the platform admin's")

    async def audit(
        request: Request, action: str, tenant_id: str, actor: str, **details: Any
    ) -> None:
        if audit_logger is None:
            return
        from pynomaly_security.audit import SecurityEventType

        ctx = get_request_context(request.scope)
        await audit_logger.log_audit_event(
            action,
            f"tenant:{tenant_id}",
            user_id=actor,
            details={"tenant": tenant_id, **details},
            event_type=SecurityEventType.ADMIN_ACTION,
            source_ip=ctx.client_ip if ctx is not None else None,
        )

    async def step_up(request: Request, action: str) -> str | Response:
        return await reauthenticated_user(request, action, f"a tenant change ({action})")

    async def platform_change(
        tenant_id: str, request: Request, who: Caller, action: str
    ) -> str | Response:
        """The re-authenticated actor of a platform admin's change to an existing tenant,
        or the answer that asks for the re-authentication. In this order: another
        tenant's admin gets the generic ``404`` (not a ``403`` that confirms the tenant),
        and a missing tenant is ``404`` before any re-authentication is asked for."""
        visible(who, tenant_id)
        platform_only(who)
        if await registry.get(tenant_id) is None:
            raise _NOT_FOUND
        return await step_up(request, action)

    Who = Annotated[Caller, Depends(caller)]
    router = APIRouter(prefix="/tenants", tags=["security"])

    async def known(who: Caller, tenant_id: str) -> Tenant:
        """The tenant ``who`` may see: the generic ``404`` whether it is missing or another's."""
        visible(who, tenant_id)
        tenant: Tenant | None = await registry.get(tenant_id)
        if tenant is None:
            raise _NOT_FOUND
        return tenant

    async def own_tenant(tenant_id: str, who: Who) -> None:
        await known(who, tenant_id)

    @router.get("")
    async def list_tenants(who: Who) -> dict[str, Any]:
        if who.platform:
            tenants = await registry.all()
        else:
            found = await registry.get(who.tenant or "")
            tenants = [found] if found is not None else []
        return {"count": len(tenants), "tenants": [t.public() for t in tenants]}

    @router.post("", status_code=201)
    async def create_tenant(body: TenantIn, request: Request, who: Who) -> Any:
        platform_only(who)
        plan = body.plan or settings.tenancy.default_plan
        if plan not in settings.tenancy.plans:
            return JSONResponse({"detail": f"unknown plan {plan!r}"}, 422)
        wrong = check_narrowing(body.overrides, settings)
        if wrong:
            return JSONResponse({"detail": "overrides may only narrow", "errors": wrong}, 422)
        try:
            tenant = Tenant(
                id=body.id,
                name=body.name,
                plan=plan,
                overrides=body.overrides,
                database_url=body.database_url,
            )
        except ValidationError as exc:
            return JSONResponse({"detail": "invalid tenant", "errors": _errors(exc)}, 422)
        created = await registry.create(tenant)
        if created is None:
            return JSONResponse({"detail": "tenant id taken"}, 409)
        stored, admin_key = created
        await tenancy.keys.create(stored.id)
        await audit(request, "tenant_created", stored.id, "admin", plan=plan)
        return {**stored.public(), "admin_key": admin_key}

    @router.get("/{tenant_id}")
    async def get_tenant(tenant_id: str, who: Who) -> dict[str, Any]:
        tenant = await known(who, tenant_id)
        return {**tenant.public(), "key_versions": await tenancy.keys.versions(tenant_id)}

    @router.patch("/{tenant_id}")
    async def patch_tenant(tenant_id: str, body: TenantPatch, request: Request, who: Who) -> Any:
        await known(who, tenant_id)
        changes = body.model_dump(exclude_none=True)
        if not changes:
            return JSONResponse({"detail": "nothing to change"}, 400)
        actor = "admin" if who.platform else f"tenant-admin:{tenant_id}"
        if "status" in changes or "plan" in changes:
            platform_only(who)
            if body.plan is not None and body.plan not in settings.tenancy.plans:
                return JSONResponse({"detail": f"unknown plan {body.plan!r}"}, 422)
            what = "status" if "status" in changes else "plan"
            stepped = await step_up(request, "tenant_" + what)
            if not isinstance(stepped, str):
                return stepped
            actor = stepped
        if body.overrides is not None:
            wrong = check_narrowing(body.overrides, settings)
            if wrong:
                return JSONResponse({"detail": "overrides may only narrow", "errors": wrong}, 422)
            changes["overrides"] = body.overrides.model_dump()
        updated = await registry.update(tenant_id, **changes)
        if updated is None:
            raise _NOT_FOUND
        await audit(request, "tenant_updated", tenant_id, actor, fields=sorted(changes))
        return updated.public()

    @router.delete("/{tenant_id}")
    async def delete_tenant(tenant_id: str, request: Request, who: Who) -> Any:
        actor = await platform_change(tenant_id, request, who, "tenant_delete")
        if not isinstance(actor, str):
            return actor
        erased = await tenancy.delete(tenant_id)
        await audit(request, "tenant_deleted", tenant_id, actor, crypto_shredded=True, **erased)
        return {"deleted": tenant_id, "crypto_shredded": True, **erased}

    @router.get("/{tenant_id}/usage")
    async def usage(tenant_id: str, who: Who) -> dict[str, Any]:
        tenant = await known(who, tenant_id)
        plan = settings.tenancy.plan(tenant.plan)
        with tenant_scope(tenant_id):
            figures: dict[str, Any] = await tenancy.quotas.usage(
                tenant.plan, plan, tenant.overrides.rate_limits
            )
        return {"tenant": tenant_id, **figures}

    @router.post("/{tenant_id}/keys/rotate")
    async def rotate_keys(tenant_id: str, request: Request, who: Who) -> Any:
        actor = await platform_change(tenant_id, request, who, "tenant_key_rotate")
        if not isinstance(actor, str):
            return actor
        version = await tenancy.keys.rotate(tenant_id)
        await audit(request, "tenant_key_rotated", tenant_id, actor, version=version)
        return {"tenant": tenant_id, "key_version": version}

    if policies is not None and policies.tenants is not None:
        from pynomaly_security.api.tenant_policy_routes import build_tenant_policy_router

        router.include_router(build_tenant_policy_router(policies, own_tenant))
    if audit_logger is not None:
        # The audit routes, for one tenant's records (its admin, or the platform's).
        from pynomaly_security.api.audit_routes import build_audit_router

        router.include_router(
            build_audit_router(audit_logger, tenant_of=lambda r: str(r.path_params["tenant_id"])),
            prefix="/{tenant_id}",
            dependencies=[Depends(own_tenant)],
        )
    return router


def _errors(exc: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]


DeleteHook = Callable[[str], Awaitable[dict[str, Any]]]
