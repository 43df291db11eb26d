"""Which tenant the running code acts for, and the one encoding of it in keys.

The tenancy middleware sets :data:`SCOPE` for the duration of a request (a
``contextvars.ContextVar``, so every layer inside it, the endpoint and the tasks
it starts see it, and concurrent requests never see each other's). Code outside
a request (start-up, background tasks, the platform admin API) says explicitly
whom it acts for with :func:`tenant_scope` or :func:`platform_scope`; a scoped
store used with neither refuses (``tenancy/scoped.py``): in a tenant-enabled app
an un-namespaced key is a programming error, raised, never a silent global key.

:func:`namespace` is the only place a tenant id becomes part of a key. It is
*injective and prefix-free*: ``t<len>:<id>|`` (the length is decimal, so the
reader knows where the id ends whatever characters it holds), and ``p|`` for the
platform's own state. No pair (tenant, key) can produce the key of another pair,
even for crafted ids and user names full of ``:`` and ``|`` (django-tenants#599
and #205 are cache keys built by joining with a separator).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Final, NamedTuple

from pynomaly_security.exceptions import SecurityError

if TYPE_CHECKING:
    from pynomaly_security.tenancy.model import TenantOverrides

__all__ = [
    "OVERRIDES",
    "PLATFORM",
    "SCOPE",
    "TenantScope",
    "TenantScopeError",
    "acting_for",
    "current_namespace",
    "current_overrides",
    "current_tenant",
    "in_scope",
    "namespace",
    "narrowed",
    "platform_scope",
    "scope_of",
    "split_namespace",
    "tenant_scope",
]

PLATFORM: Final = "p|"
"""The namespace of state that belongs to no tenant (the tenant registry, the
platform admin's own lockouts): explicit, never the absence of a tenant."""


class TenantScopeError(SecurityError, RuntimeError):
    """A scoped store was used outside any tenant or platform scope: a bug in the
    caller (raised, so tests catch it), never a request's fault."""


def namespace(tenant_id: str) -> str:
    """The key prefix of ``tenant_id``: ``t<len>:<id>|`` (injective, prefix-free)."""
    return f"t{len(tenant_id)}:{tenant_id}|"


def split_namespace(key: str) -> tuple[str | None, str]:
    """The inverse of a namespaced key: ``(tenant id or None for platform, key)``.

    Raises:
        ValueError: ``key`` is not namespaced (the test of injectivity uses this).
    """
    if key.startswith(PLATFORM):
        return None, key[len(PLATFORM) :]
    head, sep, rest = key.partition(":")
    if not sep or head[:1] != "t" or not head[1:].isdigit():
        raise ValueError("not a namespaced key")
    size = int(head[1:])
    if len(rest) < size + 1 or rest[size] != "|":
        raise ValueError("not a namespaced key")
    return rest[:size], rest[size + 1 :]


class TenantScope(NamedTuple):
    """Whom the running code acts for: the tenant id (None: the platform) and its
    namespace, the key prefix the scoped store adds (computed once per scope, so the
    store's hot path is one ContextVar.get, an index and a concatenation)."""

    tenant: str | None
    ns: str


def scope_of(tenant_id: str | None) -> TenantScope:
    """The :class:`TenantScope` of ``tenant_id`` (None: the platform)."""
    return TenantScope(tenant_id, PLATFORM if tenant_id is None else namespace(tenant_id))


# One variable for both (a request sets and resets one, not two).
SCOPE: ContextVar[TenantScope | None] = ContextVar("pynomaly_tenant_scope", default=None)
"""The running scope (None: outside any: a scoped store refuses to run)."""


OVERRIDES: ContextVar[TenantOverrides | None] = ContextVar(
    "pynomaly_tenant_overrides", default=None
)
"""The running request's tenant's overrides, set by the tenancy middleware only for a
tenant that has one the stack enforces past the middleware (lockout thresholds, token
lifetimes, MFA required); None otherwise, so tenants without them pay nothing."""


def current_overrides() -> TenantOverrides | None:
    """The overrides of the running request's tenant (None: the global settings hold)."""
    return OVERRIDES.get()


def narrowed(value: int, override: int | None) -> int:
    """The stricter (lower) of a global limit and a tenant's override of it: the
    global value still holds if it was lowered live below the tenant's."""
    return value if override is None or override >= value else override


def current_tenant() -> str | None:
    """The tenant id of the running request or scope (None outside one)."""
    scope = SCOPE.get()
    return scope.tenant if scope is not None else None


def current_namespace() -> str:
    """The namespace of the running scope; :class:`TenantScopeError` outside any."""
    scope = SCOPE.get()
    if scope is None:
        raise TenantScopeError(
            "tenant-scoped state used outside a tenant: run it inside the tenancy "
            "middleware, tenant_scope(tenant_id) or platform_scope()"
        )
    return scope.ns


def enter(tenant_id: str | None) -> Token[TenantScope | None]:
    """Set the scope (None: platform); the token for :func:`leave` (middleware use)."""
    return SCOPE.set(scope_of(tenant_id))


def leave(token: Token[TenantScope | None]) -> None:
    SCOPE.reset(token)


def tenant_scope(tenant_id: str) -> contextlib.AbstractContextManager[None]:
    """Run a block as ``tenant_id`` (start-up seeding, background work for a tenant)."""
    return acting_for(tenant_id)


def platform_scope() -> contextlib.AbstractContextManager[None]:
    """Run a block as the platform (state that belongs to no tenant)."""
    return acting_for(None)


@contextlib.contextmanager
def acting_for(tenant_id: str | None) -> Iterator[None]:
    """Run a block for ``tenant_id``, or for the platform when it is None: background
    work on something a request captured (the monitor processing an event carries the
    tenant the event was made in, since its task has no request context)."""
    token = enter(tenant_id)
    try:
        yield
    finally:
        leave(token)


def in_scope() -> bool:
    """Whether the running code acts for a tenant or the platform (either was entered)."""
    return SCOPE.get() is not None
