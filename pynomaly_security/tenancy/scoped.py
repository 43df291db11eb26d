"""Tenant-scoped views of the storage capabilities: isolation by construction.

A component built on :class:`TenantScopedStore` (or :class:`TenantScopedState`)
cannot name a key outside the tenant it runs for: every key it passes is
prefixed with :func:`~pynomaly_security.tenancy.context.namespace` of the
running scope (``t<len>:<id>|``, injective and prefix-free), read from the
context the tenancy middleware sets per request. Outside any scope it raises
:class:`~pynomaly_security.tenancy.context.TenantScopeError`: in a
tenant-enabled app a key without a tenant is a programming error, caught by the
tests, never a shared global key. The lockout, the rate limiter, the
authenticator's sessions and TOTP claims are built on these views when tenancy
is on, with no line of theirs changed.

The cost is the point of the design: one ``ContextVar.get`` and one string
concatenation per store call (``bench/tenancy.py``); nothing when tenancy is off
(the views are not built).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from pynomaly_security.storage.base import (
    BatchCall,
    DocumentCollection,
    EntryLog,
    MonitorState,
    Store,
    Where,
)
from pynomaly_security.tenancy.context import SCOPE, current_namespace

__all__ = ["TenantScopedState", "TenantScopedStore"]


def _ns() -> str:
    scope = SCOPE.get()
    return scope.ns if scope is not None else current_namespace()  # raises TenantScopeError


class TenantScopedStore:
    """A :class:`~pynomaly_security.storage.base.Store` whose keys are the running
    tenant's (see the module docstring). ``inner`` is shared by every tenant; its
    lifecycle (start, close) stays with its owner."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner

    @property
    def shared(self) -> bool:
        return self.inner.shared

    async def start(self) -> None:
        await self.inner.start()

    async def aclose(self) -> None:
        """The inner store is the stack's: closed by it, not by a view."""

    async def healthcheck(self) -> bool:
        return await self.inner.healthcheck()

    # -- counters and windows --
    async def incr(self, key: str, ttl: float, amount: int = 1) -> int:
        return await self.inner.incr(_ns() + key, ttl, amount)

    async def get_count(self, key: str) -> int:
        return await self.inner.get_count(_ns() + key)

    async def acquire_sliding_window(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool:
        return await self.inner.acquire_sliding_window(_ns() + key, limit, expiry, amount)

    async def acquire_sliding_window_stats(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> tuple[bool, tuple[int, float, int, float]]:
        return await self.inner.acquire_sliding_window_stats(_ns() + key, limit, expiry, amount)

    async def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        return await self.inner.get_sliding_window(_ns() + key, expiry)

    async def clear_sliding_window(self, key: str, expiry: int) -> None:
        await self.inner.clear_sliding_window(_ns() + key, expiry)

    # -- key-value --
    async def put(self, key: str, value: str, ttl: float | None = None) -> None:
        await self.inner.put(_ns() + key, value, ttl)

    async def add(self, key: str, value: str, ttl: float) -> bool:
        return await self.inner.add(_ns() + key, value, ttl)

    async def get(self, key: str) -> str | None:
        return await self.inner.get(_ns() + key)

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        ns = _ns()
        return await self.inner.get_many([ns + k for k in keys])

    async def delete(self, key: str) -> bool:
        return await self.inner.delete(_ns() + key)

    async def scan(self, prefix: str, limit: int = 1000) -> list[tuple[str, str]]:
        # The namespace is prefix-free: a scan of ns + prefix sees this tenant's keys only.
        ns = _ns()
        cut = len(ns)
        return [(k[cut:], v) for k, v in await self.inner.scan(ns + prefix, limit)]

    # -- members --
    async def add_member(self, key: str, member: str, window: float) -> int:
        return await self.inner.add_member(_ns() + key, member, window)

    async def has_member(self, key: str, member: str, window: float) -> bool:
        return await self.inner.has_member(_ns() + key, member, window)

    async def batch(self, calls: Sequence[BatchCall]) -> list[Any]:
        ns = _ns()
        scoped: list[BatchCall] = []
        for name, args in calls:
            if name == "get_many":  # its first argument is a list of keys
                scoped.append((name, ([ns + k for k in args[0]], *args[1:])))
            else:  # every other BATCHABLE method takes the key first
                scoped.append((name, (ns + args[0], *args[1:])))
        return await self.inner.batch(scoped)


class _ScopedCollection:
    """One collection per tenant: its own bound, so one tenant's alerts never evict
    another's, and no query can reach across (there is no shared table to filter)."""

    def __init__(
        self, inner: MonitorState, name: str, indexed: Sequence[str], keep: int, cache: int
    ) -> None:
        self._inner, self._name, self._indexed, self._keep = inner, name, tuple(indexed), keep
        self._by_ns: OrderedDict[str, DocumentCollection] = OrderedDict()
        self._cache = cache

    def _c(self) -> DocumentCollection:
        ns = _ns()
        found = self._by_ns.get(ns)
        if found is None:
            found = self._inner.documents(ns + self._name, indexed=self._indexed, keep=self._keep)
            self._by_ns[ns] = found
            if len(self._by_ns) > self._cache:  # bounded: the least recently built goes
                self._by_ns.popitem(last=False)
        return found

    async def put(self, doc_id: str, document: Mapping[str, Any]) -> None:
        await self._c().put(doc_id, document)

    async def add(self, doc_id: str, document: Mapping[str, Any]) -> bool:
        return await self._c().add(doc_id, document)

    async def get(self, doc_id: str) -> dict[str, Any] | None:
        return await self._c().get(doc_id)

    async def update(
        self, doc_id: str, changes: Mapping[str, Any], *, only_if: Where = None
    ) -> dict[str, Any] | None:
        return await self._c().update(doc_id, changes, only_if=only_if)

    async def find(self, where: Where = None, *, limit: int = 100) -> list[dict[str, Any]]:
        return await self._c().find(where, limit=limit)

    async def count(self, where: Where = None, *, group_by: str) -> dict[Any, int]:
        return await self._c().count(where, group_by=group_by)


class _ScopedLog:
    def __init__(self, inner: EntryLog) -> None:
        self._inner = inner

    async def append(self, chunks: Sequence[tuple[str, Sequence[Any]]]) -> None:
        ns = _ns()
        await self._inner.append([(ns + stream, entries) for stream, entries in chunks])

    async def read(self, stream: str, *, limit: int | None = None) -> list[Any]:
        return await self._inner.read(_ns() + stream, limit=limit)

    async def streams(self) -> int:
        # Counted over every tenant (the bound is the family's): a figure, not data.
        return await self._inner.streams()


class TenantScopedState:
    """A :class:`~pynomaly_security.storage.base.MonitorState` whose collections, log
    streams and tallies are the running tenant's (see the module docstring).

    Args:
        inner: the shared state.
        max_tenants: collection handles kept per collection (bounded, rebuilt on use).
    """

    def __init__(self, inner: MonitorState, *, max_tenants: int = 1024) -> None:
        self.inner = inner
        self._max = max_tenants

    def documents(self, name: str, *, indexed: Sequence[str], keep: int) -> DocumentCollection:
        return _ScopedCollection(self.inner, name, indexed, keep, self._max)

    def log(self, name: str, *, max_entries: int, max_streams: int) -> EntryLog:
        # Streams are the key: one family shared, each stream named in the tenant's space.
        return _ScopedLog(self.inner.log(name, max_entries=max_entries, max_streams=max_streams))

    async def add_tallies(self, name: str, deltas: Mapping[str, int]) -> None:
        await self.inner.add_tallies(_ns() + name, deltas)

    async def tallies(self, name: str) -> dict[str, int]:
        return await self.inner.tallies(_ns() + name)
