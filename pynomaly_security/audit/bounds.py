"""Bounds of what one audit record keeps of user-controlled text.

A request's path, query, headers and body are the attacker's to size. Copied
into the trail as they are, one 10 MB request makes a 10 MB record (or
several: the path in the access row, again in the event's details, again
inside a message quoting it), which fills the disk and the SIEM and makes
``audit export`` slow for everyone. So every record is bounded whatever the
request's size:

* each string is cut to ``max_field_chars`` with a marker ``…[+N chars]``
  naming how much was dropped (so the cut is visible, never silent);
* the same text (16 characters or more) is stored once: a later exact copy
  becomes ``[= <where>]`` (the first place it was kept), and a copy embedded
  in a longer string is replaced by ``[= <where>]`` inside it;
* containers keep at most :data:`MAX_ITEMS` items and :data:`MAX_DEPTH` levels
  (the rest counted in a marker);
* if the JSON body still exceeds ``max_record_bytes``, its ``details`` are
  replaced by their key names and sizes.

Access rows (``batch.py``) bound their path and request id with the same cut.
The monitor's alerts (``/api/security/alerts``, alert handlers) are bounded by
the same walk, tighter, and with control characters escaped
(``escape_controls``): they are read on screens and in log lines, not only
stored as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pynomaly_security.logsafe import safe_text

__all__ = ["MAX_DEPTH", "MAX_ITEMS", "RecordBounds", "column_text", "cut"]

MAX_ITEMS = 100
"""Items kept per list or dict in a record's details."""
MAX_DEPTH = 6
"""Nesting levels kept in a record's details."""
_DEDUP_MIN = 16
"""Shorter strings (a method, a status, a short name) may repeat freely."""
_MAX_SEEN = 64
"""Distinct texts remembered for de-duplication per record (bounds the cost)."""


def cut(text: str, limit: int) -> str:
    """``text`` itself when short enough, else its first ``limit`` characters
    and a marker of how many were dropped."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[+{len(text) - limit} chars]"


def column_text(text: str, limit: int) -> str:
    """``text`` cut, and storable in a text column: a lone surrogate (valid in a
    Python str, refused by UTF-8, SQLite and PostgreSQL) becomes its ``\\udXXX`` escape."""
    text = cut(text, limit)
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode()
    return text


@dataclass(frozen=True, slots=True)
class RecordBounds:
    """Args:
    max_field_chars: longest string kept (``audit_max_field_chars``).
    max_record_bytes: largest JSON body of a record (``audit_max_record_bytes``).
    escape_controls: also write non-printable characters (``\\n``, ``\\x1b``, a
        lone surrogate) as their escapes (:func:`~pynomaly_security.logsafe.safe_text`),
        for text shown outside a JSON store: alerts on a dashboard or in a log line.
    """

    max_field_chars: int = 1024
    max_record_bytes: int = 16384
    escape_controls: bool = False

    def text(self, value: str) -> str:
        """One string bounded alone (escaped first when ``escape_controls``)."""
        return cut(safe_text(value, None) if self.escape_controls else value, self.max_field_chars)

    def apply(
        self, payload: Mapping[str, Any], identity: Mapping[str, str | None] = {}
    ) -> dict[str, Any]:
        """A bounded copy of a record's payload. ``identity`` (user id, source
        IP, request id: stored in their own fields) seeds the de-duplication, so a
        detail repeating the user name is stored as a reference to it."""
        walk = _Walk(self.max_field_chars, self.escape_controls)
        for name, value in identity.items():
            if isinstance(value, str):
                walk.remember(self.text(value), name)
        out: dict[str, Any] = {}
        for k, v in payload.items():
            name = (safe_text(str(k), None) if self.escape_controls else str(k))[:128]
            out[name] = walk.value(v, name, 0)
        size = len(json.dumps(out, default=str, separators=(",", ":")))
        if size > self.max_record_bytes and isinstance(out.get("details"), dict):
            details = out["details"]
            out["details"] = {
                "[truncated]": f"details were {size} bytes, over the record bound",
                "[keys]": sorted(details)[:MAX_ITEMS],
            }
        return out


class _Walk:
    def __init__(self, limit: int, escape: bool = False) -> None:
        self.limit = limit
        self.escape = escape
        self.seen: dict[str, str] = {}

    def key(self, key: object, limit: int) -> str:
        text = str(key)
        return cut(safe_text(text, None) if self.escape else text, limit)

    def remember(self, text: str, where: str) -> None:
        if len(text) >= _DEDUP_MIN and len(self.seen) < _MAX_SEEN:
            self.seen.setdefault(text, where)

    def text(self, raw: str, where: str) -> str:
        text = cut(safe_text(raw, None) if self.escape else raw, self.limit)
        if len(text) < _DEDUP_MIN:
            return text
        first = self.seen.get(text)
        if first is not None:
            return f"[= {first}]"
        for earlier, place in self.seen.items():
            if earlier in text:
                text = text.replace(earlier, f"[= {place}]")
        self.remember(text, where)
        return text

    def value(self, value: Any, where: str, depth: int) -> Any:
        if isinstance(value, str):
            return self.text(value, where)
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if depth >= MAX_DEPTH:
            return "[too deep]"
        if isinstance(value, Mapping):
            items = list(value.items())
            out = {
                self.key(k, 128): self.value(v, f"{where}.{self.key(k, 64)}", depth + 1)
                for k, v in items[:MAX_ITEMS]
            }
            if len(items) > MAX_ITEMS:
                out["[more]"] = f"{len(items) - MAX_ITEMS} more items"
            return out
        if isinstance(value, (list, tuple, set, frozenset)):
            seq = list(value)
            kept = [
                self.value(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(seq[:MAX_ITEMS])
            ]
            if len(seq) > MAX_ITEMS:
                kept.append(f"[{len(seq) - MAX_ITEMS} more items]")
            return kept
        return self.text(str(value), where)
