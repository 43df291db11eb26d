"""``TenancyMiddleware``: find a request's tenant, check it, scope everything inside.

Right inside the tracking layer (it needs the request context and client IP; its
refusals get the security headers and the audit), outside every layer that
keeps state, so the lockout, rate limiter, quotas and the endpoint all run in
the tenant's scope (``tenancy/context.py``). Installed only when
``TENANCY_ENABLED``: otherwise nothing of this is in the request path.

Per request:

1. A path under ``TENANCY_EXEMPT_PATHS`` (the platform admin API, health) runs in
   the platform scope.
2. Each configured source (``claim``, ``header``, ``subdomain``, ``path``) may name
   a tenant; the first one wins and every other that names one must agree. A
   bearer token carrying the tenant claim is checked whatever the sources: a
   token of tenant A used with ``X-Tenant: B`` is ``403``, and recorded
   (``tenant_mismatch``) in the audit trail. The claim is read from a *verified*
   token (the installed authenticator's ``decode``); an unverifiable token names
   no tenant and is the app's 401 to give.
3. No tenant, an unknown, malformed, suspended or deleted one: one answer, the
   ``404 {"detail": "Not Found"}`` of any unknown URL, the same for all (recorded
   as ``tenant_unknown``, once per client and minute).
4. The tenant's IP allow list (an override), then its quotas (``tenancy/quotas.py``).
5. Its other overrides, for the layers inside: the detection level in the scope
   (``RAISED_DETECTION``), the rest as ``current_overrides()`` (the lockout's
   thresholds, the token lifetimes, MFA required). A tenant without overrides, quotas
   or allow list pays for none of this.

The tenant id is then ``current_tenant()`` (``tenancy/context.py``) for every layer inside,
the endpoint and the tasks it starts.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pynomaly_security._context import STATE_KEY, get_request_context, note_refusal
from pynomaly_security.audit.tenants import AccessTenants
from pynomaly_security.exceptions import StorageError
from pynomaly_security.middleware._asgi import Layer
from pynomaly_security.middleware.inspection import RAISED_DETECTION
from pynomaly_security.tenancy.context import (
    OVERRIDES,
    SCOPE,
    TenantScope,
    enter,
    leave,
    scope_of,
)
from pynomaly_security.tenancy.model import Plan, TenantOverrides
from pynomaly_security.tenancy.quotas import Quotas
from pynomaly_security.tenancy.registry import TenantRegistry
from pynomaly_security.tenancy.settings import TenancySection

__all__ = ["TenancyMiddleware"]

_NOT_FOUND = {"detail": "Not Found"}
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class _Served:
    """What serving one tenant's request needs, computed once per tenant and period.

    A slotted class, not a NamedTuple: CPython 3.11 specializes reading a slot, not a
    NamedTuple field (a descriptor lookup each), and every request reads five of these
    (measured under valgrind, the layer alone: about 400 instructions per request)."""

    expires: float
    tenant_id: str
    scope: TenantScope
    plan_name: str
    plan: Plan | None
    """None: no quota applies."""
    extra: list[str]
    ranges: tuple[_Network, ...]
    overrides: TenantOverrides | None
    """Set as ``current_overrides()`` when the tenant has one enforced inside (lockout
    thresholds, token lifetimes, MFA required); None: the global settings hold."""
    level: int | None
    """The tenant's detection level (the inspection layer reads it from the scope,
    ``RAISED_DETECTION``, and never goes below the global one)."""
    simple: bool
    """No quota, no IP allow list, no override: the request only needs the scope set."""


_FORBIDDEN = {"detail": "Forbidden"}
_ENFORCED_INSIDE = (
    "brute_force_max_attempts",
    "account_max_attempts",
    "access_token_ttl",
    "refresh_token_ttl",
    "mfa_required",
)
"""Overrides the layers inside read from ``current_overrides()`` (auth/lockout.py,
auth/tokens.py, auth/deps.py); the IP allow list and rate limits are enforced here."""


class TenancyMiddleware(Layer):
    """See the module docstring.

    Args:
        registry: the tenants.
        section: ``settings.tenancy``.
        quotas: the quotas on the tenant-scoped store (None: no quotas).
        access_tenants: where each request's tenant is noted for its audit access row
            (``audit/tenants.py``; None: no audit trail).
        token_claims: verified claims of a bearer token, or None (default: the
            authenticator installed on ``app.state``, looked up per request).
        exempt: path prefixes served for the platform besides
            ``section.exempt_paths`` (the stack's own, such as ``/metrics``).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        registry: TenantRegistry,
        section: TenancySection,
        quotas: Quotas | None = None,
        access_tenants: AccessTenants | None = None,
        token_claims: Callable[[Scope, str], dict[str, Any] | None] | None = None,
        exempt: Sequence[str] = (),
    ) -> None:
        self.app = app
        self.registry = registry
        self.section = section
        self.quotas = quotas
        self._note = access_tenants.note if access_tenants is not None else None
        # ``exempt``: the stack's own platform paths beside the setting's (``/metrics``:
        # a scraper has no tenant to name).
        self._exempt = (*section.exempt_paths, *exempt)
        self._header = section.header.lower().encode("latin-1")
        self._claim = section.claim
        self._suffix = "." + section.base_domain.lower() if section.base_domain else None
        self._prefix = section.path_prefix
        self._token_claims = token_claims or _installed_claims
        # The claim source is checked separately (it costs a verification, and only
        # requests with a bearer token pay it); here it only marks its precedence.
        self._sources = tuple(s for s in section.sources if s != "claim")
        self._path_source = "path" in section.sources
        self._served: dict[str, _Served] = {}
        registry.on_change.append(lambda tenant_id: self._served.pop(tenant_id, None))
        self._clock = time.monotonic
        self._claim_first = bool(section.sources) and section.sources[0] == "claim"

    # -- sources ---------------------------------------------------------------------
    def _from_header(self, scope: Scope) -> str | None:
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        for name, value in headers:
            if name == self._header:
                return value.decode("latin-1").strip().lower()
        return None

    def _from_host(self, scope: Scope) -> str | None:
        if self._suffix is None:
            return None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1").lower().rsplit(":", 1)[0]
                if host.endswith(self._suffix):
                    label = host[: -len(self._suffix)]
                    return label if "." not in label else None
                return None
        return None

    def _from_path(self, scope: Scope) -> str | None:
        path: str = scope["path"]
        if not path.startswith(self._prefix):
            return None
        return path[len(self._prefix) :].split("/", 1)[0] or None

    # -- the request -----------------------------------------------------------------
    # The hot path is written for its cost (``bench/tenancy.py --instructions``): one pass
    # over the headers, the tenant's facts computed once per tenant and cache period
    # (:class:`_Served`), the two context variables set inline, no extra coroutine
    # unless the tenant has quotas, an IP allow list or a path to rewrite.
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" and scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(self._exempt):
            await self._platform(scope, receive, send)
            return
        header = auth = None
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        for name, value in headers:
            if name == self._header:
                header = value
            elif name == b"authorization":
                auth = value
        named: str | None = None
        for source in self._sources:
            if source == "header":
                found = header.decode("latin-1").strip().lower() if header is not None else None
            elif source == "subdomain":
                found = self._from_host(scope)
            else:
                found = self._from_path(scope)
            if found is None:
                continue
            if named is None:
                named = found
            elif found != named:
                await self._mismatch(scope, receive, send)
                return
        if auth is not None:
            scheme, _, token = auth.decode("latin-1").partition(" ")
            token = token.strip()
            if token and scheme.lower() == "bearer":
                claims = self._token_claims(scope, token)
                claimed = claims.get(self._claim) if claims is not None else None
                if isinstance(claimed, str):
                    if named is not None and claimed != named:
                        await self._mismatch(scope, receive, send)
                        return
                    if named is None or self._claim_first:
                        named = claimed
        if named is None:
            await self._unknown(scope, receive, send)
            return
        served = self._served.get(named)
        if served is None or served.expires < self._clock():
            try:
                served = await self._resolve(named)
            except StorageError:  # the registry is unreachable: fail closed, and say so
                await self._unavailable(scope, receive, send)
                return
            if served is None:
                await self._unknown(scope, receive, send)
                return
        # Inlined get_request_context: this runs on every request of a tenant.
        state = scope.get("state")
        ctx = state.get(STATE_KEY) if state else None
        if ctx is not None:
            # For the layers outside this one: tracking's rows and events, and the audit
            # access row it builds after this scope has ended.
            ctx.tenant = served.tenant_id
            if self._note is not None:
                self._note(ctx.request_id, served.tenant_id)
        if served.simple and not (self._path_source and path.startswith(self._prefix)):
            entered = SCOPE.set(served.scope)
            try:
                await self.call_app(scope, receive, send)
            finally:
                SCOPE.reset(entered)
            return
        await self._serve(served, scope, receive, send)

    async def _resolve(self, tenant_id: str) -> _Served | None:
        """The facts of an active tenant, kept for the registry's cache period."""
        tenant = await self.registry.get(tenant_id)
        if tenant is None or tenant.status != "active":
            self._served.pop(tenant_id, None)
            return None
        plan = self.section.plan(tenant.plan)
        extra = list(tenant.overrides.rate_limits)
        quota = self.quotas is not None and Quotas.active(plan, extra)
        given = tenant.overrides
        ranges = tuple(ipaddress.ip_network(r, strict=False) for r in given.allowed_ip_ranges)
        inside = given if any(getattr(given, f) for f in _ENFORCED_INSIDE) else None
        level = given.detection_level
        served = _Served(
            expires=self._clock() + self.section.cache_seconds,
            tenant_id=tenant.id,
            scope=scope_of(tenant.id),
            plan_name=tenant.plan,
            plan=plan if quota else None,
            extra=extra,
            ranges=ranges,
            overrides=inside,
            level=level,
            simple=not quota and not ranges and inside is None and level is None,
        )
        self._served[tenant_id] = served
        if len(self._served) > self.section.max_tenants:  # bounded: the oldest entry goes
            del self._served[next(iter(self._served))]
        return served

    async def _platform(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The platform's paths (its admin API, health). With the tenant header the
        # platform admin acts inside that tenant (its lockouts: /api/security/lockouts);
        # the admin routes' own key check still decides who may.
        given = self._from_header(scope)
        try:
            tenant = await self.registry.get(given) if given else None
        except StorageError:
            await self._unavailable(scope, receive, send)
            return
        acting = tenant.id if tenant is not None and tenant.status == "active" else None
        ctx = get_request_context(scope)
        if ctx is not None:
            ctx.tenant = acting
        tokens = enter(acting)
        try:
            await self.app(scope, receive, send)
        finally:
            leave(tokens)

    async def _serve(self, served: _Served, scope: Scope, receive: Receive, send: Send) -> None:
        if served.ranges:
            ctx = get_request_context(scope)
            if not _allowed(ctx.client_ip if ctx is not None else None, served.ranges):
                note_refusal(scope, "tenant_ip_not_allowed", 403, repeating=True)
                await JSONResponse(_FORBIDDEN, 403)(scope, receive, send)
                return
        tid = served.tenant_id
        if self._path_source and scope["path"].startswith(self._prefix + tid + "/"):
            # Path source: the app serves /t/<id>/rest as /rest under root_path /t/<id>.
            cut = len(self._prefix) + len(tid)
            scope = {
                **scope,
                "path": scope["path"][cut:],
                "raw_path": scope.get("raw_path", b"")[cut:] or None,
                "root_path": scope.get("root_path", "") + scope["path"][:cut],
            }
        if served.level is not None and scope["type"] == "http":
            scope[RAISED_DETECTION] = served.level
        entered = SCOPE.set(served.scope)
        held = OVERRIDES.set(served.overrides)
        try:
            quotas, plan = self.quotas, served.plan
            if quotas is None or plan is None:
                await self.app(scope, receive, send)
                return
            verdict = await quotas.acquire(tid, served.plan_name, plan, served.extra)
            if not verdict.allowed:
                note_refusal(scope, "tenant_quota_" + verdict.which, 429, repeating=True)
                body = {"detail": "tenant quota exceeded"}
                await JSONResponse(body, 429, headers=verdict.headers)(scope, receive, send)
                return
            try:
                await self.app(scope, receive, _with_headers(send, verdict.headers))
            finally:
                if verdict.holds_slot:
                    await quotas.release()
        finally:
            OVERRIDES.reset(held)
            SCOPE.reset(entered)

    async def _unknown(self, scope: Scope, receive: Receive, send: Send) -> None:
        # One answer for missing, unknown, suspended and deleted: nothing to enumerate.
        note_refusal(scope, "tenant_unknown", 404, repeating=True)
        await JSONResponse(_NOT_FOUND, 404)(scope, receive, send)

    async def _unavailable(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A 503 the client may retry, never a 500: the tenant could not be checked.
        note_refusal(scope, "tenant_registry_unavailable", 503, repeating=True)
        body = {"detail": "tenant registry unavailable"}
        await JSONResponse(body, 503, headers={"Retry-After": "5"})(scope, receive, send)

    async def _mismatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Not repeating: every cross-tenant attempt is its own audit record.
        note_refusal(scope, "tenant_mismatch", 403)
        await JSONResponse(_FORBIDDEN, 403)(scope, receive, send)


def _with_headers(send: Send, headers: dict[str, str]) -> Send:
    if not headers:
        return send

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            out = MutableHeaders(scope=message)
            for name, value in headers.items():
                out.setdefault(name, value)
        await send(message)

    return wrapped


def _allowed(ip: str | None, ranges: tuple[_Network, ...]) -> bool:
    if ip is None:
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in network for network in ranges)


def _installed_claims(scope: Scope, token: str) -> dict[str, Any] | None:
    """Verified claims by the authenticator on ``app.state`` (None: none installed,
    or the token does not verify)."""
    from pynomaly_security.auth.deps import APP_STATE_KEY
    from pynomaly_security.exceptions import InvalidToken

    app = scope.get("app")
    authenticator = getattr(getattr(app, "state", None), APP_STATE_KEY, None)
    if authenticator is None:
        return None
    try:
        claims: dict[str, Any] = authenticator.tokens.decode(token)
    except InvalidToken:
        return None
    return claims


AlertSink = Callable[[str, str], Awaitable[None]]
