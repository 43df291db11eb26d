"""Audit stores, selected by URL (``sqlite:///...`` or ``postgresql://...``)."""

from __future__ import annotations

from pynomaly_security.audit.stores.base import (
    AppendTxn,
    AuditStore,
    Checkpoint,
    RecordFilter,
    SealedRecord,
)
from pynomaly_security.exceptions import ConfigurationError

__all__ = [
    "AppendTxn",
    "AuditStore",
    "Checkpoint",
    "RecordFilter",
    "SealedRecord",
    "create_store",
]


def create_store(url: str, *, prefix: str = "audit", create: bool = True) -> AuditStore:
    """Build (not open) the store for ``url``; drivers are imported lazily.

    ``create=False`` (readers: verify, export) refuses a missing SQLite file
    instead of creating an empty one.
    """
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        from pynomaly_security.audit.stores.sqlite import SQLiteAuditStore

        return SQLiteAuditStore(url, prefix=prefix, create=create)
    if scheme in ("postgresql", "postgres"):
        from pynomaly_security.audit.stores.postgres import PostgresAuditStore

        return PostgresAuditStore(url, prefix=prefix)
    raise ConfigurationError(
        f"audit_db_url scheme {scheme!r} is not supported; use sqlite:///<path> or postgresql://..."
    )
