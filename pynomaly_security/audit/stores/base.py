"""The storage Protocol of the audit trail.

A store keeps sealed rows, signed checkpoints, wrapped subject keys and the
checkpoint public keys. It knows nothing about hashing or encryption: the
chain logic (``audit/chain.py``) runs inside :meth:`AuditStore.transaction`,
which serializes appends across processes (SQLite ``BEGIN IMMEDIATE``,
PostgreSQL advisory lock), so many workers keep one chain.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["AppendTxn", "AuditStore", "Checkpoint", "RecordFilter", "SealedRecord"]


@dataclass(frozen=True, slots=True)
class SealedRecord:
    """One stored row; ``hash = H(prev_hash || canonical(row without hash))``."""

    seq: int
    ts_us: int
    kind: str
    event_type: str
    level: str
    standards: str
    request_id: str | None
    subject_ref: str | None
    key_id: str
    payload: bytes
    personal: bytes | None
    prev_hash: bytes
    hash: bytes
    tenant: str | None = None
    """The tenant the record was written for (issue 21; None: the platform, or a trail
    without tenancy). Hashed with the other columns, so it cannot be changed."""
    tenant_seq: int | None = None
    """The record's number among its tenant's records (1, 2, ...): a gap in a tenant's
    numbers is a missing record of that tenant (``verify(tenant=...)``)."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement "the chain had head ``head_hash`` at ``seq``"."""

    seq: int
    head_hash: bytes
    ts_us: int
    key_id: str
    signature: bytes
    anchored: bool = field(default=False, compare=False)
    """Whether the signed statement says "this checkpoint was also sent to an
    anchor" (message version 2, see ``chain.checkpoint_message``). Not a store
    column: the verifier learns it from which message the signature verifies."""

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form, as anchored outside the store (SIEM, WORM storage)."""
        doc: dict[str, object] = {
            "seq": self.seq,
            "head_hash": self.head_hash.hex(),
            "ts_us": self.ts_us,
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode(),
        }
        if self.anchored:
            doc["anchored"] = True
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Checkpoint:
        """Inverse of :meth:`to_dict`; ValueError/KeyError/TypeError on a malformed one."""
        return cls(
            seq=int(doc["seq"]),
            head_hash=bytes.fromhex(str(doc["head_hash"])),
            ts_us=int(doc["ts_us"]),
            key_id=str(doc["key_id"]),
            signature=base64.b64decode(str(doc["signature"]), validate=True),
            anchored=doc.get("anchored") is True,
        )


@dataclass(frozen=True, slots=True)
class RecordFilter:
    """Which rows :meth:`AuditStore.query` returns.

    ``since_us`` also admits ``access_batch`` records up to ``MAX_SPAN_US`` older
    (their ``ts_us`` is their oldest row's); ``subject_refs`` matches a record's
    ``subject_ref`` or a batch indexed under one of them. ``by_time`` orders by
    ``(ts_us, seq)`` and ``after`` is a keyset cursor on that order.
    """

    since_us: int | None = None
    until_us: int | None = None
    subject_refs: tuple[str, ...] | None = None
    event_type: str | None = None
    standard: str | None = None
    limit: int = 100
    offset: int = 0
    by_time: bool = False
    after: tuple[int, int] | None = None
    tenant: str | None = None
    """Only this tenant's records (None: every record)."""


class AppendTxn(Protocol):
    """Operations available inside one serialized append transaction."""

    async def head(self) -> tuple[int, bytes]:
        """Last sequence number and hash (a pruned store falls back to its checkpoint)."""

    async def last_checkpoint(self) -> Checkpoint | None:
        """The newest checkpoint."""

    async def subject_keys(self, refs: Sequence[str]) -> dict[str, tuple[str, bytes]]:
        """ref -> (key_id, wrapped key) for the refs that have a key."""

    async def put_subject_keys(self, items: Sequence[tuple[str, str, bytes]]) -> None:
        """Insert (ref, key_id, wrapped key) rows."""

    async def insert(self, records: Sequence[SealedRecord]) -> None:
        """Insert sealed rows."""

    async def insert_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Insert a signed checkpoint."""

    async def index_subjects(self, items: Sequence[tuple[str, int]]) -> None:
        """Insert (ref, seq) rows: access batch ``seq`` holds rows of subject ``ref``."""

    async def delete_checkpoint(self, seq: int) -> None:
        """Delete the checkpoint at ``seq`` (an interim one a newer checkpoint supersedes)."""

    async def records(self, after_seq: int, limit: int) -> list[SealedRecord]:
        """Rows with ``seq > after_seq`` in sequence order (inside the transaction)."""

    async def tenant_heads(self, tenants: Sequence[str]) -> dict[str, int]:
        """tenant -> its highest ``tenant_seq`` so far (tenants with no record absent)."""


class AuditStore(Protocol):
    """Where the audit trail lives; use as ``async with store:``."""

    async def open(self) -> None:
        """Connect and create the schema if missing."""

    async def aclose(self) -> None:
        """Release connections and threads."""

    def transaction(self) -> AbstractAsyncContextManager[AppendTxn]:
        """One serialized, durable append transaction (commit on exit)."""

    async def records(self, after_seq: int, limit: int) -> list[SealedRecord]:
        """Rows with ``seq > after_seq`` in sequence order (the verifier's walk)."""

    async def query(self, flt: RecordFilter) -> list[SealedRecord]:
        """Rows matching a filter, oldest first, paged."""

    async def checkpoints(self) -> list[Checkpoint]:
        """Every checkpoint in sequence order."""

    async def subject_keys(self, refs: Sequence[str]) -> dict[str, tuple[str, bytes]]:
        """ref -> (key_id, wrapped key), outside an append."""

    async def delete_subject_keys(self, refs: Sequence[str]) -> int:
        """Destroy subject keys (crypto-shredding); returns how many existed."""

    async def tenant_subject_refs(self, tenant: str) -> list[str]:
        """The subject refs the records of ``tenant`` are sealed under (issue 21)."""

    async def public_keys(self) -> dict[str, bytes]:
        """Checkpoint public keys by key id, as published by the writers."""

    async def put_public_key(self, key_id: str, public_key: bytes) -> None:
        """Publish a checkpoint public key (idempotent)."""

    async def prune(self, through_seq: int) -> int:
        """Delete rows (and their subject index) with ``seq <= through_seq``; returns how many."""
