"""Users per tenant in the shared state (the example app, tests).

Users are documents of the tenant-scoped state (``TenantScopedState``: the
collections ``t<len>:<id>|users`` ...), so ``alice`` of tenant A and ``alice`` of
tenant B are two accounts, a lookup can only find the running tenant's, and every
worker of every process reads the same accounts (a session started on one worker is
known to the others; with the in-memory repository each worker had its own users).
A database-backed repository gets the same from row-level security (``tenancy/rls.py``).

A user name is claimed with an insert-if-absent (``add``) in its own collection before
the user is written: two workers signing up one name at once make one account.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Any

from pynomaly_security.auth.users import UserRecord, normalize_username
from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.storage.base import MonitorState

__all__ = ["TenantUserRepository"]


def _load(doc: dict[str, Any] | None) -> UserRecord | None:
    if doc is None:
        return None
    return UserRecord(**{**doc, "recovery_codes": tuple(doc.get("recovery_codes") or ())})


class TenantUserRepository:
    """Args:
    state: the tenant-scoped state (``stack.tenancy.state``): each call is the running
        tenant's (outside any scope: ``TenantScopeError``, never a shared account).
    max_users: per tenant (sign-up refuses beyond).
    """

    def __init__(self, state: MonitorState, *, max_users: int = 10_000) -> None:
        if max_users < 1:
            raise ConfigurationError(f"max_users must be >= 1, got {max_users}")
        self._max = max_users
        self._users = state.documents("users", indexed=(), keep=max_users)
        self._names = state.documents("usernames", indexed=(), keep=max_users)

    async def get_by_username(self, username: str) -> UserRecord | None:
        claim = await self._names.get(normalize_username(username))
        return None if claim is None else await self.get(str(claim["user_id"]))

    async def get(self, user_id: str) -> UserRecord | None:
        return _load(await self._users.get(user_id))

    async def create(self, username: str, password_hash: str) -> UserRecord | None:
        name = normalize_username(username)
        if len(await self._users.find(None, limit=self._max)) >= self._max:
            return None
        user = UserRecord(uuid.uuid4().hex, name, password_hash)
        if not await self._names.add(name, {"user_id": user.user_id}):
            return None  # taken (by another worker, maybe at this very moment)
        await self._users.put(user.user_id, asdict(user))
        return user

    async def update(self, user: UserRecord) -> None:
        if await self._users.get(user.user_id) is not None:
            await self._users.put(user.user_id, asdict(user))

    async def user_ids(self) -> list[str]:
        """The running tenant's user ids (a deletion erases them as audit subjects)."""
        return [str(doc["user_id"]) for doc in await self._users.find(None, limit=self._max)]
