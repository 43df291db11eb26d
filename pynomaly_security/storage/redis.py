"""Redis (``redis://``, ``rediss://``, ``unix://``): state shared by every worker and host.

:class:`RedisBackend` owns one ``redis.asyncio`` client (one connection pool)
per URL; every capability on the URL uses it:

    store()        :class:`RedisStore`: counters, sliding windows, key-value, members
    token_vault()  ``protection.vault.redis.RedisTokenVault``

Multi-step updates run as Lua scripts (``_lua/*.lua``) so concurrent workers
never interleave a read-check-write; single commands (SET NX, GET, DEL) are
atomic already. The client is created by the first user of the URL (the
registry in the application's lifespan), because a ``redis.asyncio`` client
binds to the event loop that first uses it (a client made at import time breaks
under uvicorn's reloader and in tests). A call before that opens it lazily, so
the store also works in apps that never run a lifespan.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from pynomaly_security.exceptions import ConfigurationError, StorageError
from pynomaly_security.storage._shared import Lease, Shared
from pynomaly_security.storage._window import sliding_windows
from pynomaly_security.storage.base import BackendOptions

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

    from pynomaly_security.protection.vault.redis import RedisTokenVault

__all__ = ["RedisBackend", "RedisStore"]

_SCRIPTS = ("incr_expire", "sliding_acquire", "add_member")
# What a driver raises when Redis is down, slow or refuses: wrapped as StorageError.
_ERRORS = (RedisError, OSError, TimeoutError)


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


class RedisBackend:
    """One Redis server (database) and its connection pool.

    Args:
        url: ``redis://``, ``rediss://`` or ``unix://`` URL (database in the path).
        options: ``socket_timeout`` (keeps a dead Redis from hanging requests: the
            failure policy then applies), ``client_name``, ``max_members``, ``clock``.
    """

    shared = True

    def __init__(self, url: str, options: BackendOptions) -> None:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigurationError(f"not a Redis URL: {url.split('@')[-1]!r}")
        if options.socket_timeout <= 0:
            raise ConfigurationError(f"socket_timeout must be > 0, got {options.socket_timeout}")
        self.url = url
        self.options = options
        self.connection: Shared[Redis] = Shared(self._connect, self._disconnect)

    async def _connect(self) -> Redis:
        from redis.asyncio import Redis

        return Redis.from_url(
            self.url,
            decode_responses=True,
            socket_timeout=self.options.socket_timeout,
            socket_connect_timeout=self.options.socket_timeout,
            client_name=self.options.client_name,
        )

    @staticmethod
    async def _disconnect(client: Redis) -> None:
        await client.aclose()

    async def healthcheck(self) -> bool:
        return await self.connection.check(lambda client: client.ping())

    # -- capabilities --------------------------------------------------------------------------
    def store(self, *, key_prefix: str = "pns:") -> RedisStore:
        """Shared state under ``key_prefix`` (one Redis can serve several apps)."""
        return RedisStore(
            self,
            key_prefix=key_prefix,
            max_members=self.options.max_members,
            clock=self.options.clock,
        )

    def state(self, *, key_prefix: str = "pns:") -> RedisStore:
        """The monitor's state (documents, logs, tallies): the store under ``key_prefix``."""
        return self.store(key_prefix=key_prefix)

    def token_vault(self, *, prefix: str = "pynomaly:tokens:") -> RedisTokenVault:
        """The token vault under ``prefix``."""
        from pynomaly_security.protection.vault.redis import RedisTokenVault

        return RedisTokenVault(self, prefix=prefix)


class RedisStore:
    """:class:`~pynomaly_security.storage.base.Store` on Redis (``redis.asyncio``).

    Args:
        backend: the Redis whose connection pool the store uses.
        key_prefix: prepended to every key, so one Redis can serve several apps.
        max_members: cap of each member set.
        clock: seconds since the epoch, used to name windows and score members.
    """

    shared = True

    def __init__(
        self,
        backend: RedisBackend,
        *,
        key_prefix: str = "pns:",
        max_members: int = 1_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.backend = backend
        self._lease = Lease(backend.connection)
        self._prefix = key_prefix
        self._max_members = max_members
        self._clock = clock
        self._client: Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._loaded: Redis | None = None  # the client batch() loaded the scripts on

    async def __aenter__(self) -> RedisStore:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        await self._redis()

    async def aclose(self) -> None:
        """Give back this store's use of the pool (the last user closes it)."""
        self._client = None
        await self._lease.release()

    async def healthcheck(self) -> bool:
        try:
            return bool(await (await self._redis()).ping())
        except Exception:  # any failure at all means "not healthy"
            return False

    async def _redis(self) -> Redis:
        client = await self._lease.get()
        if client is not self._client:  # scripts belong to the client they were registered on
            package = resources.files("pynomaly_security.storage")
            self._scripts = {
                name: client.register_script(package.joinpath(f"_lua/{name}.lua").read_text())
                for name in _SCRIPTS
            }
            self._client = client
        return client

    async def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        await self._redis()
        try:
            return await self._scripts[name](keys=keys, args=args)
        except _ERRORS as exc:
            raise StorageError(f"redis script {name} failed: {type(exc).__name__}") from exc

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        client = await self._redis()
        try:
            return await getattr(client, method)(*args, **kwargs)
        except _ERRORS as exc:
            raise StorageError(f"redis {method} failed: {type(exc).__name__}") from exc

    def _k(self, key: str) -> str:
        return self._prefix + key

    # -- ChangeNotifier ------------------------------------------------------------------
    async def publish(self, channel: str) -> None:
        await self._call("publish", self._k("notify:" + channel), "1")

    async def listen(self, channel: str, on_message: Callable[[], Awaitable[object]]) -> None:
        # A pub/sub connection of its own (a subscribed connection serves nothing else);
        # get_message with a timeout shorter than socket_timeout, so an idle channel is
        # not read as a dead server.
        client = await self._redis()
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self._k("notify:" + channel))
            while True:
                message = await pubsub.get_message(timeout=0.5)
                if message is not None:
                    await on_message()
        except _ERRORS as exc:
            raise StorageError(f"redis listen failed: {type(exc).__name__}") from exc
        finally:
            with contextlib.suppress(*_ERRORS):
                await pubsub.aclose()

    async def batch(self, calls: Sequence[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        """:class:`~pynomaly_security.storage.base.BatchStore`: one pipeline (not a
        transaction), scripts by EVALSHA. A pipeline cannot fall back to loading a
        script mid-way without running its other calls twice, so the scripts are
        loaded before the first batch of each client (and again after Redis lost them:
        that batch fails, the next one reloads)."""
        client = await self._redis()
        parsers: list[Callable[[Any], Any] | None] = []
        try:
            if self._loaded is not client:
                for script in self._scripts.values():
                    await client.script_load(script.script)
                self._loaded = client
            async with client.pipeline(transaction=False) as pipe:
                for name, args in calls:
                    parsers.append(self._queue(pipe, name, *args))
                raw = iter(await pipe.execute())
        except _ERRORS as exc:
            self._loaded = None
            raise StorageError(f"redis batch failed: {type(exc).__name__}") from exc
        return [[] if parse is None else parse(next(raw)) for parse in parsers]

    def _queue(self, pipe: Any, name: str, *args: Any) -> Callable[[Any], Any] | None:
        """Queue one call on ``pipe``; how to read its reply (None: no command, an
        empty ``get_many``)."""
        if name == "acquire_sliding_window_stats":
            key, limit, expiry, *rest = args
            amount = rest[0] if rest else 1
            w = sliding_windows(self._k(key), expiry, self._clock())
            sha = self._scripts["sliding_acquire"].sha
            pipe.evalsha(
                sha, 2, w.previous_key, w.current_key,
                limit, amount, repr(w.previous_ttl / expiry), _ms(2 * expiry),
            )  # fmt: skip

            def window(reply: Any) -> tuple[bool, tuple[int, float, int, float]]:
                allowed, previous, current = reply
                prev = int(previous)
                return bool(allowed), (
                    prev,
                    w.previous_ttl if prev else 0.0,
                    int(current),
                    w.current_ttl,
                )

            return window
        if name == "add_member":
            key, member, span = args
            sha = self._scripts["add_member"].sha
            pipe.evalsha(
                sha, 1, self._k(key), member, repr(self._clock()), repr(span), self._max_members
            )
            return int
        if name == "put":
            key, value, *rest = args
            ttl = rest[0] if rest else None
            pipe.set(self._k(key), value, px=_ms(ttl) if ttl is not None else None)
            return lambda reply: None
        if name == "add":
            key, value, ttl = args
            pipe.set(self._k(key), value, px=_ms(ttl), nx=True)
            return bool
        if name == "get_many":
            (keys,) = args
            if not keys:
                return None
            pipe.mget([self._k(k) for k in keys])
            return lambda reply: [str(v) if v is not None else None for v in reply]
        raise ConfigurationError(f"{name!r} cannot be batched")

    # -- counters -----------------------------------------------------------------------------
    async def incr(self, key: str, ttl: float, amount: int = 1) -> int:
        return int(await self._run("incr_expire", [self._k(key)], [amount, _ms(ttl)]))

    async def get_count(self, key: str) -> int:
        value = await self._call("get", self._k(key))
        return int(value) if value is not None else 0

    # -- sliding window ----------------------------------------------------------------------
    async def acquire_sliding_window(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool:
        return (await self.acquire_sliding_window_stats(key, limit, expiry, amount))[0]

    async def acquire_sliding_window_stats(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> tuple[bool, tuple[int, float, int, float]]:
        w = sliding_windows(self._k(key), expiry, self._clock())
        weight = w.previous_ttl / expiry
        allowed, previous, current = await self._run(
            "sliding_acquire",
            [w.previous_key, w.current_key],
            [limit, amount, repr(weight), _ms(2 * expiry)],
        )
        prev = int(previous)
        stats = (prev, w.previous_ttl if prev else 0.0, int(current), w.current_ttl)
        return bool(allowed), stats

    async def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        w = sliding_windows(self._k(key), expiry, self._clock())
        previous, current = await self._call("mget", [w.previous_key, w.current_key])
        prev = int(previous or 0)
        return (prev, w.previous_ttl if prev else 0.0, int(current or 0), w.current_ttl)

    async def clear_sliding_window(self, key: str, expiry: int) -> None:
        w = sliding_windows(self._k(key), expiry, self._clock())
        await self._call("delete", w.previous_key, w.current_key)

    # -- key/value ---------------------------------------------------------------------------
    async def put(self, key: str, value: str, ttl: float | None = None) -> None:
        await self._call("set", self._k(key), value, px=_ms(ttl) if ttl is not None else None)

    async def add(self, key: str, value: str, ttl: float) -> bool:
        return bool(await self._call("set", self._k(key), value, px=_ms(ttl), nx=True))

    async def get(self, key: str) -> str | None:
        value = await self._call("get", self._k(key))
        return str(value) if value is not None else None

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        if not keys:
            return []
        values = await self._call("mget", [self._k(key) for key in keys])
        return [str(v) if v is not None else None for v in values]

    async def delete(self, key: str) -> bool:
        return bool(await self._call("delete", self._k(key)))

    async def scan(self, prefix: str, limit: int = 1000) -> list[tuple[str, str]]:
        client = await self._redis()
        keys: list[str] = []
        try:
            # SCAN, not KEYS: it never blocks Redis for the whole keyspace.
            async for key in client.scan_iter(match=self._k(prefix) + "*", count=500):
                keys.append(key)
                if len(keys) >= limit:
                    break
        except _ERRORS as exc:
            raise StorageError(f"redis scan failed: {type(exc).__name__}") from exc
        if not keys:
            return []
        values = await self._call("mget", keys)
        cut = len(self._prefix)
        return [(k[cut:], v) for k, v in zip(keys, values, strict=True) if isinstance(v, str)]

    # -- members ---------------------------------------------------------------------------
    async def add_member(self, key: str, member: str, window: float) -> int:
        now = self._clock()
        args = [member, repr(now), repr(window), self._max_members]
        return int(await self._run("add_member", [self._k(key)], args))

    async def has_member(self, key: str, member: str, window: float) -> bool:
        score = await self._call("zscore", self._k(key), member)
        return score is not None and float(score) > self._clock() - window

    # -- monitor state: documents, logs, tallies (issue 13, item 5) ------------------------
    async def _run_script(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run ``_lua/<name>.lua``, registered on first use with the current client."""
        client = await self._redis()
        if name not in self._scripts:
            source = resources.files("pynomaly_security.storage").joinpath(f"_lua/{name}.lua")
            self._scripts[name] = client.register_script(source.read_text())
        return await self._run(name, keys, args)

    async def _pipelined(self, what: str, commands: Callable[[Any], object]) -> list[Any]:
        """Several commands in one round trip (not a transaction: reads only)."""
        client = await self._redis()
        try:
            async with client.pipeline(transaction=False) as pipe:
                commands(pipe)
                return list(await pipe.execute())
        except _ERRORS as exc:
            raise StorageError(f"redis {what} failed: {type(exc).__name__}") from exc

    def documents(self, name: str, *, indexed: Sequence[str], keep: int) -> RedisDocuments:
        """The collection ``name`` (see :class:`~pynomaly_security.storage.base.DocumentStore`)."""
        return RedisDocuments(self, self._k(f"doc:{name}:"), indexed, keep)

    def log(self, name: str, *, max_entries: int, max_streams: int) -> RedisLog:
        """The log family ``name`` (see :class:`~pynomaly_security.storage.base.LogStore`)."""
        return RedisLog(self, self._k(f"log:{name}:"), max_entries, max_streams)

    async def add_tallies(self, name: str, deltas: Mapping[str, int]) -> None:
        if not deltas:
            return
        client = await self._redis()
        key = self._k(f"tally:{name}")
        try:
            async with client.pipeline(transaction=True) as pipe:
                for field_name, delta in deltas.items():
                    pipe.hincrby(key, field_name, delta)
                await pipe.execute()
        except _ERRORS as exc:
            raise StorageError(f"redis hincrby failed: {type(exc).__name__}") from exc

    async def tallies(self, name: str) -> dict[str, int]:
        values = await self._call("hgetall", self._k(f"tally:{name}"))
        return {str(k): int(v) for k, v in values.items()}


# Imports of the monitor-state block (kept with it so it merges as one addition).
import json  # noqa: E402
from collections.abc import Mapping  # noqa: E402

from pynomaly_security.storage.base import Scalar, Where, check_indexed  # noqa: E402

__all__ += ["RedisDocuments", "RedisLog"]


def _json(value: Any) -> str:
    # One encoding for what is stored and what is compared (only_if, combos); ASCII,
    # so text a JSON body smuggled in (a lone surrogate) is escaped, not an encoding error.
    return json.dumps(value, separators=(",", ":"))


def _name(text: str) -> bytes:
    # A stream name is attacker text (a login's user name): bytes, whatever it holds.
    return text.encode("utf-8", "surrogatepass")


class RedisDocuments:
    """:class:`~pynomaly_security.storage.base.DocumentCollection` on Redis.

    Each document is a hash of its fields as JSON texts; writes are one Lua step
    (``_lua/documents.lua``) that also keeps, per combination of indexed values, a
    sorted set of ids and a count, so a query reads only matching ids and a count
    reads one small hash.
    """

    def __init__(self, store: RedisStore, prefix: str, indexed: Sequence[str], keep: int) -> None:
        if keep < 1:
            raise ConfigurationError(f"keep must be >= 1, got {keep}")
        self._store = store
        self._prefix = prefix
        self._indexed = tuple(indexed)
        self._keep = keep
        self._keys = [prefix + "order", prefix + "combo", prefix + "tally", prefix + "seq"]

    def _args(self, op: str, doc_id: str, count: int) -> list[Any]:
        return [op, self._prefix, doc_id, count, len(self._indexed), *self._indexed]

    async def put(self, doc_id: str, document: Mapping[str, Any]) -> None:
        args = self._args("put", doc_id, self._keep)
        for name, value in document.items():
            args += [name, _json(value)]
        await self._store._run_script("documents", self._keys, args)

    async def add(self, doc_id: str, document: Mapping[str, Any]) -> bool:
        args = self._args("add", doc_id, self._keep)
        for name, value in document.items():
            args += [name, _json(value)]
        return bool(await self._store._run_script("documents", self._keys, args))

    async def get(self, doc_id: str) -> dict[str, Any] | None:
        fields = await self._store._call("hgetall", self._prefix + "d:" + doc_id)
        return {k: json.loads(v) for k, v in fields.items()} if fields else None

    async def update(
        self, doc_id: str, changes: Mapping[str, Any], *, only_if: Where = None
    ) -> dict[str, Any] | None:
        only_if = only_if or {}
        args = self._args("update", doc_id, len(only_if))
        for name, value in [*only_if.items(), *changes.items()]:
            args += [name, _json(value)]
        # The script answers the document as its own step left it: a compare-and-set
        # caller learns whether its change landed, not what a later writer made of it.
        fields = await self._store._run_script("documents", self._keys, args)
        if not fields:
            return None
        pairs = iter(fields)
        return {str(k): json.loads(v) for k, v in zip(pairs, pairs, strict=True)}

    async def _combos(self, where: Mapping[str, Scalar]) -> list[tuple[str, list[Any], int]]:
        """(combo, its indexed values, document count) of every combination matching ``where``."""
        tally = await self._store._call("hgetall", self._prefix + "tally")
        positions = {name: i for i, name in enumerate(self._indexed)}
        found = []
        for combo, count in tally.items():
            values = json.loads(combo)
            if all(values[positions[k]] == v for k, v in where.items()):
                found.append((combo, values, int(count)))
        return found

    async def find(self, where: Where = None, *, limit: int = 100) -> list[dict[str, Any]]:
        where = where or {}
        check_indexed(self._indexed, where)
        combos = await self._combos(where)
        if not combos or limit < 1:
            return []
        prefix = self._prefix
        ranges = await self._store._pipelined(
            "zrevrange",
            lambda pipe: [
                pipe.zrevrange(prefix + "c:" + c, 0, limit - 1, withscores=True)
                for c, _, _ in combos
            ],
        )
        newest = sorted((pair for r in ranges for pair in r), key=lambda p: -p[1])[:limit]
        bodies = await self._store._pipelined(
            "hgetall", lambda pipe: [pipe.hgetall(prefix + "d:" + i) for i, _ in newest]
        )
        # A document dropped or changed between the two reads is left out, not half-read.
        documents = [{k: json.loads(v) for k, v in b.items()} for b in bodies if b]
        return [d for d in documents if all(d.get(k) == v for k, v in where.items())]

    async def count(self, where: Where = None, *, group_by: str) -> dict[Scalar, int]:
        where = where or {}
        check_indexed(self._indexed, [*where, group_by])
        position = self._indexed.index(group_by)
        counts: dict[Scalar, int] = {}
        for _, values, count in await self._combos(where):
            counts[values[position]] = counts.get(values[position], 0) + count
        return counts


class RedisLog:
    """:class:`~pynomaly_security.storage.base.EntryLog` on Redis: a list per stream
    and a sorted set of streams by last append, both trimmed in one Lua step
    (``_lua/log_append.lua``)."""

    # Entries per script call: a big flush is cut so Redis is never busy long.
    _BATCH = 1000

    def __init__(self, store: RedisStore, prefix: str, max_entries: int, max_streams: int) -> None:
        if max_entries < 1 or max_streams < 1:
            raise ConfigurationError("max_entries and max_streams must be >= 1")
        self._store = store
        self._prefix = prefix
        self._keys = [prefix + "streams", prefix + "seq"]
        self._head = [prefix + "s:", max_entries, max_streams]

    async def append(self, chunks: Sequence[tuple[str, Sequence[Any]]]) -> None:
        args: list[Any] = []
        entries = 0
        for stream, values in chunks:
            args += [_name(stream), len(values), *map(_json, values)]
            entries += len(values)
            if entries >= self._BATCH:
                await self._store._run_script("log_append", self._keys, self._head + args)
                args, entries = [], 0
        if args:
            await self._store._run_script("log_append", self._keys, self._head + args)

    async def read(self, stream: str, *, limit: int | None = None) -> list[Any]:
        end = -1 if limit is None else limit - 1
        key = (self._prefix + "s:").encode() + _name(stream)
        values = await self._store._call("lrange", key, 0, end)
        return [json.loads(v) for v in values]

    async def streams(self) -> int:
        return int(await self._store._call("zcard", self._prefix + "streams"))
