"""The token vault on Redis (``storage/redis.py`` owns the pool).

A hash per token, a string per fingerprint, Lua for atomicity.

Keys (``prefix`` defaults to ``pynomaly:tokens:``): ``<prefix>t:<token>`` is a
hash ``{c: ciphertext, f: fingerprint}``; ``<prefix>f:<fingerprint>`` holds the
token. Multi-key scripts assume a single Redis (not Cluster) for this prefix.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Self

from pynomaly_security.exceptions import StorageError
from pynomaly_security.protection.vault.base import VaultEntry
from pynomaly_security.storage._shared import Lease

if TYPE_CHECKING:
    from pynomaly_security.storage.redis import RedisBackend

__all__ = ["RedisTokenVault"]

# KEYS: token key, fingerprint key (or ""); ARGV: ciphertext, token, fingerprint.
_PUT = """
if KEYS[2] ~= '' then
  local existing = redis.call('GET', KEYS[2])
  if existing then return existing end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
redis.call('HSET', KEYS[1], 'c', ARGV[1], 'f', ARGV[3])
if KEYS[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2]) end
return ARGV[2]
"""
# KEYS: token key; ARGV: old ciphertext, new ciphertext, new fingerprint, fp prefix, token.
_REPLACE = """
if redis.call('HGET', KEYS[1], 'c') ~= ARGV[1] then return 0 end
local old_fp = redis.call('HGET', KEYS[1], 'f')
if old_fp and old_fp ~= '' then redis.call('DEL', ARGV[4] .. old_fp) end
redis.call('HSET', KEYS[1], 'c', ARGV[2], 'f', ARGV[3])
if ARGV[3] ~= '' then redis.call('SET', ARGV[4] .. ARGV[3], ARGV[5]) end
return 1
"""
_DELETE = """
local fp = redis.call('HGET', KEYS[1], 'f')
if fp and fp ~= '' then redis.call('DEL', ARGV[1] .. fp) end
return redis.call('DEL', KEYS[1])
"""


class RedisTokenVault:
    """Token vault in Redis (shared by every instance of the application).

    Args:
        backend: the Redis (``StorageRegistry.token_vault("redis://...")``).
        prefix: key prefix.
    """

    def __init__(self, backend: RedisBackend, *, prefix: str = "pynomaly:tokens:") -> None:
        self.backend = backend
        self._lease: Lease[Any] = Lease(backend.connection)
        self._prefix = prefix

    def _t(self, token: str) -> str:
        return f"{self._prefix}t:{token}"

    def _f(self, fingerprint: str) -> str:
        return f"{self._prefix}f:{fingerprint}"

    async def _call(self, name: str, *args: Any) -> Any:
        import redis.exceptions

        client = await self._lease.get()
        try:
            return await getattr(client, name)(*args)
        except (redis.exceptions.RedisError, OSError) as exc:
            raise StorageError("token vault (redis) failed") from exc

    async def put(self, token: str, ciphertext: str, fingerprint: str | None = None) -> str | None:
        fp_key = self._f(fingerprint) if fingerprint else ""
        args = (ciphertext, token, fingerprint or "")
        result = await self._call("eval", _PUT, 2, self._t(token), fp_key, *args)
        return None if result is None else str(result)

    async def find(self, fingerprint: str) -> str | None:
        result = await self._call("get", self._f(fingerprint))
        return None if result is None else str(result)

    async def get(self, token: str) -> str | None:
        result = await self._call("hget", self._t(token), "c")
        return None if result is None else str(result)

    async def delete(self, token: str) -> bool:
        return bool(await self._call("eval", _DELETE, 1, self._t(token), self._f("")))

    async def replace(
        self, token: str, old_ciphertext: str, ciphertext: str, fingerprint: str | None
    ) -> bool:
        args = (old_ciphertext, ciphertext, fingerprint or "", self._f(""), token)
        return bool(await self._call("eval", _REPLACE, 1, self._t(token), *args))

    async def entries(self, batch_size: int) -> AsyncIterator[list[VaultEntry]]:
        cursor: int = 0
        strip = len(self._t(""))
        while True:
            cursor, keys = await self._call("scan", cursor, self._t("*"), batch_size)
            if keys:
                batch = []
                for key in keys:
                    values = await self._call("hmget", key, "c", "f")
                    if values[0] is not None:
                        batch.append(VaultEntry(key[strip:], values[0], values[1] or None))
                yield batch
            if cursor == 0:
                return

    async def aclose(self) -> None:
        """Give back this vault's use of the pool (the last user closes it)."""
        await self._lease.release()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
