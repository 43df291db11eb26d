"""Master key, HKDF purpose keys and the versioned key ring.

Persistence choice (issue 6): the key ring stores **no key material**. Every
key is derived on demand with HKDF-SHA256 from the master key
(``PYNOMALY_MASTER_KEY``), a *purpose* (``fields``, ``tokens``, ``audit``,
``blind-index`` ...), a *version* and optionally a tenant. The ring is then
fully described by two integers kept in the settings:

* ``key_version`` -- the version new data is written with (the key id carried
  by every token);
* ``key_min_version`` -- the oldest version still accepted for reading.

Rotating is therefore: bump ``PYNOMALY_SECURITY__KEY_VERSION`` on every
instance, run ``python -m pynomaly_security keys rotate`` to re-encrypt stored
values, then raise ``PYNOMALY_SECURITY__KEY_MIN_VERSION`` to retire the old
version. Instances never disagree about key material (nothing to sync), and a
lost keyring file cannot lose data. The trade-off: compromise of the master key
compromises every version, so replacing the master key itself is a
decrypt-with-old / encrypt-with-new migration (not covered by ``keys rotate``).

References:
    RFC 5869 (HKDF); NIST SP 800-108 (key derivation); NIST SP 800-38D 8.3
    (at most 2**32 random 96-bit nonces per AES-GCM key -- one more reason to
    rotate).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from typing import TYPE_CHECKING

import structlog
from cryptography.hazmat.primitives import hashes

# HKDF lives under ``hazmat`` in ``cryptography``; it is the maintained
# implementation of RFC 5869 and hand-writing it would be worse (STYLE 2.6 is
# about not hand-assembling *ciphers*; AESGCM is the only cipher primitive used).
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pynomaly_security.exceptions import ConfigurationError

if TYPE_CHECKING:
    from pynomaly_security.settings import SecuritySettings

__all__ = ["KEY_SIZE", "KeyRing", "generate_master_key", "load_master_key"]

log = structlog.get_logger(__name__)

KEY_SIZE = 32
_MAX_CACHED_KEYS = 4096
_GENERATE_HINT = (
    "generate one with `python -m pynomaly_security keys generate` and export it as "
    "PYNOMALY_MASTER_KEY (or set PYNOMALY_SECURITY__DEVELOPMENT_MODE=true for a "
    "throw-away key in development)"
)


def generate_master_key() -> str:
    """Return a new random master key: URL-safe base64 of 32 bytes from ``os.urandom``."""
    return base64.urlsafe_b64encode(os.urandom(KEY_SIZE)).decode("ascii")


def _decode_master_key(text: str) -> bytes:
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
        f"PYNOMALY_MASTER_KEY must be base64 of exactly {KEY_SIZE} bytes "
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
    if settings.master_key is None:
        if settings.development_mode:
            log.warning(
                "master_key_missing_using_ephemeral_key",
                hint="values encrypted now are unreadable after a restart or by another "
                "KeyRing; share one KeyRing or set PYNOMALY_MASTER_KEY",
            )
            return os.urandom(KEY_SIZE)
        raise ConfigurationError(f"PYNOMALY_MASTER_KEY is required; {_GENERATE_HINT}")
    return _decode_master_key(settings.master_key.get_secret_value())


class KeyRing:
    """Versioned purpose keys derived from one master key.

    Args:
        master_key: 32 random bytes (see :func:`load_master_key`).
        current_version: the version (key id) new data is written with.
        min_version: the oldest version still accepted for reading.

    ``key(purpose, version)`` returns 32 bytes; any version in
    ``[min_version, current_version]`` is readable, anything else is unknown.
    """

    def __init__(
        self, master_key: bytes, *, current_version: int = 1, min_version: int = 1
    ) -> None:
        if len(master_key) != KEY_SIZE:
            raise ConfigurationError(f"master key must be {KEY_SIZE} bytes, got {len(master_key)}")
        if current_version < 1 or current_version > 0xFFFFFFFF:
            raise ConfigurationError("key_version must be between 1 and 2**32-1")
        if not 1 <= min_version <= current_version:
            raise ConfigurationError(
                f"key_min_version ({min_version}) must be between 1 and key_version "
                f"({current_version})"
            )
        self._master = master_key
        self.current_version = current_version
        self.min_version = min_version
        self._cache: dict[tuple[str, int, str | None], bytes] = {}

    @classmethod
    def from_settings(cls, settings: SecuritySettings) -> KeyRing:
        """Build the ring from ``master_key``, ``key_version`` and ``key_min_version``.

        With ``enable_key_rotation`` false only ``key_version`` is readable:
        the ring is a single key and ``keys rotate`` refuses to run.
        """
        current = settings.key_version
        minimum = settings.key_min_version if settings.enable_key_rotation else current
        return cls(load_master_key(settings), current_version=current, min_version=minimum)

    @property
    def versions(self) -> range:
        """Readable versions, oldest first."""
        return range(self.min_version, self.current_version + 1)

    def is_known(self, version: int) -> bool:
        """Whether ``version`` may be used for reading."""
        return self.min_version <= version <= self.current_version

    def key(self, purpose: str, version: int | None = None, *, tenant: str | None = None) -> bytes:
        """Derive the 32-byte key for ``purpose`` at ``version`` (default: current).

        Raises:
            KeyError: ``version`` is outside the readable range (callers turn
                this into ``InvalidToken``).
        """
        version = self.current_version if version is None else version
        if not self.is_known(version):
            raise KeyError(version)
        cache_key = (purpose, version, tenant)
        cached = self._cache.get(cache_key)
        if cached is not None:
            return cached
        # The info string separates purposes, versions and tenants, so keys for
        # different uses are independent even though they share the master key.
        # JSON keeps it unambiguous whatever characters a purpose or tenant holds.
        info = json.dumps(["pynomaly-security", purpose, version, tenant]).encode()
        derived = HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=None, info=info).derive(
            self._master
        )
        if len(self._cache) >= _MAX_CACHED_KEYS:  # tenants are unbounded; keep memory flat
            self._cache.clear()
        self._cache[cache_key] = derived
        return derived

    def __repr__(self) -> str:  # never show key material
        return f"KeyRing(current_version={self.current_version}, min_version={self.min_version})"
