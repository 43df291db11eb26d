"""The audit trail's append-only log: its Protocol (``base.py``) and its SQL per backend.

A store is a capability of a storage backend, built by the registry from
``AUDIT_DB_URL``: ``StorageRegistry.audit_log("sqlite:///...")`` or
``...("postgresql://...")`` (see ``pynomaly_security.storage``).
"""

from __future__ import annotations

from pynomaly_security.audit.stores.base import (
    AppendTxn,
    AuditStore,
    Checkpoint,
    RecordFilter,
    SealedRecord,
)

__all__ = [
    "AppendTxn",
    "AuditStore",
    "Checkpoint",
    "RecordFilter",
    "SealedRecord",
]
