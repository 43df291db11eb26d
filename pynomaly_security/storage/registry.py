"""One registry of backends: a URL picks the backend of every kind of state.

``BACKENDS`` maps each URL scheme to the class of its module (like limits'
``storage_from_string`` and uvicorn's import strings; drivers are imported only
when their scheme is used)::

    memory://               storage/memory.py    MemoryBackend    store, state
    sqlite:///path          storage/sqlite.py    SQLiteBackend    audit_log, token_vault, state
    redis:// rediss:// unix://
                            storage/redis.py     RedisBackend     store, token_vault, state
    postgresql:// postgres://
                            storage/postgres.py  PostgresBackend  audit_log, token_vault, state

A :class:`StorageRegistry` builds one backend per URL, so every component that
names a URL shares its one connection pool (a Redis pool, an asyncpg pool, one
SQLite connection and thread per file). The application builds one registry
from its settings and passes it to the components; its lifespan opens the pools
(:meth:`StorageRegistry.start`) and closes them last (:meth:`StorageRegistry.aclose`).

Adding a backend: a module with a class taking ``(url, BackendOptions)``, with
``url``, ``shared``, ``connection`` (a :class:`~pynomaly_security.storage._shared.Shared`)
and ``healthcheck()``, plus one method per capability it provides (``store``,
``audit_log``, ``token_vault``, ``state``; see ``storage/base.py``); then one line in
``BACKENDS``. ``storage/redis.py`` is the example to read.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import fields
from typing import TYPE_CHECKING, Any, cast

from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.storage.base import Backend, BackendOptions, MonitorState, Store

if TYPE_CHECKING:
    from pynomaly_security.audit.stores.base import AuditStore
    from pynomaly_security.protection.vault.base import TokenVault
    from pynomaly_security.settings import SecuritySettings

__all__ = ["BACKENDS", "StorageRegistry", "backend_from_url", "create_store"]

BACKENDS: dict[str, str] = {
    "memory": "pynomaly_security.storage.memory:MemoryBackend",
    "sqlite": "pynomaly_security.storage.sqlite:SQLiteBackend",
    "redis": "pynomaly_security.storage.redis:RedisBackend",
    "rediss": "pynomaly_security.storage.redis:RedisBackend",
    "unix": "pynomaly_security.storage.redis:RedisBackend",
    "postgresql": "pynomaly_security.storage.postgres:PostgresBackend",
    "postgres": "pynomaly_security.storage.postgres:PostgresBackend",
}

# What each capability is, for the error naming what a backend lacks.
_CAPABILITIES = {
    "store": "counters, sliding windows, key-value records or member sets (shared state)",
    "audit_log": "append-only audit log",
    "token_vault": "token vault",
    "state": "monitor state (documents, logs, tallies)",
}


def _scheme(url: str) -> str:
    scheme, sep, _ = url.partition(":")
    scheme = scheme.lower()
    if not sep or scheme not in BACKENDS:
        raise ConfigurationError(
            f"unknown store URL scheme {scheme!r}; expected one of {sorted(BACKENDS)}"
        )
    return scheme


def _backend_class(scheme: str) -> type[Any]:
    module_name, _, class_name = BACKENDS[scheme].partition(":")
    return cast(type[Any], getattr(importlib.import_module(module_name), class_name))


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rsplit('@', 1)[-1]}"


def backend_from_url(url: str, options: BackendOptions | None = None) -> Backend:
    """Build (not open) the backend ``url`` names; ConfigurationError for an unknown scheme."""
    cls = _backend_class(_scheme(url))
    return cast(Backend, cls(url, options if options is not None else BackendOptions()))


class StorageRegistry:
    """One backend (one connection pool) per URL, shared by every component.

    Args:
        options: ``BackendOptions`` fields (``max_keys``, ``socket_timeout``,
            ``create``, ``clock``, ...) given to every backend.

    Use ``async with registry:`` or :meth:`start` / :meth:`aclose` from the lifespan.
    """

    def __init__(self, **options: Any) -> None:
        self.options = BackendOptions(**options)
        self._backends: dict[str, Backend] = {}
        self._open: list[Backend] = []

    @classmethod
    def from_settings(cls, settings: SecuritySettings, **options: Any) -> StorageRegistry:
        """The registry of an application: memory stores bounded by ``MAX_TRACKED_KEYS``."""
        return cls(**{"max_keys": settings.max_tracked_keys, **options})

    def backend(self, url: str) -> Backend:
        """The backend of ``url``, built on first request; the same object afterwards."""
        found = self._backends.get(url)
        if found is not None:
            return found
        cls = _backend_class(_scheme(url))
        key_of: Callable[[str], str] | None = getattr(cls, "key", None)
        key = key_of(url) if key_of is not None else url
        found = self._backends.get(key)
        if found is None:
            found = cast(Backend, cls(url, self.options))
            self._backends[key] = found
        self._backends[url] = found
        return found

    def _capability(self, url: str, name: str, setting: str | None) -> Callable[..., Any]:
        backend = self.backend(url)
        factory: Callable[..., Any] | None = getattr(backend, name, None)
        if factory is None:
            able = [s for s in BACKENDS if hasattr(_backend_class(s), name)]
            where = f" ({setting})" if setting else ""
            raise ConfigurationError(
                f"{_redact(url)}{where}: the {_scheme(url)} backend has no"
                f" {_CAPABILITIES[name]}; use one of {', '.join(s + '://' for s in able)}"
            )
        return factory

    def store(self, url: str, *, setting: str | None = None, **options: Any) -> Store:
        """Counters, sliding windows, key-value records and member sets on ``url``
        (``key_prefix=`` on Redis); ``setting`` names the variable in errors."""
        return cast(Store, self._capability(url, "store", setting)(**options))

    def audit_log(
        self, url: str, *, prefix: str = "audit", setting: str | None = None
    ) -> AuditStore:
        """The audit trail's append-only log on ``url`` (tables ``<prefix>_*``)."""
        return cast("AuditStore", self._capability(url, "audit_log", setting)(prefix=prefix))

    def token_vault(self, url: str, *, setting: str | None = None, **options: Any) -> TokenVault:
        """The token vault on ``url`` (``table=`` on SQL, ``prefix=`` on Redis)."""
        return cast("TokenVault", self._capability(url, "token_vault", setting)(**options))

    def state(self, url: str, *, setting: str | None = None, **options: Any) -> MonitorState:
        """The monitor's alerts, activity and counters on ``url`` (``prefix=`` on SQL,
        ``key_prefix=`` on Redis; memory: the URL's one store)."""
        return cast(MonitorState, self._capability(url, "state", setting)(**options))

    async def start(self) -> None:
        """Open the pool of every backend built so far (idempotent)."""
        for backend in {id(b): b for b in self._backends.values()}.values():
            if backend not in self._open:
                await backend.connection.acquire()
                self._open.append(backend)

    async def aclose(self) -> None:
        """Close every pool, whoever still holds it (the application is shutting down)."""
        backends = {id(b): b for b in self._backends.values()}.values()
        self._open.clear()
        for backend in backends:
            await backend.connection.close()

    async def healthcheck(self) -> dict[str, bool]:
        """Whether each backend answers, by (password-free) URL."""
        backends = {id(b): b for b in self._backends.values()}.values()
        return {_redact(b.url): await b.healthcheck() for b in backends}

    async def __aenter__(self) -> StorageRegistry:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


_OPTION_NAMES = frozenset(f.name for f in fields(BackendOptions))


def create_store(url: str = "memory://", **options: Any) -> Store:
    """A store with a backend of its own, closed with it (scripts, tests, one-off tools).

    ``options`` are ``BackendOptions`` fields (``max_keys=``, ``socket_timeout=``,
    ``clock=``, ...) and the store's own (``key_prefix=`` on Redis). An application
    builds one :class:`StorageRegistry` instead, so its components share one pool.
    """
    backend_options = {k: options.pop(k) for k in list(options) if k in _OPTION_NAMES}
    registry = StorageRegistry(**backend_options)
    return registry.store(url, **options)
