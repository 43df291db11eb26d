"""Keys of the audit trail, all derived from the master key with HKDF.

One master key gives four purpose keys (payload encryption, subject-key
wrapping, the subject blind index, the checkpoint signing seed) so the master
key itself never touches data. Several master keys may be loaded: the first is
current (new records, new checkpoints), older ones only read history, which is
how keys rotate without rewriting records (each record stores its ``key_id``).

The primitives come from ``cryptography.hazmat`` on purpose: the design needs
AES-GCM with associated data, HKDF and Ed25519, which no recipe layer offers;
they are wrapped here once, and every decrypt failure is one opaque
:class:`InvalidToken`.

References:
    RFC 5869 (HKDF); NIST SP 800-38D (GCM, 96-bit random nonces);
    RFC 8032 (Ed25519).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pynomaly_security.exceptions import ConfigurationError, InvalidToken

__all__ = ["AuditKeys", "MasterKey", "parse_master_key"]

log = structlog.get_logger(__name__)

EPHEMERAL_KEY_EVENT = "audit_ephemeral_master_key"
_GENERATE_HINT = (
    "generate one with `python -m pynomaly_security keys generate` "
    "(32 random bytes, urlsafe base64) and set PYNOMALY_MASTER_KEY"
)
_NONCE = 12


def parse_master_key(text: str) -> bytes:
    """Decode a base64 (urlsafe or standard) master key of exactly 32 bytes."""
    raw = text.strip()
    try:
        key = base64.urlsafe_b64decode(
            raw.replace("+", "-").replace("/", "_") + "=" * (-len(raw) % 4)
        )
    except (binascii.Error, ValueError) as exc:
        raise ConfigurationError(
            f"PYNOMALY_MASTER_KEY is not valid base64; {_GENERATE_HINT}"
        ) from exc
    if len(key) != 32:
        raise ConfigurationError(
            f"PYNOMALY_MASTER_KEY must decode to 32 bytes, got {len(key)}; {_GENERATE_HINT}"
        )
    return key


def _hkdf(master: bytes, purpose: str) -> bytes:
    info = f"pynomaly-security/audit/{purpose}/v1".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)


@dataclass(frozen=True, slots=True)
class MasterKey:
    """The purpose keys of one master key."""

    key_id: str
    payload: AESGCM
    kek: AESGCM
    index: bytes
    signer: Ed25519PrivateKey
    public_key: bytes

    @classmethod
    def derive(cls, master: bytes) -> MasterKey:
        signer = Ed25519PrivateKey.from_private_bytes(_hkdf(master, "checkpoint-signing"))
        public = signer.public_key().public_bytes_raw()
        return cls(
            key_id=hashlib.sha256(_hkdf(master, "key-id")).hexdigest()[:16],
            payload=AESGCM(_hkdf(master, "payload")),
            kek=AESGCM(_hkdf(master, "subject-kek")),
            index=_hkdf(master, "subject-index"),
            signer=signer,
            public_key=public,
        )


def signing_key_id(public_key: bytes) -> str:
    return hashlib.sha256(public_key).hexdigest()[:16]


class AuditKeys:
    """The key ring of one audit trail.

    Args:
        masters: raw 32-byte master keys, current first.
    """

    def __init__(self, masters: list[bytes], *, ephemeral: bool = False) -> None:
        self.ephemeral = ephemeral
        if not masters:
            raise ConfigurationError(f"the audit trail needs a master key; {_GENERATE_HINT}")
        self._keys = [MasterKey.derive(m) for m in masters]
        self._by_id = {k.key_id: k for k in self._keys}

    @classmethod
    def from_secret(
        cls, secret: str | None, *, development_mode: bool, retired: tuple[str, ...] = ()
    ) -> AuditKeys:
        """Build the ring from ``PYNOMALY_MASTER_KEY``; in development mode only,
        a missing key becomes an ephemeral one (with a warning)."""
        if secret is None:
            if not development_mode:
                raise ConfigurationError(
                    "PYNOMALY_MASTER_KEY is not set: the audit trail encrypts records and "
                    f"signs checkpoints with keys derived from it; {_GENERATE_HINT}"
                )
            # Records written under an ephemeral key cannot be decrypted after a
            # restart; the chain and its signatures still verify.
            log.warning(EPHEMERAL_KEY_EVENT, hint=_GENERATE_HINT)
            return cls([os.urandom(32)], ephemeral=True)
        return cls([parse_master_key(secret), *(parse_master_key(r) for r in retired)])

    @property
    def current(self) -> MasterKey:
        return self._keys[0]

    @property
    def public_keys(self) -> dict[str, bytes]:
        return {signing_key_id(k.public_key): k.public_key for k in self._keys}

    def public_key_pem(self) -> bytes:
        """The current checkpoint public key as PEM (SubjectPublicKeyInfo)."""
        return self.current.signer.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def subject_refs(self, user_id: str) -> list[str]:
        """Blind-index values of a user under every loaded key (current first)."""
        return [_ref(k.index, user_id) for k in self._keys]

    def subject_ref(self, user_id: str) -> str:
        return _ref(self.current.index, user_id)

    def encrypt(self, key_id: str, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._by_id[key_id].payload.encrypt(nonce, plaintext, aad)

    def decrypt(self, key_id: str, blob: bytes, aad: bytes) -> bytes:
        key = self._by_id.get(key_id)
        if key is None:
            raise InvalidToken
        return _open(key.payload, blob, aad)

    def has_key(self, key_id: str) -> bool:
        return key_id in self._by_id

    def wrap_subject_key(self, ref: str, subject_key: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self.current.kek.encrypt(nonce, subject_key, ref.encode())

    def unwrap_subject_key(self, key_id: str, ref: str, wrapped: bytes) -> bytes:
        key = self._by_id.get(key_id)
        if key is None:
            raise InvalidToken
        return _open(key.kek, wrapped, ref.encode())


def _ref(index_key: bytes, user_id: str) -> str:
    # surrogatepass: a user id is attacker-influenced (a login name) and may hold a
    # lone surrogate, which strict UTF-8 refuses; a refusal here failed the whole
    # group commit, losing every other record in it.
    return hmac.new(
        index_key, user_id.encode("utf-8", "surrogatepass"), hashlib.sha256
    ).hexdigest()[:32]


def _open(aead: AESGCM, blob: bytes, aad: bytes) -> bytes:
    try:
        return aead.decrypt(blob[:_NONCE], blob[_NONCE:], aad)
    except (InvalidTag, ValueError) as exc:
        raise InvalidToken from exc


def seal_with(subject_key: bytes | AESGCM, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt under a subject key (raw, or an AESGCM already built from it)."""
    aead = subject_key if isinstance(subject_key, AESGCM) else AESGCM(subject_key)
    nonce = os.urandom(_NONCE)
    return nonce + aead.encrypt(nonce, plaintext, aad)


def open_with(subject_key: bytes, blob: bytes, aad: bytes) -> bytes:
    return _open(AESGCM(subject_key), blob, aad)
