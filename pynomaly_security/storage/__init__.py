"""Shared state for abuse control: one Protocol, a bounded memory backend and Redis.

``create_store(url)`` picks the backend by URL scheme from an explicit registry
(like limits' ``storage_from_string``)::

    memory://          MemoryStore (default; one process)
    redis://host/0     RedisStore (shared by workers and hosts); also rediss://
"""

from __future__ import annotations

import importlib
from typing import Any, cast

from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.storage.base import (
    DEFAULT_FAILURE_POLICIES,
    CounterStore,
    FailurePolicy,
    KeyValueStore,
    MemberStore,
    SlidingWindowStore,
    Store,
    failure_policy,
)

__all__ = [
    "DEFAULT_FAILURE_POLICIES",
    "STORE_SCHEMES",
    "CounterStore",
    "FailurePolicy",
    "KeyValueStore",
    "MemberStore",
    "SlidingWindowStore",
    "Store",
    "create_store",
    "failure_policy",
]

STORE_SCHEMES: dict[str, str] = {
    "memory": "pynomaly_security.storage.memory:MemoryStore",
    "redis": "pynomaly_security.storage.redis:RedisStore",
    "rediss": "pynomaly_security.storage.redis:RedisStore",
    "unix": "pynomaly_security.storage.redis:RedisStore",
}


def create_store(url: str = "memory://", **options: Any) -> Store:
    """Build the store a URL names; ``options`` go to its constructor
    (``max_keys=`` for memory, ``key_prefix=`` for Redis, ``clock=`` for both)."""
    scheme, sep, _ = url.partition("://")
    if not sep or scheme not in STORE_SCHEMES:
        raise ConfigurationError(
            f"unknown store URL scheme {scheme!r}; expected one of {sorted(STORE_SCHEMES)}"
        )
    module_name, _, class_name = STORE_SCHEMES[scheme].partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if scheme == "memory":
        return cast(Store, cls(**options))
    return cast(Store, cls(url, **options))
