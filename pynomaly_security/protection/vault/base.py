"""The token vault Protocol: where tokens map to encrypted originals.

The vault never sees plaintext: it stores the ciphertext of each original
(bound to its token) and, for deterministic tokens, a keyed fingerprint. A
dump of the vault is useless without the master key.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from pynomaly_security.exceptions import ConfigurationError

__all__ = ["TokenVault", "VaultEntry", "check_table"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def check_table(table: str) -> str:
    """``table`` if it is a plain SQL identifier (it is formatted into statements)."""
    if not _IDENT.match(table):
        raise ConfigurationError(f"token vault table must be a plain identifier, got {table!r}")
    return table


@dataclass(frozen=True, slots=True)
class VaultEntry:
    token: str
    ciphertext: str
    fingerprint: str | None


class TokenVault(Protocol):
    """Storage for tokens; every backend wraps driver errors as ``StorageError``."""

    async def put(self, token: str, ciphertext: str, fingerprint: str | None = None) -> str | None:
        """Store a new token; return the token bound to ``fingerprint`` if one exists
        already, ``token`` when stored, ``None`` when ``token`` is taken."""

    async def find(self, fingerprint: str) -> str | None:
        """The token stored under ``fingerprint``, if any."""

    async def get(self, token: str) -> str | None:
        """The ciphertext stored for ``token``, if any."""

    async def delete(self, token: str) -> bool:
        """Remove ``token`` (and its fingerprint); whether it existed."""

    async def replace(
        self, token: str, old_ciphertext: str, ciphertext: str, fingerprint: str | None
    ) -> bool:
        """Compare-and-set: rewrite an entry only if it still holds ``old_ciphertext``."""

    def entries(self, batch_size: int) -> AsyncIterator[list[VaultEntry]]:
        """Every entry, in batches (for key rotation)."""

    async def aclose(self) -> None:
        """Release connections."""
