"""What the audit trail takes from the key ring: record keys, subject keys, signing.

Every key here is a purpose key of :class:`~pynomaly_security.crypto.keys.KeyRing`
(``audit-records``, ``audit-subject-kek``, ``audit-subject-index``,
``audit-signing``; see its ``PURPOSES`` table); this module derives nothing and
parses no master key. Those purposes rotate with the master key: each record
stores the id of the master key it was sealed under (``KeyRing.master_ids``),
a new master key writes new records, and retired master keys
(``PYNOMALY_SECURITY__RETIRED_MASTER_KEYS``) still read history.

Per-subject keys are random (never derived): destroying one is what
crypto-shreds its subject, and a derived key could be derived again. They are
stored wrapped under the ``audit-subject-kek`` key.

References:
    RFC 8032 (Ed25519); NIST SP 800-38D (GCM).
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pynomaly_security.crypto.aead import AESGCM, open_sealed, seal
from pynomaly_security.crypto.keys import KeyRing
from pynomaly_security.exceptions import InvalidToken

__all__ = ["AuditKeys", "signing_key_id"]


def signing_key_id(public_key: bytes) -> str:
    """The id a checkpoint names its Ed25519 public key by."""
    return hashlib.sha256(public_key).hexdigest()[:16]


class AuditKeys:
    """The audit trail's view of the key ring.

    Args:
        ring: the key ring (current master key first, retired ones read only).
    """

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring
        masters = ring.masters
        # A handful of master keys: built once, so sealing pays no key schedule.
        self._records = [AESGCM(ring.key("audit-records", master=m)) for m in masters]
        self._kek = [AESGCM(ring.key("audit-subject-kek", master=m)) for m in masters]
        self._signer = Ed25519PrivateKey.from_private_bytes(ring.key("audit-signing"))
        self.signing_key_id = signing_key_id(self._signer.public_key().public_bytes_raw())

    @property
    def ephemeral(self) -> bool:
        """The master key is a development throw-away (history of earlier runs is unreadable)."""
        return self.ring.ephemeral

    @property
    def key_id(self) -> str:
        """The id of the current master key, stored with every new record."""
        return self.ring.master_ids[0]

    @property
    def public_keys(self) -> dict[str, bytes]:
        """Checkpoint public keys of every loaded master key, by signing key id."""
        out: dict[str, bytes] = {}
        for m in self.ring.masters:
            seed = self.ring.key("audit-signing", master=m)
            public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
            out[signing_key_id(public)] = public
        return out

    def public_key_pem(self) -> bytes:
        """The current checkpoint public key as PEM (SubjectPublicKeyInfo)."""
        return self._signer.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, message: bytes) -> bytes:
        """Sign a checkpoint with the current master key's signing key."""
        return self._signer.sign(message)

    def subject_refs(self, user_id: str) -> list[str]:
        """Blind-index values of a user under every loaded master key (current first)."""
        return [self._ref(m, user_id) for m in self.ring.masters]

    def subject_ref(self, user_id: str) -> str:
        return self._ref(0, user_id)

    def _ref(self, master: int, user_id: str) -> str:
        key = self.ring.key("audit-subject-index", master=master)
        # surrogatepass: a user id is attacker-influenced (a login name) and may hold a
        # lone surrogate, which strict UTF-8 refuses; a refusal here failed the whole
        # group commit, losing every other record in it.
        return hmac.new(key, user_id.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[
            :32
        ]

    def has_key(self, key_id: str) -> bool:
        """Whether records sealed under master key ``key_id`` can be read."""
        return self.ring.master_index(key_id) is not None

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        """Seal a record payload under the current master key (:attr:`key_id`)."""
        return seal(self._records[0], plaintext, aad)

    def decrypt(self, key_id: str, blob: bytes, aad: bytes) -> bytes:
        """Open a record payload sealed under master key ``key_id`` (``InvalidToken``)."""
        master = self.ring.master_index(key_id)
        if master is None:
            raise InvalidToken
        return open_sealed(self._records[master], blob, aad)

    def wrap_subject_key(self, ref: str, subject_key: bytes) -> bytes:
        """Wrap a random subject key under the current master key, bound to its ref."""
        return seal(self._kek[0], subject_key, ref.encode())

    def unwrap_subject_key(self, key_id: str, ref: str, wrapped: bytes) -> bytes:
        """A subject key wrapped under master key ``key_id`` (``InvalidToken``)."""
        master = self.ring.master_index(key_id)
        if master is None:
            raise InvalidToken
        return open_sealed(self._kek[master], wrapped, ref.encode())
