"""The tenant registry: tenants as documents in the platform's part of ``state()``.

Every worker reads the same registry (``STATE_URL``: SQLite, PostgreSQL, Redis; or
the shared store), keeping a bounded copy of each tenant for ``cache_seconds`` so
the request path pays a dict lookup, not a round trip; a suspension reaches every
worker within that time. Unknown ids are remembered too (as absent), so a flood
of made-up tenant ids costs one store read per id and period, within the bound.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from pynomaly_security.storage.base import MonitorState
from pynomaly_security.tenancy.context import PLATFORM
from pynomaly_security.tenancy.model import Tenant, valid_tenant_id

__all__ = ["TenantRegistry", "hash_admin_key"]

_COLLECTION = PLATFORM + "tenants"


def hash_admin_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class TenantRegistry:
    """Tenants by id (create, read, update, delete), cached per worker.

    Args:
        state: the shared state (its platform namespace holds the registry).
        cache_seconds: how long a worker trusts its copy of a tenant.
        max_cached: tenants (and unknown ids) kept in memory.
        max_tenants: tenants the registry accepts in all.
    """

    def __init__(
        self,
        state: MonitorState,
        *,
        cache_seconds: float = 2.0,
        max_cached: int = 10_000,
        max_tenants: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._docs = state.documents(_COLLECTION, indexed=("status",), keep=max_tenants)
        self._ttl = cache_seconds
        self._max = max_cached
        self._clock = clock
        self._cache: OrderedDict[str, tuple[float, Tenant | None]] = OrderedDict()
        self.on_change: list[Callable[[str], object]] = []
        """Called with a tenant id this worker changed (the tenancy layer drops its copy,
        so a suspension or deletion holds at once here, within ``cache_seconds`` elsewhere)."""

    def cached(self, tenant_id: str) -> tuple[bool, Tenant | None]:
        """(fresh, tenant) from this worker's copy: the request path's first try."""
        hit = self._cache.get(tenant_id)
        if hit is not None and hit[0] > self._clock():
            return True, hit[1]
        return False, None

    async def get(self, tenant_id: str) -> Tenant | None:
        """The tenant, or None (unknown or malformed id), from the cache when fresh."""
        fresh, tenant = self.cached(tenant_id)
        if fresh:
            return tenant
        if not valid_tenant_id(tenant_id):
            return None  # never a store read, never cached: made-up ids cost nothing
        doc = await self._docs.get(tenant_id)
        live = doc is not None and doc.get("status") != "deleted"
        tenant = Tenant.model_validate(doc) if live else None
        self._remember(tenant_id, tenant)
        return tenant

    def _remember(self, tenant_id: str, tenant: Tenant | None) -> None:
        for forget in self.on_change:
            forget(tenant_id)
        self._cache[tenant_id] = (self._clock() + self._ttl, tenant)
        self._cache.move_to_end(tenant_id)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)

    async def create(self, tenant: Tenant) -> tuple[Tenant, str] | None:
        """Add ``tenant`` with a new tenant admin key; (tenant, key shown once), or
        None when the id is taken (atomic: of two creators one wins)."""
        key = secrets.token_urlsafe(32)
        stored = tenant.model_copy(
            update={"admin_key_hash": hash_admin_key(key), "created": time.time()}
        )
        if not await self._docs.add(tenant.id, stored.model_dump()):
            return None
        self._remember(tenant.id, stored)
        return stored, key

    async def update(self, tenant_id: str, **changes: Any) -> Tenant | None:
        current = await self._docs.get(tenant_id)
        if current is None:
            return None
        merged = Tenant.model_validate({**current, **changes})
        await self._docs.put(tenant_id, merged.model_dump())
        self._remember(tenant_id, merged)
        return merged

    async def delete(self, tenant_id: str) -> bool:
        """Forget the tenant: its record becomes a tombstone the registry reads as
        absent (the documents API has no delete). The id is never given out again: a
        new tenant under an old id could meet what is left of the old one's state."""
        current = await self._docs.get(tenant_id)
        if current is None or current.get("status") == "deleted":
            return False
        await self._docs.put(tenant_id, {"id": tenant_id, "status": "deleted"})
        self._remember(tenant_id, None)
        return True

    async def all(self, *, limit: int = 1000) -> list[Tenant]:
        out = []
        for status in ("active", "suspended"):
            found = await self._docs.find({"status": status}, limit=limit)
            out += [Tenant.model_validate(d) for d in found]
        return sorted(out, key=lambda t: t.id)

    async def admin_of(self, tenant_id: str, presented: str) -> bool:
        """Whether ``presented`` is the admin key of ``tenant_id`` (constant-time)."""
        tenant = await self.get(tenant_id)
        if tenant is None or tenant.admin_key_hash is None:
            return False
        return hmac.compare_digest(hash_admin_key(presented), tenant.admin_key_hash)
