"""``PolicyMiddleware``: the coarse rules (IP, time, route) enforced before the app.

A rule is coarse when it is an enforced-or-not **deny** whose actions are HTTP methods
and whose resources are route templates (or ``*``): "deny DELETE /items/* outside
office hours unless admin with MFA". This layer refuses a request such a rule applies
to, and passes every other: it never default-denies (a route asks for that with
``Depends(require(...))``), so a policy about orders cannot take the admin API or
the health check down.

While no active (or shadow) policy has a coarse rule the layer is taken out of the
built stack (its outer layer calls the next one: ``SecurityPolicyEngine.attach``, as
the decision layer does); used alone, ``__call__`` then returns the app's awaitable
itself, without a coroutine frame of this layer (``middleware/_asgi.py``).

A refusal is 403 ``{"error": "forbidden"}`` through ``_refusal.py`` (audited as a
refusal), and the explanation goes to the audit trail as an ``access_denied`` event.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable

from starlette.types import ASGIApp, Receive, Scope, Send

from pynomaly_security._context import get_request_context
from pynomaly_security.middleware._asgi import passes_through
from pynomaly_security.middleware._refusal import refuse
from pynomaly_security.policy.conditions import Principal, RequestFacts, Resource
from pynomaly_security.policy.enforce import FORBIDDEN, audit_denial
from pynomaly_security.policy.engine import SecurityPolicyEngine

__all__ = ["PolicyMiddleware"]


class PolicyMiddleware:
    """Args:
    app: the app it wraps.
    engine: the stack's policy engine (its coarse sets are read per request).
    """

    def __init__(self, app: ASGIApp, *, engine: SecurityPolicyEngine) -> None:
        self.app = app
        self.engine = engine

    @passes_through
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if self.engine.coarse is None or scope["type"] != "http":
            return self.app(scope, receive, send)  # no coarse rule: no frame of this layer
        return self._check(scope, receive, send)

    async def _check(self, scope: Scope, receive: Receive, send: Send) -> None:
        engine = self.engine
        ctx = get_request_context(scope)
        found = engine.principal_of(scope)
        principal = await found if inspect.isawaitable(found) else found
        if principal is None:
            principal = Principal(ctx.user_id if ctx is not None and ctx.user_id else "anonymous")
        facts = RequestFacts(
            now=engine.clock(),
            ip=ctx.client_ip if ctx is not None else None,
            method=scope["method"],
            headers=frozenset(name.decode("latin-1").lower() for name, _ in scope["headers"]),
            request_id=ctx.request_id if ctx is not None else None,
        )
        resource = Resource(path=scope["path"])
        decision = engine.check_request(principal, scope["method"], resource, facts)
        if decision is None or decision.allowed:
            await self.app(scope, receive, send)
            return
        await audit_denial(engine, principal, scope["method"], resource, facts, decision)
        await refuse(scope, receive, send, 403, FORBIDDEN)
