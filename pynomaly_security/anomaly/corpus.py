"""Labelled requests from JSON Lines (the CSIC 2010 files, ``../shared/corpora``).

One object per line with ``method``, ``uri`` (path and query as sent), ``headers``
(name -> value), ``body`` and ``label`` (``normal``/``benign`` or
``anomalous``/``attack``); optional ``set`` (``train``/``test``) and ``category``
(the attack type, for per-type figures). ``.gz`` files are read as gzip.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote

from pynomaly_security.anomaly.features import RequestFeatures, extract

__all__ = ["NORMAL_LABELS", "LabelledRequest", "read_corpus", "request_features"]

NORMAL_LABELS = frozenset({"normal", "benign"})
ANOMALOUS_LABELS = frozenset({"anomalous", "attack"})


@dataclass(frozen=True, slots=True)
class LabelledRequest:
    features: RequestFeatures
    anomalous: bool
    category: str
    set: str


class CorpusError(ValueError):
    """A line that is not a labelled request (its number in the message)."""


def request_features(
    record: dict[str, Any], *, salt: bytes = b"", secret_fields: frozenset[str] = frozenset()
) -> RequestFeatures:
    """The features of one JSON Lines record (its path read as latin-1 after
    percent-decoding, as the live layer reads the decoded ASGI path)."""
    uri = str(record.get("uri") or "/")
    path, _, query = uri.partition("?")
    headers = record.get("headers") or {}
    if not isinstance(headers, dict):
        raise CorpusError("headers is not an object")
    content_type = ""
    for name, value in headers.items():
        if str(name).lower() == "content-type":
            content_type = str(value)
    return extract(
        str(record.get("method") or "GET"),
        unquote(path, encoding="latin-1"),
        query,
        str(record.get("body") or ""),
        content_type,
        [str(n) for n in headers],
        salt=salt,
        secret_fields=secret_fields,
    )


def _open(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def read_corpus(
    path: Path,
    *,
    salt: bytes = b"",
    secret_fields: frozenset[str] = frozenset(),
    sets: frozenset[str] | None = None,
) -> Iterator[LabelledRequest]:
    """Each labelled request of the file (of ``sets`` when given and the line says)."""
    with _open(path) as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                label = str(record["label"]).lower()
            except (ValueError, KeyError, TypeError) as exc:
                raise CorpusError(f"line {number}: not a labelled request ({exc})") from exc
            if label not in NORMAL_LABELS and label not in ANOMALOUS_LABELS:
                raise CorpusError(f"line {number}: unknown label {label[:40]!r}")
            which = str(record.get("set") or "")
            if sets is not None and which and which not in sets:
                continue
            try:
                features = request_features(record, salt=salt, secret_fields=secret_fields)
            except CorpusError as exc:
                raise CorpusError(f"line {number}: {exc}") from exc
            yield LabelledRequest(
                features,
                label in ANOMALOUS_LABELS,
                str(record.get("category") or label),
                which,
            )
