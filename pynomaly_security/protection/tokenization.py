"""Tokenization: replace a value by a random look-alike, kept in a token vault.

A token keeps the *shape* of the original (digits stay digits, letters stay
letters of the same case, separators stay) so it fits existing columns and
validators, but it is random (``secrets``), not derived from the value. Card
numbers keep their last four digits (PCI DSS 3.4 allows showing them) and the
token is forced to *fail* the Luhn check so it can never be mistaken for a real
card. Values with fewer than 6 randomisable characters get an opaque
``tok_...`` token instead (a 4-digit token space would collide and be guessable).

Detokenizing needs the key: the vault holds only the original's ciphertext
(purpose ``tokens``, bound to its token). Deterministic tokens (same value ->
same token, for joins) are found by a keyed HMAC fingerprint of the value.

References:
    PCI SSC "Tokenization Product Security Guidelines" (2015); PCI DSS 3.4.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from collections import Counter

from pynomaly_security.crypto.encryption import DataEncryption, EncryptionContext
from pynomaly_security.crypto.rotation import RotationReport
from pynomaly_security.exceptions import InvalidToken, StorageError
from pynomaly_security.protection._validators import luhn_valid
from pynomaly_security.protection.vault.base import TokenVault

__all__ = ["Tokenizer"]

_MIN_RANDOM_CHARS = 6
_ATTEMPTS = 16


def _context(token: str) -> EncryptionContext:
    return EncryptionContext("token_vault", "value", token)


class Tokenizer:
    """Tokenize and detokenize values through a :class:`TokenVault`.

    Args:
        vault: where tokens live (``StorageRegistry.token_vault(settings.token_vault_url)``).
        encryption: a :class:`DataEncryption` built with ``purpose="tokens"``.
    """

    def __init__(self, vault: TokenVault, encryption: DataEncryption) -> None:
        self.vault = vault
        self.encryption = encryption

    def fingerprint(self, value: str, version: int | None = None, *, master: int = 0) -> str:
        """Keyed HMAC of ``value`` (purpose ``token-fingerprint``) for deterministic tokens."""
        ring = self.encryption.keyring
        version = ring.current_version if version is None else version
        key = ring.key("token-fingerprint", version, master=master)
        return f"{version}:" + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def shape_token(value: str) -> str:
        """A random token with the shape of ``value`` (see the module docstring)."""
        randomisable = [i for i, ch in enumerate(value) if ch.isascii() and ch.isalnum()]
        if len(randomisable) < _MIN_RANDOM_CHARS:
            return "tok_" + secrets.token_urlsafe(16)
        digits = "".join(value[i] for i in randomisable)
        is_card = digits.isdigit() and 12 <= len(digits) <= 19 and luhn_valid(digits)
        keep = set(randomisable[-4:]) if is_card else set()
        out = list(value)
        for i in randomisable:
            if i in keep:
                continue
            ch = value[i]
            pool = (
                string.digits
                if ch.isdigit()
                else string.ascii_lowercase
                if ch.islower()
                else string.ascii_uppercase
            )
            out[i] = secrets.choice(pool)
        if is_card:
            token_digits = "".join(out[i] for i in randomisable)
            if luhn_valid(token_digits):
                # Change the first free digit by one: the Luhn sum then moves by 1-9.
                first = randomisable[0]
                out[first] = str((int(out[first]) + 1) % 10)
        return "".join(out)

    async def tokenize(self, value: str, *, deterministic: bool = False) -> str:
        """Store ``value`` and return its token.

        Args:
            deterministic: return the same token for the same value (lets
                tokenized columns be joined, but reveals equal values).

        Raises:
            StorageError: the vault failed, or no free token was found.
        """
        fingerprint = self.fingerprint(value) if deterministic else None
        if deterministic:
            # Tokens stored before a key rotation (or a master-key change) carry
            # an older fingerprint.
            ring = self.encryption.keyring
            for version in reversed(ring.versions):
                for master in ring.masters:
                    fingerprint_then = self.fingerprint(value, version, master=master)
                    existing = await self.vault.find(fingerprint_then)
                    if existing is not None:
                        return existing
        for _ in range(_ATTEMPTS):
            token = self.shape_token(value)
            ciphertext = self.encryption.encrypt(value.encode(), context=_context(token))
            stored = await self.vault.put(token, ciphertext, fingerprint)
            if stored is not None:
                return stored
        raise StorageError("no free token found for this value shape; the token space is full")

    async def detokenize(self, token: str) -> str:
        """The original value of ``token``.

        Raises:
            InvalidToken: unknown token, or its entry does not decrypt.
        """
        ciphertext = await self.vault.get(token)
        if ciphertext is None:
            raise InvalidToken
        return self.encryption.decrypt(ciphertext, context=_context(token)).decode()

    async def delete(self, token: str) -> bool:
        """Forget ``token`` (for erasure requests); whether it existed."""
        return await self.vault.delete(token)

    async def key_versions(self, *, batch_size: int = 500) -> Counter[int]:
        """How many vault entries use each key version (``0``: malformed)."""
        counts: Counter[int] = Counter()
        async for batch in self.vault.entries(batch_size):
            for entry in batch:
                try:
                    counts[self.encryption.key_id(entry.ciphertext)] += 1
                except InvalidToken:
                    counts[0] += 1
        return counts

    async def rotate(self, *, batch_size: int = 500) -> RotationReport:
        """Re-encrypt vault entries (and fingerprints) written with an older key.

        Compare-and-set per entry: an entry changed concurrently is counted as a
        conflict and left to the writer.
        """
        report = RotationReport()
        current = self.encryption.keyring.current_version
        retired = len(self.encryption.keyring.masters) > 1
        async for batch in self.vault.entries(batch_size):
            report.batches += 1
            for entry in batch:
                report.scanned += 1
                fp_stale = entry.fingerprint is not None and not entry.fingerprint.startswith(
                    f"{current}:"
                )
                # Only a retired master key makes a current-version entry stale;
                # without one the header says it all, nothing is decrypted.
                if not (retired or self.encryption.needs_rotation(entry.ciphertext) or fp_stale):
                    continue
                plain, stale = self.encryption.open(entry.ciphertext, context=_context(entry.token))
                if not (stale or fp_stale):
                    continue
                new_ct = self.encryption.encrypt(plain, context=_context(entry.token))
                new_fp = self.fingerprint(plain.decode()) if entry.fingerprint else None
                if await self.vault.replace(entry.token, entry.ciphertext, new_ct, new_fp):
                    report.rotated += 1
                else:
                    report.conflicts += 1
        return report
