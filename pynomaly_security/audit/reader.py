"""Reading the trail back: decrypted queries, export rows, retention."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from pynomaly_security.audit.chain import Sealer
from pynomaly_security.audit.compliance import controls_for
from pynomaly_security.audit.records import AuditEntry
from pynomaly_security.audit.stores.base import AuditStore, RecordFilter, SealedRecord

__all__ = ["AuditReader"]


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).isoformat().replace("+00:00", "Z")


def _us(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1_000_000)


class AuditReader:
    def __init__(self, store: AuditStore, sealer: Sealer) -> None:
        self._store = store
        self._sealer = sealer

    async def query(
        self,
        *,
        since: float | None,
        until: float | None,
        subject_refs: tuple[str, ...] | None,
        event_type: str | None,
        standard: str | None,
        limit: int,
        offset: int,
    ) -> list[dict[str, Any]]:
        flt = RecordFilter(
            since_us=_us(since),
            until_us=_us(until),
            subject_refs=subject_refs,
            event_type=event_type,
            standard=standard,
            limit=limit,
            offset=offset,
        )
        return await self.open_rows(await self._store.query(flt))

    async def open_rows(self, rows: Sequence[SealedRecord]) -> list[dict[str, Any]]:
        refs = sorted({r.subject_ref for r in rows if r.subject_ref is not None})
        keys = await self._store.subject_keys(refs) if refs else {}
        out = []
        for rec in rows:
            standards = [s for s in rec.standards.split(",") if s]
            doc: dict[str, Any] = {
                "seq": rec.seq,
                "timestamp": _iso(rec.ts_us / 1_000_000),
                "ts": rec.ts_us / 1_000_000,
                "kind": rec.kind,
                "event_type": rec.event_type,
                "level": rec.level,
                "standards": standards,
                "controls": controls_for(rec.event_type, tuple(standards)),
                "request_id": rec.request_id,
                "key_id": rec.key_id,
            }
            doc.update(self._sealer.open(rec, keys))
            out.append(doc)
        return out

    def export_dict(self, entry: AuditEntry, seq: int) -> dict[str, Any]:
        """The export shape of a just-committed entry (for compliance handlers)."""
        standards = [s.value for s in entry.standards]
        return {
            "seq": seq,
            "timestamp": _iso(entry.timestamp),
            "ts": entry.timestamp,
            "kind": entry.kind.value,
            "event_type": entry.event_type,
            "level": entry.level.value,
            "standards": standards,
            "controls": controls_for(entry.event_type, tuple(standards)),
            "request_id": entry.request_id,
            "user_id": entry.user_id,
            "source_ip": entry.source_ip,
            **entry.payload,
        }

    async def prune_before(self, cutoff: float) -> int:
        """Delete the newest whole checkpointed segment signed before ``cutoff``.

        Only records covered by a checkpoint are pruned, and the checkpoint
        stays, so the verifier can anchor the remaining chain on it.
        """
        cutoff_us = int(cutoff * 1_000_000)
        old = [cp for cp in await self._store.checkpoints() if cp.ts_us < cutoff_us]
        if not old:
            return 0
        return await self._store.prune(old[-1].seq)
