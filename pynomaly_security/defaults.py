"""The process's default objects, for the integration guide's no-argument calls.

``DataEncryption()``, ``AuditLogger()``, and ``@audit_action`` / ``audit_context``
without a logger, read :class:`SecuritySettings` from the environment once and share
one key ring: in development mode without ``PYNOMALY_MASTER_KEY`` they then share one
throw-away key (two rings would make each other's data unreadable), and outside it the
missing key is the usual :class:`ConfigurationError`. The first ``AuditLogger()`` is the
default audit logger; a decorator or context without one uses it (or builds it).

Nothing inside the package uses these: ``setup_security_middleware`` builds its own
objects from its settings and passes them explicitly, so several apps (or tests) in
one process never share state through here. :func:`reset` forgets the defaults, for
tests and for an application that changed its environment.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from pynomaly_security.crypto.keys import KeyRing
from pynomaly_security.settings import SecuritySettings, load_settings

if TYPE_CHECKING:
    from pynomaly_security.audit.logger import AuditLogger

__all__ = ["audit_logger", "keyring", "reset", "settings"]


class _Defaults:
    """One holder, so the module has a single (locked) piece of state."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.settings: SecuritySettings | None = None
        self.keyring: KeyRing | None = None
        self.audit_logger: AuditLogger | None = None


_DEFAULTS = _Defaults()


def settings() -> SecuritySettings:
    """The settings from the environment (and ``PYNOMALY_SECURITY_CONFIG``), read once."""
    with _DEFAULTS.lock:
        if _DEFAULTS.settings is None:
            _DEFAULTS.settings = load_settings()
        return _DEFAULTS.settings


def keyring() -> KeyRing:
    """The key ring of :func:`settings`, built once (raises ``ConfigurationError`` without
    a master key outside development mode, and then builds nothing)."""
    with _DEFAULTS.lock:
        if _DEFAULTS.keyring is None:
            _DEFAULTS.keyring = KeyRing.from_settings(settings())
        return _DEFAULTS.keyring


def audit_logger() -> AuditLogger:
    """The default audit logger: the first ``AuditLogger()``, else one built now."""
    with _DEFAULTS.lock:
        if _DEFAULTS.audit_logger is None:
            from pynomaly_security.audit.logger import AuditLogger

            _DEFAULTS.audit_logger = AuditLogger()
        return _DEFAULTS.audit_logger


def adopt_audit_logger(logger: AuditLogger) -> None:
    """Called by ``AuditLogger()``: the first one built without arguments is the default."""
    with _DEFAULTS.lock:
        if _DEFAULTS.audit_logger is None:
            _DEFAULTS.audit_logger = logger


def reset() -> None:
    """Forget the defaults; the default audit logger is closed first (what it queued is
    committed and the trail's tail signed)."""
    with _DEFAULTS.lock:
        logger, _DEFAULTS.audit_logger = _DEFAULTS.audit_logger, None
        _DEFAULTS.settings = _DEFAULTS.keyring = None
    if logger is not None:
        logger.close()
