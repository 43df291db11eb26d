"""User records and where they are kept.

The host application usually has its own user table; it implements
:class:`UserRepository` over it. :class:`InMemoryUserRepository` serves the
example app and tests (one process; bounded like every map here).
"""

from __future__ import annotations

import time
import unicodedata
import uuid
from dataclasses import dataclass, field, replace
from typing import Protocol

from pynomaly_security.exceptions import ConfigurationError

__all__ = ["InMemoryUserRepository", "UserRecord", "UserRepository", "normalize_username"]


def normalize_username(username: str) -> str:
    """NFKC + casefold + strip: ``Alice``, ``alice`` and a full-width ``alice``
    are one account (and one lockout key), so case tricks cannot dodge a lock."""
    return unicodedata.normalize("NFKC", username).casefold().strip()


@dataclass(frozen=True, slots=True)
class UserRecord:
    """What authentication needs to know about a user; secrets only in stored forms.

    ``repr()`` leaves out every secret (hash, TOTP secrets, recovery digests):
    records end up in tracebacks, debug logs and error reports. It shows
    ``mfa_enabled`` instead.
    """

    user_id: str
    username: str
    password_hash: str = field(repr=False)
    totp_secret: str | None = field(default=None, repr=False)
    """Fernet token of the confirmed TOTP secret (None: MFA not enrolled)."""
    totp_pending: str | None = field(default=None, repr=False)
    """Fernet token of a secret enrolled but not yet confirmed with a code."""
    recovery_codes: tuple[str, ...] = field(default=(), repr=False)
    """Keyed digests of the unused recovery codes."""
    created_at: float = field(default_factory=time.time)
    disabled: bool = False

    @property
    def mfa_enabled(self) -> bool:
        return self.totp_secret is not None

    def __repr__(self) -> str:
        return (
            f"UserRecord(user_id={self.user_id!r}, username={self.username!r}, "
            f"mfa_enabled={self.mfa_enabled}, disabled={self.disabled}, secrets=<redacted>)"
        )

    def but(self, **changes: object) -> UserRecord:
        return replace(self, **changes)  # type: ignore[arg-type]


class UserRepository(Protocol):
    async def get_by_username(self, username: str) -> UserRecord | None:
        """The user with this (normalized) name, or None."""
        ...

    async def get(self, user_id: str) -> UserRecord | None:
        """The user with this id, or None."""
        ...

    async def create(self, username: str, password_hash: str) -> UserRecord | None:
        """A new user; None if the name is taken."""
        ...

    async def update(self, user: UserRecord) -> None:
        """Replace the stored record of ``user.user_id``."""
        ...


class InMemoryUserRepository:
    """Users in a dict, at most ``max_users`` of them (sign-up refuses beyond)."""

    def __init__(self, *, max_users: int = 100_000) -> None:
        if max_users < 1:
            raise ConfigurationError(f"max_users must be >= 1, got {max_users}")
        self._max = max_users
        self._by_id: dict[str, UserRecord] = {}
        self._by_name: dict[str, str] = {}

    async def get_by_username(self, username: str) -> UserRecord | None:
        user_id = self._by_name.get(normalize_username(username))
        return self._by_id.get(user_id) if user_id is not None else None

    async def get(self, user_id: str) -> UserRecord | None:
        return self._by_id.get(user_id)

    async def create(self, username: str, password_hash: str) -> UserRecord | None:
        name = normalize_username(username)
        if name in self._by_name or len(self._by_id) >= self._max:
            return None
        user = UserRecord(uuid.uuid4().hex, name, password_hash)
        self._by_id[user.user_id] = user
        self._by_name[name] = user.user_id
        return user

    async def update(self, user: UserRecord) -> None:
        if user.user_id in self._by_id:
            self._by_id[user.user_id] = user

    def records(self) -> list[UserRecord]:
        """Every user (a snapshot): what the compliance validator counts for MFA."""
        return list(self._by_id.values())
