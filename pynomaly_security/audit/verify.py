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
* ``truncated`` records a signed checkpoint (in the store or an anchor) covers are
  missing from the tail, or the chain is shorter than the auditor's ``--min-records``;
* ``unsigned``  records after the last signed checkpoint: writers sign every commit in
  the same transaction, so these were appended outside a writer (forged), or
  the checkpoints covering them were deleted;
* ``empty``     the store holds no record at all;
* ``anchor_missing`` the trail's checkpoints say they were anchored but no anchor
  was given, or the anchor ends before the store's newest anchored checkpoint;
* ``pruned_early`` records were deleted from the start "under a signed checkpoint"
  that is younger than the retention period, so retention did not delete them;
* ``head_mismatch`` the chain does not contain the head the auditor expects;
* ``keys_deleted`` subject keys of records are gone with no erasure record;
* ``tenant_gap`` (``--tenant``) the tenant's records are not numbered 1, 2, 3, ... in
  chain order (``audit/tenants.py``): one of its records is missing or was moved.

Every verdict rests on what the auditor holds: the public key(s) and the
anchor (plus, optionally, an expected length or head). The master key only
adds a check (``forged_record``), it is never needed for one.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from pynomaly_security.audit.batch import ACCESS_BATCH
from pynomaly_security.audit.chain import ZERO_HASH, checkpoint_message, payload_aad, record_hash
from pynomaly_security.audit.records import SecurityEventType
from pynomaly_security.audit.sealing import AuditKeys
from pynomaly_security.audit.stores.base import AuditStore, Checkpoint, SealedRecord
from pynomaly_security.exceptions import InvalidToken

__all__ = ["Expectations", "VerifyResult", "verify_store"]

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
    """Always 0 on success: every commit is signed, so an unsigned record is a fault
    (``unsigned``); kept for readers of the older result."""
    pruned_through: int | None = None
    pinned_keys: bool = False
    head_seq: int | None = None
    head_hash: str | None = None
    anchored: bool = False
    """Whether the store was checked against an anchor."""
    tenant: str | None = None
    tenant_records: int | None = None
    """With ``tenant``: how many of that tenant's records were found, all in number."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Fault(Exception):
    def __init__(self, seq: int, problem: str, message: str) -> None:
        super().__init__(message)
        self.seq, self.problem, self.message = seq, problem, message


def _check_signatures(cps: list[Checkpoint], public_keys: Mapping[str, bytes]) -> list[Checkpoint]:
    """Verify every checkpoint; returns them with ``anchored`` set from the
    message version the signature verifies (an older writer signed version 1)."""
    out = []
    prefer = False
    for cp in cps:
        raw = public_keys.get(cp.key_id)
        if raw is None:
            raise _Fault(
                cp.seq,
                "forged_checkpoint",
                f"checkpoint at seq {cp.seq} is signed by unknown key {cp.key_id}",
            )
        try:
            key = Ed25519PublicKey.from_public_bytes(raw)
        except ValueError as exc:
            raise _Fault(cp.seq, "forged_checkpoint", f"key {cp.key_id} is malformed") from exc
        # The version is not stored: try the one the copy claims (or the last one
        # that verified) first; the signature decides, never the claim.
        first = cp.anchored or prefer
        for anchored in (first, not first):
            try:
                key.verify(
                    cp.signature, checkpoint_message(cp.seq, cp.head_hash, cp.ts_us, anchored)
                )
            except InvalidSignature:
                continue
            out.append(replace(cp, anchored=anchored))
            prefer = anchored
            break
        else:
            raise _Fault(
                cp.seq,
                "forged_checkpoint",
                f"checkpoint at seq {cp.seq} has an invalid signature (forged)",
            )
    return out


class _Walk:
    """Per-run state (the verifier itself holds none)."""

    def __init__(self, cps: list[Checkpoint], keys: AuditKeys | None) -> None:
        self.cp_by_seq = {cp.seq: cp for cp in cps}
        self.keys = keys
        self.seen: dict[bytes, int] = {}
        self.prev_seq, self.prev_hash = 0, ZERO_HASH
        self.count = 0
        self.pruned_through: int | None = None
        self.needs_key: dict[str, int] = {}
        """Subject ref -> newest record sealed under its key."""
        self.erased: dict[str, int] = {}
        """Subject ref -> newest erasure record."""
        self.legacy_erasure = 0
        """Newest erasure record of an older writer whose ref is sealed in its payload
        (unreadable without the master key): keys missing before it may be erased."""
        self.notes: list[str] = []
        self.expect: tuple[int | None, bytes] | None = None
        self.expect_found = False
        self.tenant: str | None = None
        self.tenant_count = 0
        self.tenant_last: int | None = None
        """The tenant's last number seen (None: none yet)."""

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
        self._note(rec)
        self.seen[rec.hash] = n
        if len(self.seen) > 4 * _BATCH:
            for key in list(self.seen)[: 2 * _BATCH]:
                del self.seen[key]
        self.prev_seq, self.prev_hash = n, rec.hash
        self.count += 1

    def _note(self, rec: SealedRecord) -> None:
        if self.expect is not None:
            seq, digest = self.expect
            if rec.hash == digest and seq in (None, rec.seq):
                self.expect_found = True
            elif seq == rec.seq:
                raise _Fault(
                    rec.seq,
                    "head_mismatch",
                    f"record {rec.seq} is not the head the auditor expects"
                    f" ({digest.hex()[:16]}...): the chain was rewritten",
                )
        if rec.tenant is not None and rec.tenant == self.tenant:
            self._tenant_record(rec)
        if rec.kind == ACCESS_BATCH:
            return
        if rec.event_type == _TAMPER:
            raise _Fault(
                rec.seq,
                "forged_record",
                f"record {rec.seq} is a writer's report that records after the last checkpoint"
                " before it did not authenticate under the audit key: they were appended"
                f" outside a writer (export record {rec.seq} with the master key for the span)",
            )
        ref = rec.subject_ref
        if rec.event_type == _ERASED:
            if ref is None and self.keys is not None:
                ref = self._legacy_erased_ref(rec)
            if ref is not None:
                self.erased[ref] = rec.seq
            else:
                self.legacy_erasure = rec.seq
        elif ref is not None:
            self.needs_key[ref] = rec.seq

    def _tenant_record(self, rec: SealedRecord) -> None:
        """The next record of the tenant verified: its number follows the last one (the
        first is 1 unless records were pruned from the start)."""
        number = rec.tenant_seq
        last = self.tenant_last
        # The first is 1, unless records were pruned from the start of the chain.
        first = 1 if self.pruned_through is None else number
        expected = first if last is None else last + 1
        if not isinstance(number, int) or number != expected:
            raise _Fault(
                rec.seq,
                "tenant_gap",
                f"record {rec.seq} is number {number} of tenant {self.tenant!r} where"
                f" {expected} was due: the tenant's record(s) {expected}.. are missing"
                " or were moved",
            )
        self.tenant_last = number
        self.tenant_count += 1

    def _legacy_erased_ref(self, rec: SealedRecord) -> str | None:
        """An erasure written before the ref was a plaintext column: read it
        from the payload (with the master key only)."""
        assert self.keys is not None
        try:
            body = json.loads(
                self.keys.decrypt(rec.key_id, rec.payload, payload_aad(rec, b"payload"))
            )
            ref = body["details"]["subject_ref"]
        except (InvalidToken, ValueError, KeyError, TypeError):
            return None
        return ref if isinstance(ref, str) else None


_ERASED = SecurityEventType.SUBJECT_ERASED.value
_TAMPER = SecurityEventType.AUDIT_TAMPER_DETECTED.value


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


@dataclass(frozen=True, slots=True)
class Expectations:
    """What the auditor holds besides the public key (all optional).

    Args:
        anchors: checkpoints kept outside the store (``anchor.py``).
        anchor_given: an anchor source was named (even if it holds nothing yet).
        min_records: the chain must reach at least this sequence number.
        expect_head: ``(seq or None, hash)`` the chain must contain.
        retention_days: records may only have been pruned under a checkpoint older
            than this (``None``: any pruning is reported as a fault).
        now: the verifier's clock (Unix seconds), for the retention check.
    """

    anchors: Sequence[Checkpoint] = ()
    anchor_given: bool = False
    min_records: int | None = None
    expect_head: tuple[int | None, bytes] | None = None
    retention_days: float | None = None
    now: float | None = None
    tenant: str | None = None
    """Also check that this tenant's records are all there (``tenant_gap``)."""


async def verify_store(
    store: AuditStore,
    *,
    public_keys: Mapping[str, bytes] | None = None,
    keys: AuditKeys | None = None,
    anchors: Sequence[Checkpoint] = (),
    expect: Expectations | None = None,
) -> VerifyResult:
    """Verify a whole store.

    Args:
        public_keys: pinned checkpoint keys (key id -> raw Ed25519); without them the
            keys published in the store are used, which proves consistency but not
            authorship (an attacker with write access could replace them).
        keys: the key ring, to also authenticate each record's ciphertext.
        anchors: checkpoints kept outside the store (shorthand for ``expect.anchors``).
        expect: what the auditor holds (anchor, expected length or head, retention).
    """
    if expect is None:
        expect = Expectations(anchors=anchors, anchor_given=bool(anchors))
    elif anchors:
        expect = replace(expect, anchors=[*expect.anchors, *anchors], anchor_given=True)
    stored = await store.checkpoints()
    pinned = public_keys is not None
    pubs = public_keys if public_keys is not None else await store.public_keys()
    conflict = _merge(stored, expect.anchors)
    cps = sorted(
        {**{c.seq: c for c in stored}, **{a.seq: a for a in expect.anchors}}.values(), key=_seq
    )
    walk = _Walk(cps, keys)
    walk.expect = expect.expect_head
    walk.tenant = expect.tenant
    last_cp = cps[-1] if cps else None
    try:
        if conflict is not None:
            raise conflict
        cps = _check_signatures(cps, pubs)
        walk.cp_by_seq = {cp.seq: cp for cp in cps}
        _check_anchor(cps, expect)
        batch = await store.records(0, _BATCH)
        if batch:
            walk.anchor(batch[0])
            _check_pruning(walk, expect)
        while batch:
            upcoming = await store.records(batch[-1].seq, _BATCH)
            for i, rec in enumerate(batch):
                nxt = batch[i + 1] if i + 1 < len(batch) else (upcoming[0] if upcoming else None)
                walk.step(rec, nxt, functools.partial(_ahead, batch, i, upcoming))
            batch = upcoming
        _check_end(walk, last_cp, expect)
        await _check_subject_keys(store, walk)
    except (ValueError, TypeError) as exc:
        # A column holding a value of the wrong type (possible in SQLite, whose
        # columns are dynamically typed) cannot be a record we wrote.
        fault = _Fault(walk.prev_seq + 1, "edited", f"a record has a malformed column: {exc}")
        return _failed(fault, walk, cps, pinned)
    except _Fault as fault:
        return _failed(fault, walk, cps, pinned)
    msg = f"{walk.count} records verified, {len(cps)} signed checkpoints"
    msg += f", head seq={walk.prev_seq} hash={walk.prev_hash.hex()}"
    if walk.pruned_through is not None:
        msg += (
            f", records 1..{walk.pruned_through} pruned under a signed checkpoint"
            " older than the retention period"
        )
    if expect.tenant is not None:
        msg += f"; tenant {expect.tenant!r}: {walk.tenant_count} records"
        if walk.tenant_last is not None:
            first = walk.tenant_last - walk.tenant_count + 1
            msg += f" numbered {first}..{walk.tenant_last}, none missing"
    for note in walk.notes:
        msg += f"; NOTE: {note}"
    if not pinned:
        msg += (
            "; NOTE: signatures were checked against the keys stored in the database itself"
            " (not pinned: pass --public-key)"
        )
    if expect.anchor_given:
        msg += f"; checked against an anchor of {len(expect.anchors)} checkpoints"
    else:
        msg += (
            "; NOTE: no anchor (this trail was written without one): a truncation that"
            " also deleted checkpoints cannot be seen; keep an anchor or pass --min-records"
        )
    return VerifyResult(
        ok=True, count=walk.count, message=msg, checkpoints=len(cps),
        last_checkpoint_seq=last_cp.seq if last_cp else None, unsigned_tail=0,
        pruned_through=walk.pruned_through, pinned_keys=pinned, head_seq=walk.prev_seq,
        head_hash=walk.prev_hash.hex(), anchored=expect.anchor_given, tenant=expect.tenant,
        tenant_records=None if expect.tenant is None else walk.tenant_count,
    )  # fmt: skip


def _check_anchor(cps: list[Checkpoint], expect: Expectations) -> None:
    """An anchored trail needs its anchor, and the anchor must not be older
    than the store's newest anchored checkpoint (a stale or truncated copy)."""
    anchored = [cp for cp in cps if cp.anchored]
    if not anchored:
        return
    newest = anchored[-1]
    if not expect.anchor_given:
        raise _Fault(
            newest.seq,
            "anchor_missing",
            f"the checkpoint at seq {newest.seq} says it was anchored outside the store,"
            " but no anchor was given (--anchor): without it a truncation cannot be ruled out",
        )
    held = max((a.seq for a in expect.anchors), default=0)
    if held < newest.seq:
        raise _Fault(
            newest.seq,
            "anchor_missing",
            f"the anchor ends at seq {held} but the store's checkpoint at seq {newest.seq}"
            " was anchored: the anchor given is stale, truncated or incomplete",
        )


def _check_pruning(walk: _Walk, expect: Expectations) -> None:
    if walk.pruned_through is None:
        return
    cp = walk.cp_by_seq[walk.pruned_through]
    signed = dt.datetime.fromtimestamp(cp.ts_us / 1e6, dt.UTC).isoformat(timespec="seconds")
    span = f"1..{cp.seq}"
    if expect.retention_days is None:
        raise _Fault(
            1,
            "pruned_early",
            f"records {span} are gone (under a checkpoint signed {signed}) and no retention"
            " period was given to check that pruning against",
        )
    now = time.time() if expect.now is None else expect.now
    if cp.ts_us > (now - expect.retention_days * 86_400) * 1_000_000:
        raise _Fault(
            1,
            "pruned_early",
            f"records {span} were deleted although the checkpoint covering them was signed"
            f" {signed}, inside the retention period of {expect.retention_days:g} days:"
            " retention did not prune them",
        )


def _span(first: int, last: int) -> str:
    return f"record {first} is" if first == last else f"records {first}..{last} are"


def _check_end(walk: _Walk, last_cp: Checkpoint | None, expect: Expectations) -> None:
    if walk.count == 0:
        raise _Fault(
            1 if last_cp is None else last_cp.seq,
            "empty" if last_cp is None else "truncated",
            "the trail holds no records: it was emptied (a trail is never empty once"
            " written; 0 records verify nothing)",
        )
    if last_cp is not None and walk.prev_seq < last_cp.seq:
        first = walk.prev_seq + 1
        raise _Fault(
            first,
            "truncated",
            f"records {first}..{last_cp.seq} are missing (truncated tail):"
            f" the last signed checkpoint covers seq {last_cp.seq}",
        )
    signed = last_cp.seq if last_cp is not None else 0
    if walk.prev_seq > signed:
        first = signed + 1
        raise _Fault(
            first,
            "unsigned",
            f"{_span(first, walk.prev_seq)} not covered by any signed checkpoint:"
            " writers sign every commit, so they were appended outside a writer (forged),"
            " or the checkpoints covering them were deleted (or an older writer crashed"
            " before signing them)",
        )
    if expect.min_records is not None and walk.prev_seq < expect.min_records:
        raise _Fault(
            walk.prev_seq + 1,
            "truncated",
            f"the chain ends at seq {walk.prev_seq} but the auditor holds a record of at least"
            f" {expect.min_records}: records {walk.prev_seq + 1}..{expect.min_records} are missing",
        )
    if expect.expect_head is not None and not walk.expect_found:
        seq, digest = expect.expect_head
        where = "" if seq is None else f" at seq {seq}"
        first = walk.prev_seq + 1 if seq is None or seq > walk.prev_seq else seq
        raise _Fault(
            first,
            "head_mismatch",
            f"the chain does not contain the head the auditor expects{where}"
            f" ({digest.hex()[:16]}...): it was truncated, rewritten or pruned",
        )


async def _check_subject_keys(store: AuditStore, walk: _Walk) -> None:
    wanted = sorted(ref for ref, seq in walk.needs_key.items() if seq > walk.erased.get(ref, 0))
    if not wanted:
        return
    held = await store.subject_keys(wanted)
    missing = [ref for ref in wanted if ref not in held]
    unknown = [ref for ref in missing if walk.needs_key[ref] < walk.legacy_erasure]
    if unknown:
        walk.notes.append(
            f"{len(unknown)} subject key(s) are missing before an erasure record written by an"
            " older version, whose subject only the master key can read"
        )
    missing = [ref for ref in missing if walk.needs_key[ref] >= walk.legacy_erasure]
    if missing:
        first = min(walk.needs_key[ref] for ref in missing)
        raise _Fault(
            first,
            "keys_deleted",
            f"the subject keys of {len(missing)} subject(s) are missing with no erasure"
            f" record in the chain (first record affected: {first}):"
            " deleted outside erase_subject",
        )
