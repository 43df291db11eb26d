"""The token vault: its Protocol (``base.py``) and its storage per backend.

A vault is a capability of a storage backend, built by the registry from
``TOKEN_VAULT_URL``: ``StorageRegistry.token_vault("sqlite:///...")``,
``...("redis://...")`` or ``...("postgresql://...")`` (see ``pynomaly_security.storage``).
"""

from __future__ import annotations

from pynomaly_security.protection.vault.base import TokenVault, VaultEntry

__all__ = ["TokenVault", "VaultEntry"]
