"""AES-256-GCM with a random 96-bit nonce: the one place the package seals bytes.

A sealed blob is ``nonce(12) || ciphertext || tag(16)``. Every failure to open
one (short, tampered, wrong key or associated data) is one opaque
:class:`~pynomaly_security.exceptions.InvalidToken`. ``DataEncryption``'s
``pn1.a`` tokens and the audit trail's records and subject keys use it.

References:
    NIST SP 800-38D (GCM; 8.2.2 random 96-bit nonces).
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pynomaly_security.exceptions import InvalidToken

__all__ = ["AESGCM", "NONCE_SIZE", "open_sealed", "seal"]

NONCE_SIZE = 12


def seal(key: bytes | AESGCM, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt ``plaintext`` bound to ``aad`` under ``key`` (raw 32 bytes, or an
    ``AESGCM`` already built from it, which saves the key schedule)."""
    aead = key if isinstance(key, AESGCM) else AESGCM(key)
    nonce = os.urandom(NONCE_SIZE)
    return nonce + aead.encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes | AESGCM, blob: bytes, aad: bytes) -> bytes:
    """The plaintext of a :func:`seal` blob, or :class:`InvalidToken`."""
    aead = key if isinstance(key, AESGCM) else AESGCM(key)
    try:
        return aead.decrypt(blob[:NONCE_SIZE], blob[NONCE_SIZE:], aad)
    except (InvalidTag, ValueError):
        # ``from None``: which check failed is nobody's business.
        raise InvalidToken from None
