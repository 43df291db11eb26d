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

The tenant id is then ``current_tenant()`` and ``request.state.pynomaly_security.extra["tenant"]``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pynomaly_security._context import get_request_context, note_refusal
from pynomaly_security.tenancy.context import enter, leave
from pynomaly_security.tenancy.model import Tenant
from pynomaly_security.tenancy.quotas import Quotas
from pynomaly_security.tenancy.registry import TenantRegistry
from pynomaly_security.tenancy.settings import TenancySection

__all__ = ["TENANT_KEY", "TenancyMiddleware"]

TENANT_KEY = "tenant"
"""``RequestContext.extra`` key: the request's tenant id."""

_NOT_FOUND = {"detail": "Not Found"}
_FORBIDDEN = {"detail": "Forbidden"}


class TenancyMiddleware:
    """See the module docstring.

    Args:
        registry: the tenants.
        section: ``settings.tenancy``.
        quotas: the quotas on the tenant-scoped store (None: no quotas).
        token_claims: verified claims of a bearer token, or None (default: the
            authenticator installed on ``app.state``, looked up per request).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        registry: TenantRegistry,
        section: TenancySection,
        quotas: Quotas | None = None,
        token_claims: Callable[[Scope, str], dict[str, Any] | None] | None = None,
    ) -> None:
        self.app = app
        self.registry = registry
        self.section = section
        self.quotas = quotas
        self._exempt = tuple(section.exempt_paths)
        self._header = section.header.lower().encode("latin-1")
        self._claim = section.claim
        self._suffix = "." + section.base_domain.lower() if section.base_domain else None
        self._prefix = section.path_prefix
        self._token_claims = token_claims or _installed_claims
        readers: dict[str, Callable[[Scope], str | None]] = {
            "header": self._from_header,
            "subdomain": self._from_host,
            "path": self._from_path,
        }
        # The claim source is checked separately (it costs a verification, and only
        # requests with a bearer token pay it); here it only marks its precedence.
        self._readers = [readers[s] for s in section.sources if s != "claim"]
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

    def _bearer(self, scope: Scope) -> str | None:
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                return token.strip() or None if scheme.lower() == "bearer" else None
        return None

    # -- the request -----------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if scope["path"].startswith(self._exempt):
            # The platform's paths (its admin API, health). With the tenant header the
            # platform admin acts inside that tenant (its lockouts: /api/security/lockouts);
            # the admin routes' own key check still decides who may.
            given = self._from_header(scope)
            tenant = await self.registry.get(given) if given else None
            tokens = enter(tenant.id if tenant is not None else None)
            try:
                await self.app(scope, receive, send)
            finally:
                leave(tokens)
            return
        named: str | None = None
        for read in self._readers:
            found = read(scope)
            if found is None:
                continue
            if named is None:
                named = found
            elif found != named:
                await self._mismatch(scope, receive, send)
                return
        token = self._bearer(scope)
        if token is not None:
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
        fresh, tenant = self.registry.cached(named)
        if not fresh:
            tenant = await self.registry.get(named)
        if tenant is None or tenant.status != "active":
            await self._unknown(scope, receive, send)
            return
        await self._serve(tenant, scope, receive, send)

    async def _serve(self, tenant: Tenant, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = get_request_context(scope)
        ranges = tenant.overrides.allowed_ip_ranges
        if ranges and not _allowed(ctx.client_ip if ctx is not None else None, ranges):
            note_refusal(scope, "tenant_ip_not_allowed", 403, repeating=True)
            await JSONResponse(_FORBIDDEN, 403)(scope, receive, send)
            return
        if ctx is not None:
            ctx.extra[TENANT_KEY] = tenant.id
        if self._prefix and scope["path"].startswith(self._prefix + tenant.id + "/"):
            # Path source: the app serves /t/<id>/rest as /rest under root_path /t/<id>.
            cut = len(self._prefix) + len(tenant.id)
            scope = {
                **scope,
                "path": scope["path"][cut:],
                "raw_path": scope.get("raw_path", b"")[cut:] or None,
                "root_path": scope.get("root_path", "") + scope["path"][:cut],
            }
        tokens = enter(tenant.id)
        try:
            quotas = self.quotas
            overrides = tenant.overrides.rate_limits
            plan = self.section.plan(tenant.plan)
            if quotas is None or not quotas.active(plan, overrides):
                await self.app(scope, receive, send)
                return
            verdict = await quotas.acquire(tenant.id, tenant.plan, plan, overrides)
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
            leave(tokens)

    async def _unknown(self, scope: Scope, receive: Receive, send: Send) -> None:
        # One answer for missing, unknown, suspended and deleted: nothing to enumerate.
        note_refusal(scope, "tenant_unknown", 404, repeating=True)
        await JSONResponse(_NOT_FOUND, 404)(scope, receive, send)

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


def _allowed(ip: str | None, ranges: list[str]) -> bool:
    if ip is None:
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(r, strict=False) for r in ranges)


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
