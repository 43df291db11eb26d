"""The verifier: walk the chain and the signed checkpoints, name the first fault.

Faults, by the first sequence number at which they show:

* ``forged_checkpoint`` a checkpoint whose Ed25519 signature fails or whose key is unknown;
* ``deleted``   a sequence number is missing (or a record links to a vanished one);
* ``reordered`` a record links to a record stored *after* it;
* ``inserted``  a record is not linked into the chain (its successor links past it);
* ``edited``    a record no longer matches its hash (or was re-hashed alone);
* ``forged_record`` a record's ciphertext does not authenticate with its
  columns and position (checked when the master key is available): a
  consistent forgery by someone without the key;
* ``rewritten`` the chain was re-hashed consistently but no longer matches a signed checkpoint;
* ``truncated`` records the last signed checkpoint covers are missing from the tail.

Records after the last checkpoint are reported as unsigned: they are chained
but only the next checkpoint protects them against a truncation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from pynomaly_security.audit._keys import AuditKeys
from pynomaly_security.audit.chain import ZERO_HASH, checkpoint_message, payload_aad, record_hash
from pynomaly_security.audit.stores.base import AuditStore, Checkpoint, SealedRecord
from pynomaly_security.exceptions import InvalidToken

__all__ = ["VerifyResult", "verify_store"]

_BATCH = 2000


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    count: int
    message: str
    first_bad_seq: int | None = None
    problem: str | None = None
    checkpoints: int = 0
    last_checkpoint_seq: int | None = None
    unsigned_tail: int = 0
    pruned_through: int | None = None
    pinned_keys: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Fault(Exception):
    def __init__(self, seq: int, problem: str, message: str) -> None:
        super().__init__(message)
        self.seq, self.problem, self.message = seq, problem, message


def _check_signatures(cps: list[Checkpoint], public_keys: Mapping[str, bytes]) -> None:
    for cp in cps:
        raw = public_keys.get(cp.key_id)
        if raw is None:
            raise _Fault(
                cp.seq,
                "forged_checkpoint",
                f"checkpoint at seq {cp.seq} is signed by unknown key {cp.key_id}",
            )
        try:
            Ed25519PublicKey.from_public_bytes(raw).verify(
                cp.signature, checkpoint_message(cp.seq, cp.head_hash, cp.ts_us)
            )
        except (InvalidSignature, ValueError) as exc:
            raise _Fault(
                cp.seq,
                "forged_checkpoint",
                f"checkpoint at seq {cp.seq} has an invalid signature (forged)",
            ) from exc


class _Walk:
    """Per-run state (the verifier itself holds none)."""

    def __init__(self, cps: list[Checkpoint], keys: AuditKeys | None) -> None:
        self.cp_by_seq = {cp.seq: cp for cp in cps}
        self.keys = keys
        self.seen: dict[bytes, int] = {}
        self.prev_seq, self.prev_hash = 0, ZERO_HASH
        self.count = 0
        self.pruned_through: int | None = None

    def anchor(self, first: SealedRecord) -> None:
        if first.seq == 1:
            return
        cp = self.cp_by_seq.get(first.seq - 1)
        if cp is None or cp.head_hash != first.prev_hash:
            span = "1" if first.seq == 2 else f"1..{first.seq - 1}"
            raise _Fault(
                1, "deleted", f"records {span} are missing and no signed checkpoint covers them"
            )
        self.prev_seq, self.prev_hash = cp.seq, cp.head_hash
        self.pruned_through = cp.seq

    def locate(self, digest: bytes, ahead: Callable[[], list[SealedRecord]]) -> int | None:
        if digest in self.seen:
            return self.seen[digest]
        return next((r.seq for r in ahead() if r.hash == digest), None)

    def step(
        self, rec: SealedRecord, nxt: SealedRecord | None, ahead: Callable[[], list[SealedRecord]]
    ) -> None:
        n = rec.seq
        if n != self.prev_seq + 1:
            missing = self.prev_seq + 1
            span = str(missing) if n == missing + 1 else f"{missing}..{n - 1}"
            raise _Fault(
                missing,
                "deleted",
                f"record {span} is missing (sequence jumps from {self.prev_seq} to {n})",
            )
        linked = rec.prev_hash == self.prev_hash
        where = None if linked else self.locate(rec.prev_hash, ahead)
        if where is not None and where > n:
            raise _Fault(
                n,
                "reordered",
                f"record {n} is out of order: it links to record {where}, stored after it",
            )
        if nxt is not None and nxt.prev_hash == self.prev_hash and rec.hash != nxt.prev_hash:
            raise _Fault(
                n,
                "inserted",
                f"record {n} was inserted:"
                f" record {nxt.seq} links past it to record {self.prev_seq}",
            )
        if not linked:
            if where is not None:
                raise _Fault(
                    where + 1,
                    "inserted",
                    f"records {where + 1}..{n - 1} were inserted:"
                    f" record {n} links to record {where}",
                )
            if record_hash(rec) == rec.hash and self.prev_seq:
                raise _Fault(
                    self.prev_seq,
                    "edited",
                    f"record {self.prev_seq} was altered and re-hashed"
                    f" (record {n} links to its original hash)",
                )
            raise _Fault(
                n,
                "edited",
                f"record {n} links to a record that does not exist"
                " (edited, or its predecessor deleted)",
            )
        if record_hash(rec) != rec.hash:
            raise _Fault(n, "edited", f"record {n} was edited: its content does not match its hash")
        if self.keys is not None and self.keys.has_key(rec.key_id):
            try:
                self.keys.decrypt(rec.key_id, rec.payload, payload_aad(rec, b"payload"))
            except InvalidToken:
                raise _Fault(
                    n,
                    "forged_record",
                    f"record {n} does not authenticate under the audit key:"
                    " forged, or edited by someone without the key",
                ) from None
        cp = self.cp_by_seq.get(n)
        if cp is not None and cp.head_hash != rec.hash:
            raise _Fault(
                n,
                "rewritten",
                f"the chain up to record {n} was rewritten:"
                f" it does not match the signed checkpoint at seq {n}",
            )
        self.seen[rec.hash] = n
        if len(self.seen) > 4 * _BATCH:
            for key in list(self.seen)[: 2 * _BATCH]:
                del self.seen[key]
        self.prev_seq, self.prev_hash = n, rec.hash
        self.count += 1


def _seq(cp: Checkpoint) -> int:
    return cp.seq


def _merge(stored: list[Checkpoint], anchors: Sequence[Checkpoint]) -> _Fault | None:
    """An anchored checkpoint that the store holds differently means the store's was replaced."""
    by_seq = {cp.seq: cp for cp in stored}
    for anchor in sorted(anchors, key=_seq):
        mine = by_seq.get(anchor.seq)
        if mine is not None and mine != anchor:
            return _Fault(
                anchor.seq,
                "forged_checkpoint",
                f"checkpoint at seq {anchor.seq} differs from its anchored copy",
            )
    return None


def _ahead(batch: list[SealedRecord], i: int, upcoming: list[SealedRecord]) -> list[SealedRecord]:
    return batch[i + 1 :] + upcoming


def _failed(fault: _Fault, walk: _Walk, cps: list[Checkpoint], pinned: bool) -> VerifyResult:
    last = cps[-1].seq if cps else None
    return VerifyResult(
        ok=False, count=walk.count, message=fault.message, first_bad_seq=fault.seq,
        problem=fault.problem, checkpoints=len(cps), last_checkpoint_seq=last, pinned_keys=pinned,
    )  # fmt: skip


async def verify_store(
    store: AuditStore,
    *,
    public_keys: Mapping[str, bytes] | None = None,
    keys: AuditKeys | None = None,
    anchors: Sequence[Checkpoint] = (),
) -> VerifyResult:
    """Verify a whole store.

    Args:
        public_keys: pinned checkpoint keys (key id -> raw Ed25519); without them the
            keys published in the store are used, which proves consistency but not
            authorship (an attacker with write access could replace them).
        keys: the key ring, to also authenticate each record's ciphertext.
        anchors: checkpoints kept outside the store (see
            ``AuditLogger.register_checkpoint_handler``); they must match the
            store's and extend the truncation check past deleted checkpoints.
    """
    stored = await store.checkpoints()
    pinned = public_keys is not None
    pubs = public_keys if public_keys is not None else await store.public_keys()
    conflict = _merge(stored, anchors)
    cps = sorted({**{c.seq: c for c in stored}, **{a.seq: a for a in anchors}}.values(), key=_seq)
    walk = _Walk(cps, keys)
    last_cp = cps[-1] if cps else None
    try:
        if conflict is not None:
            raise conflict
        _check_signatures(cps, pubs)
        batch = await store.records(0, _BATCH)
        if batch:
            walk.anchor(batch[0])
        while batch:
            upcoming = await store.records(batch[-1].seq, _BATCH)
            for i, rec in enumerate(batch):
                nxt = batch[i + 1] if i + 1 < len(batch) else (upcoming[0] if upcoming else None)
                walk.step(rec, nxt, functools.partial(_ahead, batch, i, upcoming))
            batch = upcoming
        if last_cp is not None and walk.prev_seq < last_cp.seq:
            first = walk.prev_seq + 1
            raise _Fault(
                first,
                "truncated",
                f"records {first}..{last_cp.seq} are missing (truncated tail):"
                f" the last signed checkpoint covers seq {last_cp.seq}",
            )
    except (ValueError, TypeError) as exc:
        # A column holding a value of the wrong type (possible in SQLite, whose
        # columns are dynamically typed) cannot be a record we wrote.
        fault = _Fault(walk.prev_seq + 1, "edited", f"a record has a malformed column: {exc}")
        return _failed(fault, walk, cps, pinned)
    except _Fault as fault:
        return _failed(fault, walk, cps, pinned)
    unsigned = walk.prev_seq - (last_cp.seq if last_cp else 0)
    msg = f"{walk.count} records verified, {len(cps)} signed checkpoints"
    if walk.pruned_through is not None:
        msg += f", records 1..{walk.pruned_through} pruned under a signed checkpoint"
    if unsigned > 0:
        msg += f", {unsigned} newest records not yet covered by a checkpoint"
    return VerifyResult(
        ok=True, count=walk.count, message=msg, checkpoints=len(cps),
        last_checkpoint_seq=last_cp.seq if last_cp else None, unsigned_tail=max(unsigned, 0),
        pruned_through=walk.pruned_through, pinned_keys=pinned,
    )  # fmt: skip
