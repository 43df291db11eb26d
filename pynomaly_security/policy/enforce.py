"""Enforcing policies in FastAPI routes.

* ``Depends(require("orders:read"))``: the route's template (``/orders/{id}``) as the
  resource, before the endpoint runs;
* ``await enforce(request, "orders:delete", Resource(type="order", id=..., owner=...))``
  inside the endpoint, once it loaded the resource (owner and classification rules).

The principal is ``request.state.principal`` when the app's authentication set a
:class:`~pynomaly_security.policy.Principal` there, else one named by the request
context's user id (``anonymous`` without one), or what ``principal=`` returns.

A deny answers 403 ``{"error": "forbidden", "request_id": ...}``: the client learns
nothing of the rules. The full explanation (policy, version, rule, reasons) goes to
the audit trail as an ``access_denied`` event, and the request's audit record names
the refusal. Without a policy engine (``POLICIES_ENABLED=false``) a route that asks
for one answers 503: fail closed, never open.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException, Request

from pynomaly_security._context import get_request_context, note_refusal
from pynomaly_security._log import get_logger
from pynomaly_security.policy.conditions import Principal, RequestFacts, Resource
from pynomaly_security.policy.evaluator import PolicyDecision

if TYPE_CHECKING:
    from pynomaly_security.policy.engine import SecurityPolicyEngine

__all__ = ["FORBIDDEN", "audit_denial", "enforce", "require"]

log = get_logger(__name__)

FORBIDDEN = "forbidden"
"""The one reason code a refused client sees."""

PrincipalOf = Callable[[Request], "Principal | Awaitable[Principal]"]
ResourceOf = Callable[[Request], "Resource | Awaitable[Resource]"]


def _engine(request: Request) -> SecurityPolicyEngine:
    stack = getattr(request.app.state, "pynomaly_security", None)
    engine = getattr(stack, "policies", None)
    if engine is None:
        raise HTTPException(503, {"error": "policy_engine_unavailable"})
    return engine  # type: ignore[no-any-return]


def _principal(request: Request) -> Principal:
    given = getattr(request.state, "principal", None)
    if isinstance(given, Principal):
        return given
    ctx = get_request_context(request.scope)
    return Principal(ctx.user_id if ctx is not None and ctx.user_id else "anonymous")


async def _resolve(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def enforce(
    request: Request,
    action: str,
    resource: Resource | None = None,
    *,
    principal: Principal | None = None,
) -> PolicyDecision:
    """The decision for this request; raises the 403 on a deny."""
    engine = _engine(request)
    if resource is None:
        route = request.scope.get("route")
        resource = Resource(path=getattr(route, "path", None) or request.url.path)
    if principal is None:
        principal = _principal(request)
    ctx = get_request_context(request.scope)
    facts = RequestFacts(
        now=engine.clock(),
        ip=ctx.client_ip if ctx is not None else None,
        method=request.method,
        headers=frozenset(name.decode("latin-1").lower() for name, _ in request.scope["headers"]),
        request_id=ctx.request_id if ctx is not None else None,
    )
    decision = engine.evaluate(principal, action, resource, facts)
    if decision.allowed:
        return decision
    note_refusal(request.scope, "policy_denied", 403)
    await audit_denial(engine, principal, action, resource, facts, decision)
    raise HTTPException(403, {"error": FORBIDDEN, "request_id": facts.request_id})


async def audit_denial(
    engine: SecurityPolicyEngine,
    principal: Principal,
    action: str,
    resource: Resource,
    facts: RequestFacts,
    decision: PolicyDecision,
) -> None:
    """The refusal's full explanation, as an ``access_denied`` event."""
    if engine.audit_logger is None:
        return
    from pynomaly_security.audit import AuditLevel, SecurityEventType

    try:
        await engine.audit_logger.log_security_event(
            SecurityEventType.AUTHZ_ACCESS_DENIED,
            "policy_denied",
            AuditLevel.WARNING,
            details={
                "action": action,
                "resource": resource.path or f"{resource.type}:{resource.id}",
                **decision.to_dict(),
            },
            user_id=principal.id,
            source_ip=facts.ip,
            request_id=facts.request_id,
        )
    except Exception as exc:  # refused either way; the failure is logged
        log.error("policy_audit_failed", error=type(exc).__name__)


def require(
    action: str,
    *,
    resource: ResourceOf | None = None,
    principal: PrincipalOf | None = None,
) -> Callable[[Request], Awaitable[PolicyDecision]]:
    """A dependency enforcing ``action`` on the route (or on ``resource(request)``)."""

    async def dependency(request: Request) -> PolicyDecision:
        target = await _resolve(resource(request)) if resource is not None else None
        who = await _resolve(principal(request)) if principal is not None else None
        return await enforce(request, action, target, principal=who)

    return dependency
