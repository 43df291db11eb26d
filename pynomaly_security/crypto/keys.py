"""The key ring: every key of the package, derived from ``PYNOMALY_MASTER_KEY``.

Persistence choice (issue 6): the ring stores **no key material**. Every key
is derived on demand with HKDF-SHA256 from a master key and a *purpose* listed
in :data:`~pynomaly_security.crypto.purposes.PURPOSES` (the one table of
HKDF labels), so the ring is fully
described by the settings:

* ``master_key`` -- writes and reads; ``retired_master_keys`` -- read only,
  after the master key itself was replaced (issue 13: one rotation model for
  every purpose, the audit trail's included);
* ``key_version`` -- the version new data is written with (the key id carried
  by every ``pn1`` token); ``key_min_version`` -- the oldest version still
  accepted for reading.

Rotating a version: bump ``PYNOMALY_SECURITY__KEY_VERSION`` on every instance,
run ``python -m pynomaly_security keys rotate`` to re-encrypt stored values,
then raise ``PYNOMALY_SECURITY__KEY_MIN_VERSION``. Replacing the master key:
set the new one, keep the old one in ``PYNOMALY_SECURITY__RETIRED_MASTER_KEYS``
(values written under it still read; ``keys rotate`` rewrites fields and vault
entries under the new one), and drop it once that has run everywhere -- unless
audit history under it must stay readable (the chain is never rewritten).
Instances never disagree about key material (nothing to sync), and a lost
keyring file cannot lose data.

Each purpose declares what its key changes with (``Purpose.rotates``):
most change with the version; the audit trail's change only with the master
key, because its records are hash-chained (never re-encrypted, so ``keys
rotate`` cannot move them to a new version) and its checkpoint public key is
pinned by verifiers (a routine version bump must not invalidate the pin).

References:
    RFC 5869 (HKDF); NIST SP 800-108 (key derivation); NIST SP 800-38D 8.3
    (at most 2**32 random 96-bit nonces per AES-GCM key -- one more reason to
    rotate).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, MultiFernet
from cryptography.hazmat.primitives import hashes

# HKDF lives under ``hazmat`` in ``cryptography``; it is the maintained
# implementation of RFC 5869 and hand-writing it would be worse (STYLE 2.6 is
# about not hand-assembling *ciphers*; AESGCM is the only cipher primitive used).
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pynomaly_security._log import get_logger
from pynomaly_security.crypto.purposes import purpose_of
from pynomaly_security.exceptions import ConfigurationError

if TYPE_CHECKING:
    from pynomaly_security.settings import SecuritySettings

__all__ = [
    "EPHEMERAL_KEY_EVENT",
    "KEY_SIZE",
    "KeyRing",
    "decode_master_key",
    "generate_master_key",
    "load_master_key",
]

log = get_logger(__name__)

KEY_SIZE = 32
EPHEMERAL_KEY_EVENT = "master_key_missing_using_ephemeral_key"
_RETIRED_ENV = "PYNOMALY_SECURITY__RETIRED_MASTER_KEYS"
_MAX_CACHED_KEYS = 4096
_GENERATE_HINT = (
    "generate one with `python -m pynomaly_security keys generate` and export it as "
    "PYNOMALY_MASTER_KEY (or set PYNOMALY_SECURITY__DEVELOPMENT_MODE=true for a "
    "throw-away key in development)"
)


def generate_master_key() -> str:
    """Return a new random master key: URL-safe base64 of 32 bytes from ``os.urandom``."""
    return base64.urlsafe_b64encode(os.urandom(KEY_SIZE)).decode("ascii")


def decode_master_key(text: str, *, name: str = "PYNOMALY_MASTER_KEY") -> bytes:
    """The 32 bytes of a master key given in standard or URL-safe base64.

    Raises:
        ConfigurationError: not base64 of exactly 32 bytes (the value is never echoed).
    """
    text = text.strip()
    padded = text + "=" * (-len(text) % 4)
    for decode in (base64.urlsafe_b64decode, base64.standard_b64decode):
        try:
            raw = decode(padded.encode("ascii"))
        except (binascii.Error, ValueError):
            continue
        if len(raw) == KEY_SIZE:
            return raw
    # Never echo the value: it may be a real (mistyped) secret.
    raise ConfigurationError(
        f"{name} must be base64 of exactly {KEY_SIZE} bytes "
        f"({len(text)} characters given); {_GENERATE_HINT}"
    )


def load_master_key(settings: SecuritySettings) -> bytes:
    """Return the 32 raw master-key bytes from ``settings.master_key``.

    Raises:
        ConfigurationError: the key is missing outside development mode, or is
            not base64 of 32 bytes.

    In development mode a missing key is replaced by a random key and a warning
    is logged. Each call returns a *new* key (a process-wide one would need a
    module-level global), so build one :class:`KeyRing` and share it; data
    encrypted with it is unreadable after a restart, acceptable only there.
    """
    secret = settings.master_key.get_secret_value() if settings.master_key else None
    return _master_or_ephemeral(secret, settings.development_mode)[0]


def _master_or_ephemeral(secret: str | None, development_mode: bool) -> tuple[bytes, bool]:
    # The one place a missing master key is refused or replaced (issue 13).
    if secret is None:
        if development_mode:
            log.warning(
                EPHEMERAL_KEY_EVENT,
                hint="values encrypted now (fields, TOTP secrets, audit records) are "
                "unreadable after a restart or by another KeyRing; share one KeyRing or "
                "set PYNOMALY_MASTER_KEY",
            )
            return os.urandom(KEY_SIZE), True
        raise ConfigurationError(f"PYNOMALY_MASTER_KEY is required; {_GENERATE_HINT}")
    return decode_master_key(secret), False


class KeyRing:
    """Purpose keys of one current master key, its retired predecessors and
    the readable key versions.

    Args:
        master_key: 32 random bytes (see :func:`load_master_key`).
        current_version: the version (key id) new data is written with.
        min_version: the oldest version still accepted for reading.
        retired: earlier master keys, still accepted for reading (newest first).
        ephemeral: the master key is a development throw-away (nothing written
            with it survives a restart).

    ``key(purpose, version)`` returns 32 bytes; any version in
    ``[min_version, current_version]`` is readable, anything else is unknown.
    ``master=i`` selects a retired master key (``0`` is the current one).
    """

    def __init__(
        self,
        master_key: bytes,
        *,
        current_version: int = 1,
        min_version: int = 1,
        retired: Sequence[bytes] = (),
        ephemeral: bool = False,
    ) -> None:
        for raw in (master_key, *retired):
            if len(raw) != KEY_SIZE:
                raise ConfigurationError(f"master key must be {KEY_SIZE} bytes, got {len(raw)}")
        if current_version < 1 or current_version > 0xFFFFFFFF:
            raise ConfigurationError("key_version must be between 1 and 2**32-1")
        if not 1 <= min_version <= current_version:
            raise ConfigurationError(
                f"key_min_version ({min_version}) must be between 1 and key_version "
                f"({current_version})"
            )
        # A retired key equal to the current one would only double every trial.
        self._masters = list(dict.fromkeys((master_key, *retired)))
        self.current_version = current_version
        self.min_version = min_version
        self.ephemeral = ephemeral
        self._cache: dict[tuple[str, int, str | None, int], bytes] = {}
        self.master_ids: tuple[str, ...] = tuple(
            hashlib.sha256(self.key("key-id", master=i)).hexdigest()[:16]
            for i in range(len(self._masters))
        )
        """Public id of each master key (current first): what audit records store."""

    @classmethod
    def from_secret(
        cls,
        secret: str | None,
        *,
        retired: Iterable[str] = (),
        development_mode: bool = False,
        current_version: int = 1,
        min_version: int = 1,
    ) -> KeyRing:
        """Build the ring from base64 master keys (``None``: see :func:`load_master_key`)."""
        master, ephemeral = _master_or_ephemeral(secret, development_mode)
        old = [decode_master_key(r, name=_RETIRED_ENV) for r in retired]
        return cls(
            master,
            current_version=current_version,
            min_version=min_version,
            retired=old,
            ephemeral=ephemeral,
        )

    @classmethod
    def from_settings(cls, settings: SecuritySettings) -> KeyRing:
        """Build the ring from ``master_key``, ``retired_master_keys``, ``key_version``
        and ``key_min_version``.

        With ``enable_key_rotation`` false only ``key_version`` is readable:
        the ring is a single key and ``keys rotate`` refuses to run.
        """
        current = settings.key_version
        return cls.from_secret(
            settings.master_key.get_secret_value() if settings.master_key else None,
            retired=[r.get_secret_value() for r in settings.retired_master_keys],
            development_mode=settings.development_mode,
            current_version=current,
            min_version=settings.key_min_version if settings.enable_key_rotation else current,
        )

    @property
    def versions(self) -> range:
        """Readable versions, oldest first."""
        return range(self.min_version, self.current_version + 1)

    @property
    def masters(self) -> range:
        """Indexes of the loaded master keys: ``0`` current, then the retired ones."""
        return range(len(self._masters))

    def is_known(self, version: int) -> bool:
        """Whether ``version`` may be used for reading."""
        return self.min_version <= version <= self.current_version

    def master_index(self, master_id: str) -> int | None:
        """Which loaded master key has the id ``master_id`` (``None``: none)."""
        try:
            return self.master_ids.index(master_id)
        except ValueError:
            return None

    def key(
        self,
        purpose: str,
        version: int | None = None,
        *,
        tenant: str | None = None,
        master: int = 0,
    ) -> bytes:
        """Derive the 32-byte key for ``purpose`` at ``version`` (default: current).

        ``tenant`` gives a tenant its own keys; ``master`` picks a retired master
        key (read only). A purpose that rotates with the master key ignores
        ``version``.

        Raises:
            KeyError: ``version`` is outside the readable range (callers turn
                this into ``InvalidToken``).
            ConfigurationError: ``purpose`` is not in ``PURPOSES`` (``purposes.py``).
        """
        spec = purpose_of(purpose)
        if spec.rotates == "master":
            if tenant is not None:
                raise ConfigurationError(f"purpose {purpose!r} has no per-tenant keys")
            version = 0
        else:
            version = self.current_version if version is None else version
            if not self.is_known(version):
                raise KeyError(version)
        cache_key = (purpose, version, tenant, master)
        cached = self._cache.get(cache_key)
        if cached is not None:
            return cached
        # The info string separates purposes, versions and tenants, so keys for
        # different uses are independent even though they share the master key.
        # JSON keeps it unambiguous whatever characters a purpose or tenant holds.
        info = spec.label or json.dumps(["pynomaly-security", purpose, version, tenant]).encode()
        derived = HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=None, info=info).derive(
            self._masters[master]
        )
        if len(self._cache) >= _MAX_CACHED_KEYS:  # tenants are unbounded; keep memory flat
            self._cache.clear()
        self._cache[cache_key] = derived
        return derived

    def reading_keys(
        self, purpose: str, version: int | None = None, *, tenant: str | None = None
    ) -> list[bytes]:
        """The key of ``purpose`` at ``version`` under every loaded master key,
        current first: what a reader tries."""
        return [self.key(purpose, version, tenant=tenant, master=m) for m in self.masters]

    def fernet(self, purpose: str, *, tenant: str | None = None) -> MultiFernet:
        """A ``MultiFernet`` over every readable key of ``purpose``: newest version
        first, the current master key before retired ones. It encrypts with the
        first (current master, current version) and decrypts with any."""
        return MultiFernet(
            [
                Fernet(base64.urlsafe_b64encode(key))
                for version in reversed(self.versions)
                for key in self.reading_keys(purpose, version, tenant=tenant)
            ]
        )

    def __repr__(self) -> str:  # never show key material
        retired = f", retired={len(self._masters) - 1}" if len(self._masters) > 1 else ""
        return (
            f"KeyRing(current_version={self.current_version}, "
            f"min_version={self.min_version}{retired})"
        )
