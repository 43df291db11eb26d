"""Reading the trail back: decrypted queries, export rows, retention.

Queries return *entries*: an ordinary record is one entry, an access batch
(``batch.py``) expands to one entry per access row. Entries come in time order
(ties by sequence number, then row), merged exactly: the store yields records
by ``(ts_us, seq)`` and a batch's rows are never older than its ``ts_us``, so
a row can be emitted as soon as the next record's ``ts_us`` passes it. Filters
apply per entry, then ``offset``/``limit`` (so paging costs a scan of
``offset`` entries; :meth:`AuditReader.iter_entries` streams without one).
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
from collections.abc import AsyncGenerator, Sequence
from dataclasses import replace
from typing import Any

from pynomaly_security.audit.batch import ACCESS_BATCH, batch_refs, open_batch
from pynomaly_security.audit.chain import UNREADABLE, Sealer, payload_aad
from pynomaly_security.audit.compliance import controls_for
from pynomaly_security.audit.records import AuditEntry
from pynomaly_security.audit.stores.base import AuditStore, RecordFilter, SealedRecord
from pynomaly_security.exceptions import InvalidToken

__all__ = ["AuditReader"]

_PAGE = 500
_Item = tuple[int, int, int, dict[str, Any]]


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
        tenant: str | None = None,
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if limit <= 0:
            return out
        entries = self.iter_entries(
            since=since, until=until, subject_refs=subject_refs,
            event_type=event_type, standard=standard, tenant=tenant,
        )  # fmt: skip
        async for doc in entries:
            if offset > 0:
                offset -= 1
                continue
            out.append(doc)
            if len(out) >= limit:
                break
        await entries.aclose()
        return out

    async def iter_entries(
        self,
        *,
        since: float | None,
        until: float | None,
        subject_refs: tuple[str, ...] | None,
        event_type: str | None,
        standard: str | None,
        tenant: str | None = None,
    ) -> AsyncGenerator[dict[str, Any]]:
        """Every matching entry, oldest first (access batches expanded); ``tenant``:
        only that tenant's (a column of the hashed record, filtered in SQL)."""
        since_us, until_us = _us(since), _us(until)
        wanted = None if subject_refs is None else frozenset(subject_refs)
        flt = RecordFilter(
            since_us=since_us, until_us=until_us, subject_refs=subject_refs,
            event_type=event_type, standard=standard, limit=_PAGE, by_time=True,
            tenant=tenant,
        )  # fmt: skip
        heap: list[_Item] = []
        while True:
            records = await self._store.query(flt)
            for rec, items in zip(records, await self._expand(records), strict=True):
                # Every later record's entries sort at or after (rec.ts_us, rec.seq).
                while heap and heap[0][:2] < (rec.ts_us, rec.seq):
                    yield heapq.heappop(heap)[3]
                for item in items:
                    ts_us, doc = item[0], item[3]
                    if since_us is not None and ts_us < since_us:
                        continue
                    if until_us is not None and ts_us >= until_us:
                        continue
                    ref = doc.pop("subject_ref", None)
                    # Non-batch records matched exactly in SQL; batch rows match here.
                    if wanted is not None and rec.kind == ACCESS_BATCH and ref not in wanted:
                        continue
                    heapq.heappush(heap, item)
            if len(records) < _PAGE:
                break
            flt = replace(flt, after=(records[-1].ts_us, records[-1].seq))
        while heap:
            yield heapq.heappop(heap)[3]

    async def _expand(self, records: Sequence[SealedRecord]) -> list[list[_Item]]:
        """Decrypt records into sortable entries ``(ts_us, seq, row, doc)``."""
        bodies: dict[int, dict[str, Any]] = {}
        refs = {r.subject_ref for r in records if r.subject_ref is not None}
        for rec in records:
            if rec.kind != ACCESS_BATCH:
                continue
            try:
                aad = payload_aad(rec, b"payload")
                body = json.loads(self._sealer.keys.decrypt(rec.key_id, rec.payload, aad))
            except (InvalidToken, ValueError):
                continue
            bodies[rec.seq] = body
            refs.update(batch_refs(body))
        keys = await self._store.subject_keys(sorted(refs)) if refs else {}
        out: list[list[_Item]] = []
        for rec in records:
            head = self._head(rec)
            if rec.kind != ACCESS_BATCH:
                doc = {**head, **self._sealer.open(rec, keys), "subject_ref": rec.subject_ref}
                out.append([(rec.ts_us, rec.seq, 0, doc)])
                continue
            body = bodies.get(rec.seq)
            if body is None:
                out.append([(rec.ts_us, rec.seq, 0, {**head, "payload": UNREADABLE})])
                continue
            items: list[_Item] = []
            for ts_us, row in open_batch(self._sealer.keys, rec, body, keys, payload_aad):
                doc = {**head, **row, "kind": "request"}
                doc["timestamp"], doc["ts"] = _iso(ts_us / 1_000_000), ts_us / 1_000_000
                items.append((ts_us, rec.seq, row["batch_index"], doc))
            out.append(items)
        return out

    async def records_at(self, seqs: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The decrypted chain records at ``seqs`` (one read each; access batches are
        not expanded), by sequence number; a pruned or missing number is absent."""
        found: list[SealedRecord] = []
        for seq in sorted(set(seqs)):
            rows = await self._store.records(seq - 1, 1)
            if rows and rows[0].seq == seq:
                found.append(rows[0])
        refs = sorted({r.subject_ref for r in found if r.subject_ref is not None})
        keys = await self._store.subject_keys(refs) if refs else {}
        out: dict[int, dict[str, Any]] = {}
        for rec in found:
            out[rec.seq] = {**self._head(rec), **self._sealer.open(rec, keys)}
        return out

    def _head(self, rec: SealedRecord) -> dict[str, Any]:
        standards = [s for s in rec.standards.split(",") if s]
        head = {
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
        if rec.tenant is not None:  # only then: records of no tenant read as before
            head["tenant"], head["tenant_seq"] = rec.tenant, rec.tenant_seq
        return head

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
        # Never through the newest checkpoint: the head record stays, and an
        # interim checkpoint (always the newest, replaced by the next) is never
        # the one the remaining chain rests on.
        old = [cp for cp in (await self._store.checkpoints())[:-1] if cp.ts_us < cutoff_us]
        if not old:
            return 0
        return await self._store.prune(old[-1].seq)
