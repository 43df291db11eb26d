"""Password hashing with Argon2id (argon2-cffi), with a constant-time miss.

An unknown user name is verified against a dummy hash made with the same
parameters, so "no such user" costs what "wrong password" costs and response
times do not enumerate accounts (OWASP Authentication Cheat Sheet,
"Authentication Responses").

Argon2 costs tens of milliseconds of CPU and 64 MiB per hash; run on the event
loop, a handful of concurrent logins stalls every other request (issue 12, item 8).
The async methods (:meth:`PasswordHasher.averify`, :meth:`PasswordHasher.ahash`)
run it in a small thread pool of the hasher's own (argon2-cffi releases the GIL
while hashing), with a bound on the hashes running (``max_concurrent``) and on
those waiting for a thread (``max_waiting``, each for at most ``wait_timeout``
seconds). Beyond that they raise :class:`HashingBusy` at once, which the router
answers with ``503`` and ``Retry-After``: a flood of logins gets quick refusals
instead of a queue that grows without bound.

References: RFC 9106 (Argon2); OWASP Password Storage Cheat Sheet (Argon2id);
NIST SP 800-63B 5.1.1.2 (length limits: at least 8, accept at least 64).
"""

from __future__ import annotations

import asyncio
import math
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

import argon2
from argon2.exceptions import (
    HashingError,
    InvalidHashError,
    UnsupportedParametersError,
    VerificationError,
    VerifyMismatchError,
)

from pynomaly_security.exceptions import AuthenticationError, ConfigurationError

if TYPE_CHECKING:
    from pynomaly_security.settings import SecuritySettings

__all__ = ["MAX_PASSWORD_LENGTH", "MIN_PASSWORD_LENGTH", "HashingBusy", "PasswordHasher"]

_T = TypeVar("_T")

MIN_PASSWORD_LENGTH = 8
# Long enough for passphrases; bounded because hashing megabytes is a DoS lever.
MAX_PASSWORD_LENGTH = 1024


class HashingBusy(AuthenticationError):
    """Every hashing thread is busy and the wait is full or took too long (503)."""

    def __init__(self, retry_after: int = 1) -> None:
        super().__init__("password hashing busy")
        self.retry_after = retry_after


class PasswordHasher:
    """Hash and verify passwords.

    Args:
        time_cost, memory_cost (KiB), parallelism: Argon2id parameters; the
            defaults are argon2-cffi's (RFC 9106 low-memory profile). Tests pass
            smaller ones to stay fast.
        max_concurrent: hashes running at once in the hasher's threads (each
            holds ``memory_cost`` KiB while it runs).
        max_waiting: hashes that may wait for a thread; more raise :class:`HashingBusy`.
        wait_timeout: a hash that waited longer than this (seconds) for a thread
            is not run and raises :class:`HashingBusy`.
    """

    def __init__(
        self,
        *,
        time_cost: int = 3,
        memory_cost: int = 65_536,
        parallelism: int = 4,
        max_concurrent: int = 2,
        max_waiting: int = 16,
        wait_timeout: float = 2.0,
    ) -> None:
        if max_concurrent < 1 or max_waiting < 0 or not wait_timeout > 0:
            raise ConfigurationError(
                "password hashing needs max_concurrent >= 1, max_waiting >= 0 and "
                f"wait_timeout > 0 (got {max_concurrent}, {max_waiting}, {wait_timeout})"
            )
        self.max_concurrent = max_concurrent
        self.max_waiting = max_waiting
        self.wait_timeout = wait_timeout
        self._admitted = 0  # running + waiting, across event loops (a lock guards it)
        self._count_lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        try:
            self._hasher = argon2.PasswordHasher(
                time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism
            )
            # Hashing once here also proves the parameters work (argon2 checks late).
            self._dummy = self._hasher.hash(secrets.token_urlsafe(32))
        except (ValueError, HashingError, UnsupportedParametersError) as exc:
            raise ConfigurationError(f"invalid Argon2 parameters: {exc}") from exc

    @classmethod
    def from_settings(cls, settings: SecuritySettings) -> PasswordHasher:
        """A hasher with argon2-cffi's default cost and the settings' pool bounds."""
        return cls(
            max_concurrent=settings.password_hash_concurrency,
            max_waiting=settings.password_hash_queue,
            wait_timeout=settings.password_hash_wait,
        )

    @property
    def busy(self) -> int:
        """Hashes running or waiting for a thread right now."""
        return self._admitted

    async def _in_pool(self, fn: Callable[..., _T], *args: object) -> _T:
        """``fn(*args)`` in a hashing thread, within the bounds, or HashingBusy."""
        with self._count_lock:
            if self._admitted >= self.max_concurrent + self.max_waiting:
                raise HashingBusy(max(1, math.ceil(self.wait_timeout)))
            self._admitted += 1
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    self.max_concurrent, thread_name_prefix="pynomaly-argon2"
                )
            executor = self._executor
        # The executor has max_concurrent threads: at most that many hashes run; the
        # rest wait in its queue, which the admission count bounds. The count drops
        # when the thread is done with the hash (or the hash is cancelled while
        # queued), not when the caller stops waiting: a disconnected client's hash
        # still holds its place until it really ends.
        future = executor.submit(self._run_unless_stale, time.monotonic(), fn, args)
        future.add_done_callback(self._release)
        return await asyncio.wrap_future(future)

    def _release(self, _future: object) -> None:
        with self._count_lock:
            self._admitted -= 1

    def _run_unless_stale(
        self, queued: float, fn: Callable[..., _T], args: tuple[object, ...]
    ) -> _T:
        # A hash that waited longer than wait_timeout is not run: its client has
        # likely given up, and running it would only lengthen the queue behind.
        if time.monotonic() - queued > self.wait_timeout:
            raise HashingBusy(max(1, math.ceil(self.wait_timeout)))
        return fn(*args)

    async def averify(self, stored_hash: str | None, password: str) -> bool:
        """:meth:`verify` in the hashing pool (raises :class:`HashingBusy` when full)."""
        return await self._in_pool(self.verify, stored_hash, password)

    async def ahash(self, password: str) -> str:
        """:meth:`hash` in the hashing pool (raises :class:`HashingBusy` when full)."""
        return await self._in_pool(self.hash, password)

    def close(self) -> None:
        """Stop the hashing threads (new calls start them again)."""
        with self._count_lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def check_policy(self, password: str) -> str | None:
        """Why ``password`` is unacceptable for a new account, or None."""
        if len(password) < MIN_PASSWORD_LENGTH:
            return f"password must be at least {MIN_PASSWORD_LENGTH} characters"
        if len(password) > MAX_PASSWORD_LENGTH:
            return f"password must be at most {MAX_PASSWORD_LENGTH} characters"
        return None

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches; ``stored_hash`` None (unknown user) costs
        the same and is always False."""
        too_long = len(password) > MAX_PASSWORD_LENGTH
        if too_long:
            # Never a valid password: spend the usual time on the dummy, bounded input.
            stored_hash, password = None, password[:MAX_PASSWORD_LENGTH]
        target = stored_hash if stored_hash is not None else self._dummy
        try:
            matched = self._hasher.verify(target, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return matched and stored_hash is not None

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when the hash was made with weaker parameters than today's."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True
