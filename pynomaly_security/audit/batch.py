"""Access batches: many per-request access records sealed as ONE chain record.

Sealing every access record on its own (AES-GCM, JSON, SHA-256 and one row per
HTTP request) cost 30-40 µs of CPU per request, as much as the app itself. Like
AWS CloudTrail, which signs digest files over log files rather than each event,
the logger queues access records as plain tuples (:data:`AccessRow`) and, once
per flush, seals all of them into one record of kind ``access_batch``: one
payload encryption, one hash, one row. Security and audit events stay
individual records (see ``logger.py``).

On-disk format (version 2), in the usual record columns:

* ``ts_us``: the *oldest* row's time (every row is ``>= ts_us``); a batch spans
  at most :data:`MAX_SPAN_US` (the writer cuts longer ones), which is how a
  time-filtered query finds the batches that may hold matching rows;
* ``kind`` ``access_batch``, ``event_type`` ``http_request``, ``level`` ``error``
  if any row is a 5xx, else ``info``; ``request_id`` and ``subject_ref`` empty;
* ``payload`` (AES-GCM under the store key, associated data as for any record)::

      {"v": 2, "cols": [...COLUMNS], "subjects": [ref, ...],
       "rows": [[ts_us, method, path, status_code, duration_us, request_id,
                 subject_index | null, source_ip | null], ...]}

  Version 1 (still read) had ``duration_ms`` as a float: writing a float's
  shortest decimal form costs more than all the other columns of a row
  together, so version 2 stores whole microseconds;
  ``source_ip`` is only there for anonymous rows; ``subject_index`` points into
  ``subjects`` (blind-index refs, the same HMAC as a record's ``subject_ref``);
* ``personal``: ``{"v": 2, "subjects": {ref: base64(nonce || ciphertext)}}``,
  one AES-GCM ciphertext *per subject* under that subject's key, holding
  ``[[row_index, user_id, source_ip], ...]`` for the subject's rows; its
  associated data is ``personal:<ref>`` plus the record's plaintext columns.

A tenant's batch (issue 21, ``audit/tenants.py``) adds ``"anonymous": ref`` to the
payload, the ref of the tenant's own subject: its anonymous rows are stored with 7
columns (no ``source_ip``), and ``personal`` adds ``"anonymous": base64(...)``, one
ciphertext under that subject's key of the list of the batch's client IPs by row
(None for rows of a user, whose IP is under the user's key only). Deleting the
tenant destroys that key: the IPs read ``[erased]``.

Crypto-shredding therefore works per row at the price of one encryption per
distinct subject per batch, not per row: ``erase_subject`` destroys the key,
the subject's rows read ``[erased]`` and the chain (which hashes the
ciphertexts) still verifies. Each batch's refs are also written to the
``<prefix>_record_subjects`` index (not part of the chain: a lookup aid for
``query(user_id=...)``; the reader re-checks every row against the decrypted
payload, so an edited index can hide rows from a query, never forge them, and
``verify`` is unaffected).
"""

from __future__ import annotations

import base64
import bisect
import json
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple, cast

import pydantic_core

from pynomaly_security._context import AccessRow
from pynomaly_security.audit.bounds import cut
from pynomaly_security.audit.sealing import AuditKeys
from pynomaly_security.audit.stores.base import SealedRecord
from pynomaly_security.crypto.aead import AESGCM, open_sealed, seal
from pynomaly_security.exceptions import InvalidToken

__all__ = [
    "ACCESS_BATCH",
    "COLUMNS",
    "MAX_ROWS",
    "MAX_SPAN_US",
    "AccessRow",
    "SealedBatch",
    "batch_refs",
    "open_batch",
    "row_users",
    "seal_batch",
    "split_batches",
]

ACCESS_BATCH = "access_batch"
# AccessRow (``_context.py``) is the stored row's layout (``COLUMNS``) with the user
# id where the stored row has its subject index: an anonymous row (user id None)
# is stored as it is, with no per-row work at flush time.

COLUMNS = (
    "ts_us", "method", "path", "status_code", "duration_us", "request_id", "subject", "source_ip",
)  # fmt: skip
MAX_ROWS = 2000
"""Rows per batch record (bounds a record at a few hundred kB)."""
MAX_SPAN_US = 60_000_000
"""Longest time between the oldest and newest row of one batch (60 s)."""
_VERSION = 2
ERASED = "[erased]"
UNREADABLE = "[undecryptable]"


class SealedBatch(NamedTuple):
    """What the sealer hashes and stores for one batch."""

    head: bytes
    ts_us: int
    level: str
    payload: bytes
    personal: bytes | None


def split_batches(rows: list[AccessRow]) -> list[list[AccessRow]]:
    """Sort by time and cut into batches of at most MAX_ROWS rows and MAX_SPAN_US."""
    rows.sort(key=_TS)
    times = list(map(_TS, rows))
    out: list[list[AccessRow]] = []
    start = 0
    # Cut points by bisection: Python work per batch, not per row.
    while start < len(rows):
        end = min(start + MAX_ROWS, bisect.bisect_right(times, times[start] + MAX_SPAN_US, start))
        out.append(rows[start:end])
        start = end
    return out


_TS = operator.itemgetter(0)
_STATUS = operator.itemgetter(3)
_USER = operator.itemgetter(6)


def row_users(rows: Iterable[AccessRow]) -> set[str]:
    """The distinct user ids ``rows`` name (``""`` included); anonymous rows, most
    of them, are passed over in C (``map``/``itemgetter``)."""
    users: set[str | None] = set(map(_USER, rows))
    users.discard(None)
    return cast("set[str]", users)


def _dumps(doc: Any) -> bytes:
    # Every row of every batch goes through here: pydantic-core's encoder writes a
    # row in about 4,000 instructions where json.dumps takes 9,100 (valgrind; about
    # 5,000 per request, 1.1% of bare FastAPI's GET). It writes non-ASCII as UTF-8,
    # which json.loads reads back the same. It refuses what UTF-8 cannot hold (a
    # lone surrogate, which an ASGI scope built by hand may carry); json.dumps
    # escapes those, so such a batch is written as before instead of failing the
    # group commit.
    try:
        return pydantic_core.to_json(doc)
    except pydantic_core.PydanticSerializationError:
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=True).encode()


def seal_batch(
    keys: AuditKeys,
    rows: Sequence[AccessRow],
    *,
    seq: int,
    prev: bytes,
    refs: Mapping[str, str],
    subject_keys: Mapping[str, AESGCM],
    header: Callable[..., bytes],
    aad_prefix: bytes,
    limit: int = 1024,
    users: set[str] | None = None,
    tenant: tuple[str, int] | None = None,
    anonymous: tuple[str, AESGCM] | None = None,
) -> SealedBatch:
    """The sealed parts of one chain record holding ``rows`` (from :func:`split_batches`).

    ``refs`` maps each user id to its blind-index ref, ``subject_keys`` each ref
    to an AESGCM of its key; ``header`` is ``chain.header``. Paths and request
    ids longer than ``limit`` characters are cut (``bounds.cut``): a row is
    bounded whatever the request's size. ``users`` is :func:`row_users` of
    ``rows`` when the caller has it. ``tenant`` is the batch's tenant and its
    number among the tenant's records, ``anonymous`` the (ref, AESGCM) of that
    tenant's own subject (``audit/tenants.py``): the client IPs of its anonymous rows
    are then sealed under it, as one list beside the rows (which keep 7 columns).
    """
    rows = _bounded(rows, limit)
    subject_index: dict[str, int] = {}
    personal: dict[str, list[list[Any]]] = {}
    # map/itemgetter: these run over every row of every batch, so in C.
    out_rows: Sequence[Sequence[Any]] = rows  # anonymous rows are already the stored form
    ips: list[str | None] | None = None
    if anonymous is not None:
        ips = list(map(_IP, rows))
        out_rows = list(map(_NO_IP, rows))
    if row_users(rows) if users is None else users:
        listed: list[Sequence[Any]] = []
        for i, row in enumerate(rows):
            user = row[6]
            if user is None:
                listed.append(row if ips is None else out_rows[i])
                continue
            if ips is not None:
                ips[i] = None  # the user's: under the user's key only (erasable alone)
            ref = refs[user]
            idx = subject_index.get(ref)
            if idx is None:
                idx = subject_index[ref] = len(subject_index)
                personal[ref] = []
            personal[ref].append([i, user, row[7]])
            listed.append((*row[:6], idx, None))
        out_rows = listed
    error = max(map(_STATUS, rows)) >= 500
    ts_us = min(map(_TS, rows))
    key_id = keys.key_id
    head = header(
        seq, ts_us, ACCESS_BATCH, "http_request", "error" if error else "info", ",,",
        None, None, key_id, prev, *(tenant or ()),
    )  # fmt: skip
    body: dict[str, Any] = {
        "v": _VERSION, "cols": COLUMNS, "subjects": list(subject_index), "rows": out_rows
    }  # fmt: skip
    if anonymous is not None:
        body["anonymous"] = anonymous[0]
    payload = _dumps(body)
    sealed = keys.encrypt(payload, aad_prefix + b"payload|" + head)
    blob: bytes | None = None
    if personal or anonymous is not None:
        blobs = {
            ref: base64.b64encode(
                seal(subject_keys[ref], _dumps(items), aad_prefix + _part(ref) + b"|" + head)
            ).decode()
            for ref, items in personal.items()
        }
        doc: dict[str, Any] = {"v": _VERSION, "subjects": blobs}
        if anonymous is not None:
            ref, aead = anonymous
            doc["anonymous"] = base64.b64encode(
                seal(aead, _dumps(ips), aad_prefix + _part(ref) + b"|" + head)
            ).decode()
        blob = _dumps(doc)
    return SealedBatch(head, ts_us, "error" if error else "info", sealed, blob)


_IP = operator.itemgetter(7)
_NO_IP = operator.itemgetter(0, 1, 2, 3, 4, 5, 6)
"""A row without its client IP (sealed apart, under the tenant's subject key)."""
_METHOD = operator.itemgetter(1)
_MAX_METHOD = 32
_PATH = operator.itemgetter(2)
_RID = operator.itemgetter(5)


def _bounded(rows: Sequence[AccessRow], limit: int) -> Sequence[AccessRow]:
    # The check runs in C (map/len); rows are rebuilt only when one is too long.
    if (
        max(map(len, map(_PATH, rows)), default=0) <= limit
        and max(map(len, map(_METHOD, rows)), default=0) <= _MAX_METHOD
        and max(map(len, filter(None, map(_RID, rows))), default=0) <= limit
    ):
        return rows
    return [
        (r[0], cut(r[1], _MAX_METHOD), cut(r[2], limit), r[3], r[4],
         None if r[5] is None else cut(r[5], limit), r[6], r[7])
        for r in rows
    ]  # fmt: skip


def _part(ref: str) -> bytes:
    return b"personal:" + ref.encode()


def _anonymous_ips(
    keys: AuditKeys,
    rec: SealedRecord,
    body: Mapping[str, Any],
    personal: Mapping[str, Any],
    subject_keys: Mapping[str, tuple[str, bytes]],
    aad: Callable[[SealedRecord, bytes], bytes],
) -> tuple[list[Any] | None, str | None]:
    """The client IPs of a tenant batch's anonymous rows (by row), or the mark they read
    as: ``[erased]`` once the tenant's subject key is destroyed."""
    ref = body.get("anonymous")
    if not isinstance(ref, str):
        return None, None
    wrapped = subject_keys.get(ref)
    if wrapped is None:
        return None, ERASED
    try:
        key = keys.unwrap_subject_key(wrapped[0], ref, wrapped[1])
        ips = json.loads(
            open_sealed(key, base64.b64decode(personal["anonymous"]), aad(rec, _part(ref)))
        )
    except (InvalidToken, KeyError, ValueError, TypeError):
        return None, UNREADABLE
    return (ips, None) if isinstance(ips, list) else (None, UNREADABLE)


def batch_refs(body: Mapping[str, Any]) -> list[str]:
    """The subject refs a decrypted batch payload names (its tenant's own included)."""
    subjects = body.get("subjects")
    refs = [str(s) for s in subjects] if isinstance(subjects, list) else []
    anonymous = body.get("anonymous")
    return [*refs, anonymous] if isinstance(anonymous, str) else refs


def open_batch(
    keys: AuditKeys,
    rec: SealedRecord,
    body: Mapping[str, Any],
    subject_keys: Mapping[str, tuple[str, bytes]],
    aad: Callable[[SealedRecord, bytes], bytes],
) -> list[tuple[int, dict[str, Any]]]:
    """Rows of a decrypted batch payload as ``(ts_us, fields)``; ``fields`` carries
    ``subject_ref`` (for filtering) and user id / source ip (``[erased]`` once shredded)."""
    raw = body.get("subjects")
    subjects = [str(s) for s in raw] if isinstance(raw, list) else []
    people: dict[int, tuple[Any, Any]] = {}
    marks: dict[str, str] = {}
    personal_doc: dict[str, Any] = {}
    if rec.personal is not None:
        try:
            personal_doc = dict(json.loads(rec.personal))
        except (ValueError, TypeError):
            personal_doc = {}
    ips, anonymous_mark = _anonymous_ips(keys, rec, body, personal_doc, subject_keys, aad)
    if subjects:
        blobs = personal_doc.get("subjects")
        if not isinstance(blobs, dict):
            blobs = {}
        for ref in subjects:
            wrapped = subject_keys.get(ref)
            if wrapped is None:
                marks[ref] = ERASED
                continue
            try:
                key = keys.unwrap_subject_key(wrapped[0], ref, wrapped[1])
                blob = base64.b64decode(blobs[ref])
                items = json.loads(open_sealed(key, blob, aad(rec, _part(ref))))
                for index, user, ip in items:
                    people[int(index)] = (user, ip)
            except (InvalidToken, KeyError, ValueError, TypeError):
                marks[ref] = UNREADABLE
    out: list[tuple[int, dict[str, Any]]] = []
    per_ms = 1 if body.get("v") == 1 else 1000  # version 1 stored milliseconds
    for i, row in enumerate(body.get("rows", ())):
        ts_us, method, path, status, duration, request_id, subject = row[:7]
        owner: str | None = None
        if isinstance(subject, int) and 0 <= subject < len(subjects):
            owner = subjects[subject]
        if owner is None:
            user = None
            if len(row) > 7:
                source = row[7]
            elif anonymous_mark is not None:  # 7 columns: a tenant's anonymous row
                source = anonymous_mark
            else:
                source = ips[i] if ips is not None and i < len(ips) else UNREADABLE
        elif i in people:
            user, source = people[i]
        else:
            mark = marks.get(owner, UNREADABLE)
            user, source = mark, mark
        out.append(
            (
                int(ts_us),
                {
                    "batch_index": i,
                    "subject_ref": owner,
                    "level": "error" if int(status) >= 500 else "info",
                    "request_id": request_id,
                    "user_id": user,
                    "source_ip": source,
                    "method": method,
                    "path": path,
                    "status_code": status,
                    "duration_ms": duration / per_ms,
                },
            )
        )
    return out
