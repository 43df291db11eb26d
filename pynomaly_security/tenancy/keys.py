"""Per-tenant keys by envelope encryption (issue 21, item 3).

Each tenant has random 32-byte key versions (never derived: a derived key could
be derived again, so it could not be destroyed). Each version is stored wrapped
by AES-256-GCM under the ``tenant-kek`` purpose key of the master key, with
``tenant|<namespace>|v<n>`` as associated data: a wrapped key copied to another
tenant's record, or to another version, does not open. The tenant's data keys
are HKDF of its key per purpose, so one tenant key serves every field purpose.

* ``rotate(tenant)``: a new version encrypts from now on; older versions still
  read (re-encrypt, then ``retire``); no other tenant's record is touched.
* ``destroy(tenant)``: every version of that tenant is deleted. Its ciphertexts
  are then noise for everyone, master key holders included: crypto-shredding.

A ciphertext is ``tk1.<version>.<base64url(nonce || ct || tag)>``, sealed with the
tenant's namespace and the purpose as associated data (a ciphertext moved to
another tenant or purpose fails to open). Unwrapped keys are kept per worker
for ``cache_seconds`` (bounded), so a destruction reaches every worker within it.

References: NIST SP 800-38F (key wrapping), SP 800-57 (crypto-period), RFC 5869.
"""

from __future__ import annotations

import base64
import os
import time
from collections import OrderedDict
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pynomaly_security.crypto.aead import AESGCM, open_sealed, seal
from pynomaly_security.crypto.keys import KeyRing
from pynomaly_security.exceptions import InvalidToken
from pynomaly_security.storage.base import MonitorState
from pynomaly_security.tenancy.context import PLATFORM, namespace

__all__ = ["TenantKeys"]

_COLLECTION = PLATFORM + "tenant_keys"
_PREFIX = "tk1."


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TenantKeys:
    """Wrapped per-tenant keys in the platform's part of ``state()``.

    Args:
        ring: the key ring (its ``tenant-kek`` keys wrap; retired masters still unwrap).
        state: the shared state.
    """

    def __init__(
        self,
        ring: KeyRing,
        state: MonitorState,
        *,
        cache_seconds: float = 2.0,
        max_cached: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ring = ring
        self._kek = [AESGCM(ring.key("tenant-kek", master=m)) for m in ring.masters]
        self._docs = state.documents(_COLLECTION, indexed=(), keep=10_000_000)
        self._ttl, self._max, self._clock = cache_seconds, max_cached, clock
        self._cache: OrderedDict[str, tuple[float, int, dict[int, bytes]]] = OrderedDict()

    @staticmethod
    def _aad(tenant_id: str, version: int) -> bytes:
        return f"tenant|{namespace(tenant_id)}|v{version}".encode()

    async def _load(self, tenant_id: str) -> tuple[int, dict[int, bytes]] | None:
        hit = self._cache.get(tenant_id)
        if hit is not None and hit[0] > self._clock():
            return hit[1], hit[2]
        doc = await self._docs.get(tenant_id)
        if doc is None or not doc.get("versions"):
            self._cache.pop(tenant_id, None)
            return None
        keys: dict[int, bytes] = {}
        for v, entry in doc["versions"].items():
            master = self._ring.master_index(entry["master"])
            if master is None:
                continue  # wrapped under a master key no longer loaded
            keys[int(v)] = open_sealed(
                self._kek[master], _unb64(entry["wrapped"]), self._aad(tenant_id, int(v))
            )
        current = int(doc["current"])
        self._cache[tenant_id] = (self._clock() + self._ttl, current, keys)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return current, keys

    async def _write(
        self, tenant_id: str, versions: dict[str, dict[str, str]], current: int
    ) -> None:
        await self._docs.put(tenant_id, {"versions": versions, "current": current})
        self._cache.pop(tenant_id, None)

    def _wrap(self, tenant_id: str, version: int, key: bytes) -> dict[str, str]:
        return {
            "wrapped": _b64(seal(self._kek[0], key, self._aad(tenant_id, version))),
            "master": self._ring.master_ids[0],
        }

    async def create(self, tenant_id: str) -> int:
        """Give a tenant its first key (idempotent); its current version."""
        loaded = await self._load(tenant_id)
        if loaded is not None:
            return loaded[0]
        await self._write(tenant_id, {"1": self._wrap(tenant_id, 1, os.urandom(32))}, 1)
        return 1

    async def rotate(self, tenant_id: str) -> int:
        """A new key version for new data; older ones keep reading. The new version."""
        doc = await self._docs.get(tenant_id)
        versions: dict[str, dict[str, str]] = dict((doc or {}).get("versions") or {})
        new = max((int(v) for v in versions), default=0) + 1
        versions[str(new)] = self._wrap(tenant_id, new, os.urandom(32))
        await self._write(tenant_id, versions, new)
        return new

    async def retire(self, tenant_id: str, below: int) -> int:
        """Destroy versions older than ``below`` (after re-encryption); how many."""
        doc = await self._docs.get(tenant_id)
        if doc is None:
            return 0
        versions = {v: e for v, e in doc["versions"].items() if int(v) >= below}
        gone = len(doc["versions"]) - len(versions)
        await self._write(tenant_id, versions, int(doc["current"]))
        return gone

    async def destroy(self, tenant_id: str) -> None:
        """Crypto-shred the tenant: every version gone, here and in this worker's cache."""
        await self._write(tenant_id, {}, 0)

    async def versions(self, tenant_id: str) -> list[int]:
        loaded = await self._load(tenant_id)
        return [] if loaded is None else sorted(loaded[1])

    @staticmethod
    def _data_key(tenant_key: bytes, purpose: str) -> bytes:
        info = f"pynomaly-security/tenant-data/{purpose}".encode()
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(tenant_key)

    async def encrypt(self, tenant_id: str, plaintext: bytes, *, purpose: str = "fields") -> str:
        """Seal ``plaintext`` under the tenant's current key for ``purpose``."""
        loaded = await self._load(tenant_id)
        if loaded is None or loaded[0] not in loaded[1]:
            raise InvalidToken  # no key: a destroyed (or never created) tenant
        current, keys = loaded
        blob = seal(self._data_key(keys[current], purpose), plaintext, self._ad(tenant_id, purpose))
        return f"{_PREFIX}{current}.{_b64(blob)}"

    async def decrypt(self, tenant_id: str, token: str, *, purpose: str = "fields") -> bytes:
        """Open a :meth:`encrypt` token; ``InvalidToken`` for any failure (a destroyed
        key, another tenant's or purpose's token, tampering)."""
        head, _, rest = token.partition(_PREFIX)
        version, _, body = rest.partition(".")
        if head or not version.isdigit() or not body:
            raise InvalidToken
        loaded = await self._load(tenant_id)
        key = None if loaded is None else loaded[1].get(int(version))
        if key is None:
            raise InvalidToken
        try:
            blob = _unb64(body)
        except ValueError:
            raise InvalidToken from None
        return open_sealed(self._data_key(key, purpose), blob, self._ad(tenant_id, purpose))

    @staticmethod
    def _ad(tenant_id: str, purpose: str) -> bytes:
        return f"{namespace(tenant_id)}{purpose}".encode()
