"""Turn a corpus / capture record into the :class:`RequestParts` the
middleware would build for the same request.

A record is ``{"method", "uri", "headers", "body"}`` (the corpora format):
``uri`` is path plus query as sent. The middleware takes the path from ASGI
``raw_path`` (bytes as sent, decoded as latin-1), the raw ``query_string``,
lower-cased header names as bytes, and the body bytes; this does the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pynomaly_security.detection.types import RequestParts

__all__ = ["request_parts_from_record"]


def _bytes(value: Any) -> bytes:
    return value.encode("utf-8", errors="surrogateescape") if isinstance(value, str) else b""


def request_parts_from_record(record: Mapping[str, Any]) -> RequestParts:
    """The :class:`RequestParts` for one ``{"method","uri","headers","body"}`` record."""
    uri = str(record.get("uri") or "/").partition("#")[0]
    path, _, query = uri.partition("?")
    headers_in = record.get("headers") or {}
    pairs = headers_in.items() if isinstance(headers_in, Mapping) else headers_in
    headers = tuple((_bytes(str(k)).lower(), _bytes(str(v))) for k, v in pairs)
    body = record.get("body") or ""
    return RequestParts(
        method=str(record.get("method") or "GET").upper(),
        path=_bytes(path or "/").decode("latin-1"),
        query_string=_bytes(query),
        headers=headers,
        body=body.encode("utf-8", errors="surrogateescape") if isinstance(body, str) else b"",
        route=record.get("route") if isinstance(record.get("route"), str) else None,
    )
