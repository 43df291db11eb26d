"""``/api/security/tenants/{id}/policies``: a tenant's own policies (issue 21).

Mounted in the tenant router, behind its check (the platform admin, or that tenant's
admin: another tenant's id is the generic 404). Every route runs in the tenant's
namespace of the policy store (``policy/tenants.py``), so neither the global
policies nor another tenant's can be listed, read or changed from here; the global
``/api/security/policies`` stays the platform admin's.

A tenant policy may only restrict (every rule a ``deny``, a "require" being a deny
``unless`` it holds): an ``allow`` rule is ``422`` naming it. Changes need a session
that re-authenticated recently, like global ones (``api/reauth.py``): a tenant admin
sends its tenant's session token with ``X-Tenant`` (the platform admin its platform
session); each change is an ``admin_action`` record naming the tenant's policy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from pynomaly_security.api.policy_routes import (
    PolicyHead,
    PolicyId,
    Version,
    VersionOut,
    _conflict,
    _out,
)
from pynomaly_security.api.reauth import UNAVAILABLE, reauthenticated_user
from pynomaly_security.exceptions import StorageError
from pynomaly_security.policy.engine import SecurityPolicyEngine
from pynomaly_security.policy.model import Policy
from pynomaly_security.policy.store import PolicyConflict, PolicyStatus, PolicyVersion
from pynomaly_security.policy.tenants import loosening_rules
from pynomaly_security.tenancy.context import tenant_scope

__all__ = ["build_tenant_policy_router"]


def build_tenant_policy_router(
    engine: SecurityPolicyEngine, own_tenant: Callable[..., Awaitable[None]]
) -> APIRouter:
    """The routes over ``engine.tenants``; ``own_tenant`` checks the caller may act for
    the path's tenant (a dependency taking ``tenant_id``)."""
    tenants = engine.tenants
    if tenants is None:
        raise ValueError("the policy engine has no tenant policies (tenancy is off)")
    store = tenants.store
    router = APIRouter(prefix="/{tenant_id}/policies", dependencies=[Depends(own_tenant)])

    async def change(
        request: Request, tenant_id: str, what: str, act: Callable[[str], Awaitable[Any]]
    ) -> Any:
        """Re-authenticate, run ``act(actor)`` in the tenant's scope, reload everywhere."""
        actor = await reauthenticated_user(request, what, f"a tenant policy change ({what})")
        if not isinstance(actor, str):
            return actor
        try:
            with tenant_scope(tenant_id):
                made = await act(actor)
            await engine.tenant_changed(tenant_id)
        except StorageError:
            return UNAVAILABLE
        except PolicyConflict as exc:
            raise _conflict(exc) from None
        return made

    async def write(
        request: Request,
        tenant_id: str,
        body: Policy,
        what: str,
        method: Callable[..., Awaitable[PolicyVersion]],
    ) -> Any:
        """A new policy or version (``store.create`` or ``update``): restrictions only."""
        wrong = loosening_rules(body)
        if wrong:
            return JSONResponse({"detail": "tenant policies only restrict", "errors": wrong}, 422)

        async def act(actor: str) -> Any:
            return _out(await method(body, author=actor))

        return await change(request, tenant_id, what, act)

    @router.get("", response_model=list[PolicyHead])
    async def list_policies(tenant_id: str) -> Any:
        with tenant_scope(tenant_id):
            heads = await store.heads()
        return sorted(
            (PolicyHead(**{k: h.get(k) for k in PolicyHead.model_fields}) for h in heads),
            key=lambda h: h.policy_id,
        )

    @router.post("", response_model=VersionOut, status_code=201)
    async def create_policy(request: Request, tenant_id: str, body: Policy) -> Any:
        return await write(request, tenant_id, body, "policy_create", store.create)

    @router.get("/{policy_id}", response_model=VersionOut)
    async def get_policy(tenant_id: str, policy_id: PolicyId, version: int | None = None) -> Any:
        with tenant_scope(tenant_id):
            found = await store.get(policy_id, version)
        if found is None:
            raise HTTPException(404, "policy not found")
        return _out(found)

    @router.put("/{policy_id}", response_model=VersionOut)
    async def update_policy(
        request: Request, tenant_id: str, policy_id: PolicyId, body: Policy
    ) -> Any:
        if body.id != policy_id:
            raise HTTPException(422, "the body's id is not the path's")
        return await write(request, tenant_id, body, "policy_update", store.update)

    @router.delete("/{policy_id}", status_code=204, response_model=None)
    async def remove_policy(request: Request, tenant_id: str, policy_id: PolicyId) -> Any:
        async def remove(actor: str) -> Any:
            if not await store.remove(policy_id, author=actor):
                raise PolicyConflict("not_found", f"no policy {policy_id!r}")
            return Response(status_code=204)

        return await change(request, tenant_id, "policy_remove", remove)

    @router.post("/{policy_id}/versions/{version}/activate", response_model=VersionOut)
    async def activate(
        request: Request, tenant_id: str, policy_id: PolicyId, version: Version
    ) -> Any:
        async def activate_version(actor: str) -> Any:
            made = await store.set_status(
                policy_id, version, PolicyStatus.ACTIVE, author=actor, action="policy_activated"
            )
            return _out(made, body=False)

        return await change(request, tenant_id, "policy_activate", activate_version)

    return router
