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
import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pynomaly_security.audit._keys import AuditKeys, open_with, seal_with, signing_key_id
from pynomaly_security.audit.records import AuditEntry
from pynomaly_security.audit.stores.base import AppendTxn, Checkpoint, SealedRecord
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


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def canonical(rec: SealedRecord) -> bytes:
    """Sorted-key, compact, ASCII JSON of every column but ``hash``."""
    doc = {
        "seq": rec.seq,
        "ts_us": rec.ts_us,
        "kind": rec.kind,
        "event_type": rec.event_type,
        "level": rec.level,
        "standards": rec.standards,
        "request_id": rec.request_id,
        "subject_ref": rec.subject_ref,
        "key_id": rec.key_id,
        "payload": _b64(rec.payload),
        "personal": _b64(rec.personal),
        "prev_hash": rec.prev_hash.hex(),
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def record_hash(rec: SealedRecord) -> bytes:
    return hashlib.sha256(rec.prev_hash + canonical(rec)).digest()


def payload_aad(rec: SealedRecord, part: bytes) -> bytes:
    """Associated data of a ciphertext: its position (sequence number, previous
    hash) and every plaintext column, so editing any of them, or moving the
    ciphertext to another row, makes decryption fail."""
    doc = {
        "seq": rec.seq,
        "ts_us": rec.ts_us,
        "kind": rec.kind,
        "event_type": rec.event_type,
        "level": rec.level,
        "standards": rec.standards,
        "request_id": rec.request_id,
        "subject_ref": rec.subject_ref,
        "key_id": rec.key_id,
        "prev_hash": rec.prev_hash.hex(),
    }
    body = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    return b"pynomaly-audit/v1|" + part + b"|" + body


def checkpoint_message(seq: int, head_hash: bytes, ts_us: int) -> bytes:
    doc = {"v": 1, "seq": seq, "head": head_hash.hex(), "ts_us": ts_us}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _json(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()


class Sealer:
    """Turns entries into chained, encrypted rows inside a store transaction.

    Args:
        keys: the audit key ring.
        checkpoint_every: sign a checkpoint after this many records...
        checkpoint_seconds: ...or when the last one is older than this.
    """

    def __init__(
        self,
        keys: AuditKeys,
        *,
        checkpoint_every: int,
        checkpoint_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys = keys
        self._clock = clock
        self._origin_us = int(clock() * 1_000_000)
        self._every = checkpoint_every
        self._max_age_us = int(checkpoint_seconds * 1_000_000)
        self.signing_key_id = signing_key_id(keys.current.public_key)

    async def append(self, txn: AppendTxn, entries: Sequence[AuditEntry]) -> list[int]:
        """Seal and insert ``entries``; sign a checkpoint when one is due."""
        seq, prev = await txn.head()
        subject_keys = await self._subject_keys(txn, entries)
        key_id = self.keys.current.key_id
        rows: list[SealedRecord] = []
        for entry in entries:
            seq += 1
            payload = dict(entry.payload)
            ref = None
            personal_body: dict[str, Any] = {}
            if entry.user_id is not None:
                ref = self.keys.subject_ref(entry.user_id)
                personal_body = _split_personal(payload)
                personal_body.update(user_id=entry.user_id, source_ip=entry.source_ip)
            elif entry.source_ip is not None:
                payload["source_ip"] = entry.source_ip
            header = SealedRecord(
                seq=seq,
                ts_us=int(entry.timestamp * 1_000_000),
                kind=entry.kind.value,
                event_type=entry.event_type,
                level=entry.level.value,
                standards="," + ",".join(s.value for s in entry.standards) + ",",
                request_id=entry.request_id,
                subject_ref=ref,
                key_id=key_id,
                payload=b"",
                personal=None,
                prev_hash=prev,
                hash=b"",
            )
            personal = None
            if ref is not None:
                body = _json(personal_body)
                personal = seal_with(subject_keys[ref], body, payload_aad(header, b"personal"))
            row = dataclasses.replace(
                header,
                payload=self.keys.encrypt(key_id, _json(payload), payload_aad(header, b"payload")),
                personal=personal,
            )
            prev = record_hash(row)
            rows.append(dataclasses.replace(row, hash=prev))
        await txn.insert(rows)
        await self.checkpoint(txn, force=False, head=(seq, prev))
        return [r.seq for r in rows]

    async def checkpoint(
        self, txn: AppendTxn, *, force: bool, head: tuple[int, bytes] | None = None
    ) -> Checkpoint | None:
        """Sign the head if records are unsigned and (``force`` or one is due)."""
        seq, head_hash = head if head is not None else await txn.head()
        last = await txn.last_checkpoint()
        # With no checkpoint yet, the age counts from when this sealer started.
        last_seq, last_ts = (0, self._origin_us) if last is None else (last.seq, last.ts_us)
        if seq <= last_seq:
            return None
        now_us = int(self._clock() * 1_000_000)
        due = seq - last_seq >= self._every or now_us - last_ts >= self._max_age_us
        if not (force or due):
            return None
        sig = self.keys.current.signer.sign(checkpoint_message(seq, head_hash, now_us))
        cp = Checkpoint(seq, head_hash, now_us, self.signing_key_id, sig)
        await txn.insert_checkpoint(cp)
        return cp

    async def _subject_keys(
        self, txn: AppendTxn, entries: Sequence[AuditEntry]
    ) -> dict[str, bytes]:
        refs = sorted({self.keys.subject_ref(e.user_id) for e in entries if e.user_id is not None})
        if not refs:
            return {}
        found = await txn.subject_keys(refs)
        keys: dict[str, bytes] = {}
        new: list[tuple[str, str, bytes]] = []
        for ref in refs:
            if ref in found:
                key_id, wrapped = found[ref]
                try:
                    keys[ref] = self.keys.unwrap_subject_key(key_id, ref, wrapped)
                except InvalidToken as exc:
                    raise StorageError(f"subject key under unknown master key {key_id}") from exc
            else:
                keys[ref] = os.urandom(32)
                new.append(
                    (ref, self.keys.current.key_id, self.keys.wrap_subject_key(ref, keys[ref]))
                )
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
            personal = json.loads(open_with(key, rec.personal, payload_aad(rec, b"personal")))
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
