"""Users per tenant for the in-memory user repository (the example app, tests).

One :class:`~pynomaly_security.auth.users.InMemoryUserRepository` per tenant
namespace, chosen by the running scope: ``alice`` of tenant A and ``alice`` of
tenant B are two accounts, and a lookup can only find the running tenant's.
A database-backed repository gets the same from row-level security
(``tenancy/rls.py``).
"""

from __future__ import annotations

from collections import OrderedDict

from pynomaly_security.auth.users import InMemoryUserRepository, UserRecord
from pynomaly_security.tenancy.context import current_namespace

__all__ = ["TenantUserRepository"]


class TenantUserRepository:
    """Args: max_users: per tenant; max_tenants: tenants kept (least recently used go)."""

    def __init__(self, *, max_users: int = 10_000, max_tenants: int = 1_000) -> None:
        self._max_users, self._max_tenants = max_users, max_tenants
        self._by_ns: OrderedDict[str, InMemoryUserRepository] = OrderedDict()

    def _repo(self) -> InMemoryUserRepository:
        ns = current_namespace()  # outside a scope: TenantScopeError, never a shared repo
        repo = self._by_ns.get(ns)
        if repo is None:
            repo = self._by_ns[ns] = InMemoryUserRepository(max_users=self._max_users)
            while len(self._by_ns) > self._max_tenants:
                self._by_ns.popitem(last=False)
        self._by_ns.move_to_end(ns)
        return repo

    async def get_by_username(self, username: str) -> UserRecord | None:
        return await self._repo().get_by_username(username)

    async def get(self, user_id: str) -> UserRecord | None:
        return await self._repo().get(user_id)

    async def create(self, username: str, password_hash: str) -> UserRecord | None:
        return await self._repo().create(username, password_hash)

    async def update(self, user: UserRecord) -> None:
        await self._repo().update(user)

    def user_ids(self) -> list[str]:
        """The running tenant's user ids (a deletion erases them as audit subjects)."""
        return list(self._repo()._by_id)
