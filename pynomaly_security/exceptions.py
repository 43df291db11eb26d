"""Exceptions raised by pynomaly_security.

The hierarchy::

    SecurityError
    ├── ConfigurationError (also ValueError)   bad settings, raised at construction
    ├── StorageError                           a backend failed (driver errors wrapped)
    ├── InvalidToken                           any decrypt / token verification failure
    ├── AuthenticationError                    credentials refused
    └── AuditIntegrityError                    the audit chain does not verify

HTTP-facing failures are answered as responses by the middlewares or as
``HTTPException`` by the router; these exceptions never escape to the client.
"""

from __future__ import annotations

__all__ = [
    "AuditIntegrityError",
    "AuthenticationError",
    "ConfigurationError",
    "InvalidToken",
    "SecurityError",
    "StorageError",
]


class SecurityError(Exception):
    """Base class of every exception this library raises."""


class ConfigurationError(SecurityError, ValueError):
    """A setting or constructor argument is invalid; raised before serving."""


class StorageError(SecurityError):
    """A storage backend failed; the driver's exception is the ``__cause__``."""


class InvalidToken(SecurityError):
    """A ciphertext or token failed to decrypt or verify.

    Deliberately opaque (like ``cryptography.fernet.InvalidToken``): the reason
    is never revealed, so callers cannot be used as a decryption oracle.
    """


class AuthenticationError(SecurityError):
    """Credentials, a second factor or a session token were refused."""


class AuditIntegrityError(SecurityError):
    """The audit trail failed verification."""
