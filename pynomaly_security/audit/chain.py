"""The hash chain: canonical encoding, sealing entries into rows, checkpoints.

Each row carries ``hash = SHA-256(prev_hash || canonical(row))`` where the
canonical form covers every stored column except ``hash`` itself (including
the ciphertexts, so an erased subject's rows still verify). Ciphertexts are
bound to their position: their AES-GCM associated data is the sequence number
and the previous hash, so a payload moved to another row fails to decrypt.

References:
    AWS CloudTrail log file integrity validation (chained, signed digests);
    RFC 6962 section 3.5 (signed tree heads).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pynomaly_security.audit.batch import ACCESS_BATCH, AccessRow, row_users, seal_batch
from pynomaly_security.audit.records import AuditEntry, AuditLevel, EntryKind, SecurityEventType
from pynomaly_security.audit.sealing import AuditKeys
from pynomaly_security.audit.stores.base import AppendTxn, Checkpoint, SealedRecord
from pynomaly_security.audit.tenants import scoped_subject, tenant_subject
from pynomaly_security.crypto.aead import AESGCM, open_sealed, seal
from pynomaly_security.exceptions import InvalidToken, StorageError

__all__ = [
    "PERSONAL_DETAIL_KEYS",
    "ZERO_HASH",
    "Sealer",
    "canonical",
    "checkpoint_message",
    "payload_aad",
    "record_hash",
]

ZERO_HASH = bytes(32)
PERSONAL_DETAIL_KEYS = frozenset(
    {"username", "login_username", "email", "name", "phone", "ip", "client_ip", "source_ip",
     "user_agent", "address"}
)  # fmt: skip
"""``details`` keys treated as personal data: sealed under the subject's key."""
ERASED = "[erased]"
UNREADABLE = "[undecryptable]"
_MAX_UNSIGNED = 10_000
"""Unsigned records a writer authenticates before signing; more are reported unread."""
_CACHE = 4096
"""Bound of the per-sealer caches (user id -> ref, ref -> subject AESGCM)."""


def header(
    seq: int,
    ts_us: int,
    kind: str,
    event_type: str,
    level: str,
    standards: str,
    request_id: str | None,
    subject_ref: str | None,
    key_id: str,
    prev_hash: bytes,
    tenant: str | None = None,
    tenant_seq: int | None = None,
) -> bytes:
    """Sorted-key, compact, ASCII JSON of every plaintext column. The tenant columns
    are there only when set: a record without a tenant (every record written before
    issue 21) hashes as it always did."""
    doc: dict[str, object] = {
        "event_type": event_type,
        "key_id": key_id,
        "kind": kind,
        "level": level,
        "prev_hash": prev_hash.hex(),
        "request_id": request_id,
        "seq": seq,
        "standards": standards,
        "subject_ref": subject_ref,
        "ts_us": ts_us,
    }
    if tenant is not None:
        doc["tenant"] = tenant
        doc["tenant_seq"] = tenant_seq
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=True).encode()


def _header_of(rec: SealedRecord) -> bytes:
    return header(
        rec.seq, rec.ts_us, rec.kind, rec.event_type, rec.level, rec.standards,
        rec.request_id, rec.subject_ref, rec.key_id, rec.prev_hash, rec.tenant, rec.tenant_seq,
    )  # fmt: skip


def _canonical(head: bytes, payload: bytes, personal: bytes | None) -> bytes:
    # Newline-separated: JSON with ensure_ascii and base64 never contain one, so
    # the encoding is unambiguous.
    tail = b"" if personal is None else base64.b64encode(personal)
    return head + b"\n" + base64.b64encode(payload) + b"\n" + tail


def canonical(rec: SealedRecord) -> bytes:
    """Every column but ``hash``: the plaintext header, then the ciphertexts."""
    return _canonical(_header_of(rec), rec.payload, rec.personal)


def record_hash(rec: SealedRecord) -> bytes:
    return hashlib.sha256(rec.prev_hash + canonical(rec)).digest()


_AAD = b"pynomaly-audit/v1|"


def payload_aad(rec: SealedRecord, part: bytes) -> bytes:
    """Associated data of a ciphertext: its position (sequence number, previous
    hash) and every plaintext column, so editing any of them, or moving the
    ciphertext to another row, makes decryption fail."""
    return _AAD + part + b"|" + _header_of(rec)


def checkpoint_message(seq: int, head_hash: bytes, ts_us: int, anchored: bool = False) -> bytes:
    """What a checkpoint signs. Version 2 adds ``"anchored": true``: the writer
    also sent this checkpoint to an anchor outside the store, so a verifier
    given no anchor knows one exists (deleting the anchor is then a fault, not
    a quiet downgrade); version 1 (no anchor) is what older writers signed."""
    doc: dict[str, object] = {"v": 1, "seq": seq, "head": head_hash.hex(), "ts_us": ts_us}
    if anchored:
        doc.update(v=2, anchored=True)
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _json(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()


class Sealer:
    """Turns entries into chained, encrypted rows inside a store transaction.

    Every append transaction ends with a signed checkpoint of its head, so no
    committed record is ever unsigned: a record after the last checkpoint can
    only have been added outside a writer (forged), and the verifier says so.
    A checkpoint is *anchored* (sent outside the store as well, see
    ``anchor.py``) when its commit holds a security or audit event, at
    shutdown, and when one is due (``checkpoint_every`` records or
    ``checkpoint_seconds`` since the last anchored one); the other, *interim*
    checkpoints only cover access batches, and each replaces the writer's
    previous interim one, so the store keeps about as many checkpoints as it
    anchors.

    Args:
        keys: the audit key ring.
        checkpoint_every: anchor a checkpoint after this many records...
        checkpoint_seconds: ...or when the last anchored one is older than this.
        anchored: whether an anchor sink receives checkpoints (signed into them).
    """

    def __init__(
        self,
        keys: AuditKeys,
        *,
        checkpoint_every: int,
        checkpoint_seconds: float,
        clock: Callable[[], float] = time.time,
        anchored: bool = False,
    ) -> None:
        self.keys = keys
        self.anchored = anchored
        self.field_limit = 1024
        """Longest path / request id an access row keeps (``audit_max_field_chars``)."""
        self._interim: int | None = None
        """Sequence number of this writer's last interim checkpoint, replaced by the next."""
        self._clock = clock
        self._origin_us = int(clock() * 1_000_000)
        self._anchored_at = (0, self._origin_us)
        self._every = checkpoint_every
        self._max_age_us = int(checkpoint_seconds * 1_000_000)
        self.signing_key_id = keys.signing_key_id
        self._refs: dict[str, str] = {}
        self._aeads: OrderedDict[str, tuple[bytes, AESGCM]] = OrderedDict()

    async def append(
        self,
        txn: AppendTxn,
        entries: Sequence[AuditEntry],
        batches: Sequence[Sequence[AccessRow]] = (),
    ) -> tuple[list[int], Checkpoint | None]:
        """Seal and insert access ``batches`` (one record each, see ``batch.py``),
        then ``entries``; sign a checkpoint when one is due (returned). Returns the
        sequence numbers of ``entries``."""
        seq, prev = await txn.head()
        last = await txn.last_checkpoint()
        signed = last.seq if last is not None else 0
        if seq > signed:
            # Every commit ends signed, so unsigned records were written by no writer
            # of this version: a crash of an older one, or an append by someone with
            # access to the store. Sign only what authenticates under our key; else
            # record the finding (the verifier fails on it) instead of vouching for it.
            report = await self._unsigned_report(
                txn, signed, seq, None if last is None else last.head_hash
            )
            if report is not None:
                entries = [report, *entries]
        else:
            report = None
        # Each batch's user ids, read once (a pass over every row) for the refs, the
        # sealing and the subject index.
        users = [row_users(batch) for batch in batches]
        # A batch is one tenant's (or the platform's): its users' refs are that tenant's.
        refs = [
            {user: self.subject_ref(_batch_subject(batch, user)) for user in batch_users}
            for batch, batch_users in zip(batches, users, strict=True)
        ]
        all_refs = {ref for batch_refs in refs for ref in batch_refs.values()}
        # A tenant's batch seals its anonymous clients' IPs under the tenant's own subject.
        own = {
            t: self.subject_ref(tenant_subject(t))
            for b in batches
            if (t := getattr(b, "tenant", None)) is not None
        }
        subject_keys = await self._subject_keys(txn, entries, all_refs | set(own.values()))
        key_id = self.keys.key_id
        rows: list[SealedRecord] = []
        index: list[tuple[str, int]] = []
        numbers = await _TenantNumbers.read(txn, batches, entries)
        for batch, batch_users, batch_refs in zip(batches, users, refs, strict=True):
            seq += 1
            tenant = numbers.next(getattr(batch, "tenant", None))
            anonymous = None if tenant is None else own[tenant[0]]
            part = seal_batch(
                self.keys, batch, seq=seq, prev=prev, refs=batch_refs, subject_keys=subject_keys,
                header=header, aad_prefix=_AAD, limit=self.field_limit, users=batch_users,
                tenant=tenant,
                anonymous=None if anonymous is None else (anonymous, subject_keys[anonymous]),
            )  # fmt: skip
            digest = hashlib.sha256(
                prev + _canonical(part.head, part.payload, part.personal)
            ).digest()
            rows.append(
                SealedRecord(
                    seq,
                    part.ts_us,
                    ACCESS_BATCH,
                    "http_request",
                    part.level,
                    ",,",
                    None,
                    None,
                    key_id,
                    part.payload,
                    part.personal,
                    prev,
                    digest,
                    *(tenant or ()),
                )
            )
            index.extend((ref, seq) for ref in {batch_refs[user] for user in batch_users})
            if anonymous is not None:
                index.append((anonymous, seq))
            prev = digest
        first_entry = len(rows)
        for entry in entries:
            seq += 1
            payload = dict(entry.payload)
            ref = None
            personal_body: dict[str, Any] = {}
            subject = _subject(entry)
            if entry.erased_ref is not None:
                ref = entry.erased_ref
            elif subject is not None:
                # A user's, or (no user, inside a tenant) the tenant's subject key.
                ref = self.subject_ref(subject)
                personal_body = _split_personal(payload)
                personal_body.update(user_id=entry.user_id, source_ip=entry.source_ip)
            elif entry.source_ip is not None:
                payload["source_ip"] = entry.source_ip
            tenant = numbers.next(entry.tenant)
            ts_us = int(entry.timestamp * 1_000_000)
            standards = "," + ",".join(s.value for s in entry.standards) + ","
            kind, level = entry.kind.value, entry.level.value
            head = header(
                seq, ts_us, kind, entry.event_type, level, standards,
                entry.request_id, ref, key_id, prev, *(tenant or ()),
            )  # fmt: skip
            personal = None
            if ref is not None and entry.erased_ref is None:
                aad = _AAD + b"personal|" + head
                personal = seal(subject_keys[ref], _json(personal_body), aad)
            sealed = self.keys.encrypt(_json(payload), _AAD + b"payload|" + head)
            digest = hashlib.sha256(prev + _canonical(head, sealed, personal)).digest()
            rows.append(
                SealedRecord(
                    seq,
                    ts_us,
                    kind,
                    entry.event_type,
                    level,
                    standards,
                    entry.request_id,
                    ref,
                    key_id,
                    sealed,
                    personal,
                    prev,
                    digest,
                    *(tenant or ()),
                )
            )
            prev = digest
        await txn.insert(rows)
        if index:
            await txn.index_subjects(index)
        # Signed in the same transaction: a committed record is never unsigned.
        cp = await self.checkpoint(
            txn, force=bool(entries), head=(seq, prev), always=True, last=(last,)
        )
        if report is not None:
            first_entry += 1
        return [r.seq for r in rows[first_entry:]], cp

    async def _unsigned_report(
        self, txn: AppendTxn, signed: int, head: int, prev: bytes | None
    ) -> AuditEntry | None:
        """``None`` if records ``signed+1..head`` are ours (chained from the signed
        head ``prev`` and authentic under the key ring), else the entry reporting them."""
        first_bad: int | None = None
        if head - signed > _MAX_UNSIGNED:
            first_bad = signed + 1
        else:
            for rec in await txn.records(signed, _MAX_UNSIGNED):
                linked = prev is None or rec.prev_hash == prev
                try:
                    if not linked or record_hash(rec) != rec.hash:
                        raise InvalidToken
                    self.keys.decrypt(rec.key_id, rec.payload, payload_aad(rec, b"payload"))
                except InvalidToken:
                    first_bad = rec.seq
                    break
                prev = rec.hash
        if first_bad is None:
            return None
        return AuditEntry(
            kind=EntryKind.SECURITY,
            event_type=SecurityEventType.AUDIT_TAMPER_DETECTED.value,
            level=AuditLevel.CRITICAL,
            payload={
                "message": "unsigned audit records that do not authenticate were found",
                "details": {"unsigned_from": signed + 1, "unsigned_to": head, "first": first_bad},
            },
            timestamp=self._clock(),
        )

    async def checkpoint(
        self,
        txn: AppendTxn,
        *,
        force: bool,
        head: tuple[int, bytes] | None = None,
        always: bool = False,
        last: tuple[Checkpoint | None] | None = None,
    ) -> Checkpoint | None:
        """Sign the head if records are unsigned and (``force``, ``always`` or one
        is due). Returns the checkpoint when it is to be anchored (``force`` or
        due); an ``always`` one that is neither is interim (stays in the store).
        ``force`` on a head covered only by this writer's interim checkpoint
        replaces it with an anchored one (shutdown: the head is always anchored)."""
        seq, head_hash = head if head is not None else await txn.head()
        # ``last`` (boxed: None is a value) when the caller already read it.
        last_cp = await txn.last_checkpoint() if last is None else last[0]
        return await self._sign(txn, force, seq, head_hash, last_cp, always)

    async def _sign(
        self,
        txn: AppendTxn,
        force: bool,
        seq: int,
        head_hash: bytes,
        last: Checkpoint | None,
        always: bool,
    ) -> Checkpoint | None:
        # With no checkpoint yet, the age counts from when this sealer started.
        last_seq, last_ts = (0, self._origin_us) if last is None else (last.seq, last.ts_us)
        interim = last is not None and last.seq == self._interim
        now_us = int(self._clock() * 1_000_000)
        # Due-ness counts from the last anchored checkpoint, which this writer's
        # interim one replaced in the store: it remembers its numbers.
        base_seq, base_ts = self._anchored_at if interim else (last_seq, last_ts)
        due = seq - base_seq >= self._every or now_us - base_ts >= self._max_age_us
        if seq <= last_seq:
            # Nothing new; but a head covered only by our interim checkpoint is
            # anchored when one is due or at shutdown (an idle app's last access
            # rows are then anchored too).
            if not (interim and seq == last_seq and (force or due)):
                return None
        elif not (force or due or always):
            return None
        anchor = force or due
        sig = self.keys.sign(
            checkpoint_message(seq, head_hash, now_us, anchored=anchor and self.anchored)
        )
        cp = Checkpoint(
            seq, head_hash, now_us, self.signing_key_id, sig, anchored=anchor and self.anchored
        )
        if interim and last is not None:
            await txn.delete_checkpoint(last.seq)
        await txn.insert_checkpoint(cp)
        if anchor:
            self._interim, self._anchored_at = None, (seq, now_us)
            return cp
        self._interim = seq
        return None

    def subject_ref(self, user_id: str) -> str:
        """The blind-index ref of ``user_id`` (an HMAC; cached, bounded)."""
        ref = self._refs.get(user_id)
        if ref is None:
            if len(self._refs) >= _CACHE:
                self._refs.clear()
            ref = self._refs[user_id] = self.keys.subject_ref(user_id)
        return ref

    def forget(self, refs: Iterable[str]) -> None:
        """Drop cached subject keys and user ids (after crypto-shredding them)."""
        gone = set(refs)
        for ref in gone:
            self._aeads.pop(ref, None)
        self._refs = {user: ref for user, ref in self._refs.items() if ref not in gone}

    async def _subject_keys(
        self, txn: AppendTxn, entries: Sequence[AuditEntry], extra: Iterable[str] = ()
    ) -> dict[str, AESGCM]:
        wanted = {
            self.subject_ref(subject)
            for e in entries
            if e.erased_ref is None and (subject := _subject(e)) is not None
        }
        refs = sorted(wanted.union(extra))
        if not refs:
            return {}
        # The store is asked every time (one query per 200 refs): a key another
        # worker shredded is then never used again. Only the unwrapping (and the
        # AES key schedule) is cached, and only while the wrapped key is the same.
        found = await txn.subject_keys(refs)
        keys: dict[str, AESGCM] = {}
        new: list[tuple[str, str, bytes]] = []
        for ref in refs:
            if ref in found:
                key_id, wrapped = found[ref]
                cached = self._aeads.get(ref)
                if cached is not None and cached[0] == wrapped:
                    keys[ref] = cached[1]
                    continue
                try:
                    raw = self.keys.unwrap_subject_key(key_id, ref, wrapped)
                except InvalidToken as exc:
                    raise StorageError(f"subject key under unknown master key {key_id}") from exc
            else:
                raw = os.urandom(32)
                wrapped = self.keys.wrap_subject_key(ref, raw)
                new.append((ref, self.keys.key_id, wrapped))
            keys[ref] = AESGCM(raw)
            if len(self._aeads) >= _CACHE:
                self._aeads.popitem(last=False)
            self._aeads[ref] = (wrapped, keys[ref])
        if new:
            await txn.put_subject_keys(new)
        return keys

    def open(
        self, rec: SealedRecord, subject_keys: Mapping[str, tuple[str, bytes]]
    ) -> dict[str, Any]:
        """Decrypt a row into a plain dict; shredded fields read as ``[erased]``."""
        out: dict[str, Any] = {"user_id": None, "source_ip": None}
        try:
            body = self.keys.decrypt(rec.key_id, rec.payload, payload_aad(rec, b"payload"))
            out.update(json.loads(body))
        except InvalidToken:
            out["payload"] = UNREADABLE
        if rec.subject_ref is None or rec.personal is None:
            return out
        wrapped = subject_keys.get(rec.subject_ref)
        try:
            if wrapped is None:
                raise _Erased
            key = self.keys.unwrap_subject_key(wrapped[0], rec.subject_ref, wrapped[1])
            personal = json.loads(open_sealed(key, rec.personal, payload_aad(rec, b"personal")))
        except (InvalidToken, _Erased) as exc:
            mark = ERASED if isinstance(exc, _Erased) else UNREADABLE
            personal = {"user_id": mark, "source_ip": mark}
            personal["details"] = dict.fromkeys(out.get("personal_details", ()), mark)
        if isinstance(out.get("details"), dict):
            out["details"].update(personal.pop("details", {}))
        out.update(personal)
        return out


class _Erased(Exception):
    """The subject key is gone (crypto-shredded)."""


def _subject(entry: AuditEntry) -> str | None:
    """Whose key seals the entry's personal data: its user's (of its tenant), else
    (inside a tenant) the tenant's subject (``audit/tenants.py``), else none (the
    store key)."""
    if entry.user_id is not None:
        return scoped_subject(entry.tenant, entry.user_id)
    return None if entry.tenant is None else tenant_subject(entry.tenant)


def _batch_subject(batch: object, user: str) -> str:
    """The subject of ``user`` in an access batch (of its tenant)."""
    return scoped_subject(getattr(batch, "tenant", None), user)


class _TenantNumbers:
    """Each tenant's next ``tenant_seq`` within one append (``audit/tenants.py``)."""

    def __init__(self, heads: dict[str, int]) -> None:
        self._heads = heads

    @classmethod
    async def read(
        cls, txn: AppendTxn, batches: Sequence[object], entries: Sequence[AuditEntry]
    ) -> _TenantNumbers:
        named = {getattr(b, "tenant", None) for b in batches} | {e.tenant for e in entries}
        named.discard(None)
        tenants = sorted(t for t in named if t is not None)
        return cls(await txn.tenant_heads(tenants) if tenants else {})

    def next(self, tenant: str | None) -> tuple[str, int] | None:
        """(tenant, its next number), or None for a record of no tenant."""
        if tenant is None:
            return None
        number = self._heads.get(tenant, 0) + 1
        self._heads[tenant] = number
        return tenant, number


def _split_personal(payload: dict[str, Any]) -> dict[str, Any]:
    """Move personal detail values (by key name) out of ``payload`` so they are
    sealed under the subject key and shredded with it; their names stay, so an
    erased record shows which details were there."""
    details = payload.get("details")
    if not isinstance(details, dict):
        return {}
    kept = dict(details)
    moved = {k: kept.pop(k) for k in details if k.lower() in PERSONAL_DETAIL_KEYS}
    if not moved:
        return {}
    payload["details"] = kept
    payload["personal_details"] = sorted(moved)
    return {"details": moved}
