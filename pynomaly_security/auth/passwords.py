"""Password hashing with Argon2id (argon2-cffi), with a constant-time miss.

An unknown user name is verified against a dummy hash made with the same
parameters, so "no such user" costs what "wrong password" costs and response
times do not enumerate accounts (OWASP Authentication Cheat Sheet,
"Authentication Responses").

References: RFC 9106 (Argon2); OWASP Password Storage Cheat Sheet (Argon2id);
NIST SP 800-63B 5.1.1.2 (length limits: at least 8, accept at least 64).
"""

from __future__ import annotations

import secrets

import argon2
from argon2.exceptions import (
    HashingError,
    InvalidHashError,
    UnsupportedParametersError,
    VerificationError,
    VerifyMismatchError,
)

from pynomaly_security.exceptions import ConfigurationError

__all__ = ["MAX_PASSWORD_LENGTH", "MIN_PASSWORD_LENGTH", "PasswordHasher"]

MIN_PASSWORD_LENGTH = 8
# Long enough for passphrases; bounded because hashing megabytes is a DoS lever.
MAX_PASSWORD_LENGTH = 1024


class PasswordHasher:
    """Hash and verify passwords.

    Args:
        time_cost, memory_cost (KiB), parallelism: Argon2id parameters; the
            defaults are argon2-cffi's (RFC 9106 low-memory profile). Tests pass
            smaller ones to stay fast.
    """

    def __init__(
        self, *, time_cost: int = 3, memory_cost: int = 65_536, parallelism: int = 4
    ) -> None:
        try:
            self._hasher = argon2.PasswordHasher(
                time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism
            )
            # Hashing once here also proves the parameters work (argon2 checks late).
            self._dummy = self._hasher.hash(secrets.token_urlsafe(32))
        except (ValueError, HashingError, UnsupportedParametersError) as exc:
            raise ConfigurationError(f"invalid Argon2 parameters: {exc}") from exc

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
