"""Token vault backends, selected by URL (``create_token_vault``)."""

from __future__ import annotations

import importlib

from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.protection.vault.base import TokenVault, VaultEntry

__all__ = ["TokenVault", "VaultEntry", "create_token_vault"]

# Imported lazily so the Redis/PostgreSQL drivers load only when used.
_BACKENDS = {
    "sqlite": "pynomaly_security.protection.vault.sqlite:SQLiteTokenVault",
    "redis": "pynomaly_security.protection.vault.redis:RedisTokenVault",
    "rediss": "pynomaly_security.protection.vault.redis:RedisTokenVault",
    "postgresql": "pynomaly_security.protection.vault.postgres:PostgresTokenVault",
    "postgres": "pynomaly_security.protection.vault.postgres:PostgresTokenVault",
}


def create_token_vault(url: str) -> TokenVault:
    """Build the vault for ``sqlite:///path``, ``redis://...`` or ``postgresql://...``."""
    scheme = url.split(":", 1)[0].lower()
    target = _BACKENDS.get(scheme)
    if target is None:
        raise ConfigurationError(
            f"unknown token vault scheme {scheme!r}; expected one of {sorted(_BACKENDS)}"
        )
    module_name, class_name = target.split(":")
    vault: TokenVault = getattr(importlib.import_module(module_name), class_name).from_url(url)
    return vault
