"""Anchors: copies of the signed checkpoints kept outside the audit store.

A checkpoint in the store proves the chain up to it, but whoever can write
the store can also delete the newest records *with* their checkpoints, or
empty the store. The same checkpoints sent somewhere the attacker of the
database does not control are what ``audit verify --anchor`` compares the
store against: a store that ends before, or differs from, an anchored
checkpoint fails.

Sinks (``SecuritySettings.audit_anchor_*``):

* a file of JSON Lines, one checkpoint a line, opened ``O_APPEND`` (several
  workers may share it; each line is one ``write``). On by default, next to a
  SQLite database (``<db file>.anchors.jsonl``) or at ``audit_anchor_file``.
  It is written before a security event's caller is answered, so it is never
  behind an acknowledged security event; it is never ahead of the store (it
  is written after the commit).
* syslog (``audit_anchor_syslog``: ``host:port`` for UDP, or a socket path
  such as ``/dev/log``), Redis (``audit_anchor_redis_url``: ``RPUSH`` to the
  list ``audit_anchor_redis_key``) and a webhook (``audit_anchor_webhook_url``:
  one JSON ``POST`` per checkpoint). These run off the write path through the
  dispatcher's queue; a failing sink is logged, never raised into the app.

A checkpoint's signed message records that it was anchored (``chain.py``),
so a verifier given no anchor for an anchored trail fails instead of
quietly checking less.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pynomaly_security._log import get_logger
from pynomaly_security.audit.stores.base import Checkpoint
from pynomaly_security.exceptions import ConfigurationError, SecurityError
from pynomaly_security.settings import SecuritySettings

__all__ = [
    "FileAnchor",
    "RedisAnchor",
    "SyslogAnchor",
    "WebhookAnchor",
    "default_anchor_path",
    "load_anchor_file",
    "load_redis_anchors",
    "parse_anchor_lines",
]

log = get_logger(__name__)

ANCHOR_FAILED = "audit_anchor_write_failed"
SYSLOG_TAG = "pynomaly-audit-anchor: "
_SUFFIX = ".anchors.jsonl"
_DECODER = json.JSONDecoder()
_MAX_LINE = 4096
"""A checkpoint line is ~250 bytes; anything longer in an anchor file is not ours."""


def default_anchor_path(settings: SecuritySettings) -> Path | None:
    """Where the file anchor goes: ``audit_anchor_file``, else next to a SQLite
    database; ``None`` when disabled or when the store is not a file (then set
    ``audit_anchor_file`` or another sink)."""
    if not settings.audit_anchor_file_enabled:
        return None
    if settings.audit_anchor_file:
        return Path(settings.audit_anchor_file)
    url = settings.audit_db_url
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        return Path(url.removeprefix("sqlite:///") + _SUFFIX)
    return None


def _line(cp: Checkpoint) -> str:
    return json.dumps(cp.to_dict(), sort_keys=True, separators=(",", ":"))


class FileAnchor:
    """Append-only JSON Lines file of checkpoints (written synchronously)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.failures = 0

    def write(self, cp: Checkpoint) -> None:
        data = (_line(cp) + "\n").encode()
        try:
            # One write() on an O_APPEND descriptor: lines from several workers
            # never interleave within a line.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        except OSError as exc:
            # The record is committed; losing its anchor weakens verification
            # but must not lose the record: logged, and verify reports a stale anchor.
            self.failures += 1
            log.error(ANCHOR_FAILED, sink="file", error=type(exc).__name__)


class SyslogAnchor:
    """One syslog message per checkpoint: ``pynomaly-audit-anchor: {json}``."""

    def __init__(self, address: str) -> None:
        target: str | tuple[str, int]
        if address.startswith("/"):
            target = address
        else:
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit():
                raise ConfigurationError(
                    f"audit_anchor_syslog must be host:port or a socket path, got {address!r}"
                )
            target = (host, int(port))
        self._handler = logging.handlers.SysLogHandler(
            address=target, facility=logging.handlers.SysLogHandler.LOG_AUTH
        )

    def __call__(self, doc: dict[str, Any]) -> None:
        text = SYSLOG_TAG + json.dumps(doc, sort_keys=True, separators=(",", ":"))
        record = logging.LogRecord("pynomaly.audit", logging.WARNING, "", 0, text, None, None)
        self._handler.emit(record)

    async def aclose(self) -> None:
        self._handler.close()


class RedisAnchor:
    """``RPUSH`` of each checkpoint line to a Redis list."""

    def __init__(self, url: str, key: str) -> None:
        import redis.asyncio as redis

        self._client = redis.Redis.from_url(url)
        self._key = key

    async def __call__(self, doc: dict[str, Any]) -> None:
        await self._client.rpush(self._key, json.dumps(doc, sort_keys=True))

    async def aclose(self) -> None:
        await self._client.aclose()


class WebhookAnchor:
    """One JSON ``POST`` per checkpoint."""

    def __init__(self, url: str) -> None:
        import httpx

        self._client = httpx.AsyncClient(timeout=5.0)
        self._url = url

    async def __call__(self, doc: dict[str, Any]) -> None:
        response = await self._client.post(self._url, json=doc)
        response.raise_for_status()

    async def aclose(self) -> None:
        await self._client.aclose()


def parse_anchor_lines(lines: Sequence[str], source: str) -> list[Checkpoint]:
    """Checkpoints from JSON lines; text before the first ``{`` (a syslog
    prefix) is ignored, blank lines are skipped, anything else is an error."""
    anchors = []
    for number, line in enumerate(lines, 1):
        start = line.find("{")
        if start < 0:
            if line.strip():
                raise SecurityError(f"{source}:{number}: not a checkpoint")
            continue
        if len(line) > _MAX_LINE:
            raise SecurityError(f"{source}:{number}: line too long for a checkpoint")
        try:
            # raw_decode: a syslog line may carry a trailing NUL or other text.
            doc, _ = _DECODER.raw_decode(line, start)
            anchors.append(Checkpoint.from_dict(doc))
        except (ValueError, KeyError, TypeError) as exc:
            raise SecurityError(f"{source}:{number}: not a checkpoint ({exc})") from exc
    return anchors


def load_anchor_file(path: Path) -> list[Checkpoint]:
    """Checkpoints of a file anchor (or of syslog lines exported to a file)."""
    return parse_anchor_lines(path.read_text().splitlines(), str(path))


async def load_redis_anchors(url: str, key: str) -> list[Checkpoint]:
    """Checkpoints of a Redis list anchor."""
    import redis.asyncio as redis

    client = redis.Redis.from_url(url)
    try:
        raw = await client.lrange(key, 0, -1)
    finally:
        await client.aclose()
    lines = [item.decode() if isinstance(item, bytes) else str(item) for item in raw]
    return parse_anchor_lines(lines, f"redis {key}")
