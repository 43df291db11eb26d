"""Every kind of state behind one registry of backends, selected by URL.

``StorageRegistry`` (``registry.py``) builds one backend per URL, and every
component naming that URL shares its one connection pool; the capability
Protocols are in ``base.py``, one module per backend (``memory.py``,
``sqlite.py``, ``redis.py``, ``postgres.py``)::

    memory://          shared state in one process (default), monitor state
    sqlite:///path     audit trail, token vault, monitor state (durable, no server)
    redis://host/0     shared state, token vault and monitor state for every worker
                       and host; also rediss://, unix://
    postgresql://...   audit trail, token vault, monitor state (durable, shared);
                       also postgres://

``create_store(url)`` builds one store with a backend of its own, for scripts
and tests.
"""

from __future__ import annotations

from pynomaly_security.storage.base import (
    DEFAULT_FAILURE_POLICIES,
    Backend,
    BackendOptions,
    CounterStore,
    FailurePolicy,
    KeyValueStore,
    MemberStore,
    SlidingWindowStore,
    Store,
    failure_policy,
)
from pynomaly_security.storage.registry import (
    BACKENDS,
    StorageRegistry,
    backend_from_url,
    create_store,
)

__all__ = [
    "BACKENDS",
    "DEFAULT_FAILURE_POLICIES",
    "Backend",
    "BackendOptions",
    "CounterStore",
    "FailurePolicy",
    "KeyValueStore",
    "MemberStore",
    "SlidingWindowStore",
    "StorageRegistry",
    "Store",
    "backend_from_url",
    "create_store",
    "failure_policy",
]
