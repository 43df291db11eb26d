"""Per-request features: what the behavioural models read of one request (issue 22).

Pure functions, no I/O, no NumPy: the profile model runs on these without the
``[ml]`` extra. :func:`extract` turns the raw pieces of a request (method, path,
query string, body, content type, header names) into :class:`RequestFeatures`:

- the **endpoint**: the path with identifier-like segments folded (``/users/42``
  and ``/users/7`` are one endpoint, ``/users/{n}``), its depth and extension;
- each **parameter** (query pairs, form fields, top-level JSON members, dotted
  one level down) with its name, source, length, the set of character classes
  in its value (a bit mask: lower, upper, digit, Latin letters, other high,
  control, space, and each ASCII punctuation character on its own, since ``@``
  in an e-mail field is normal and ``'`` is not) and its *shape* (letters ->
  ``a``, digits -> ``9``, runs folded: ``john.doe@x.com`` -> ``a.a@a.a``);
- the header **names** (never values), the body's type and length.

Values are read as latin-1 after percent-decoding: byte-transparent, so a UTF-8
or Latin-1 encoded character is the same bytes in training and in use, and no
input can fail to decode. The values themselves are kept only as a short keyed
digest (:func:`value_digest`), never as text: a profile remembers "this field
took one of 5 values", not what they were; credential fields keep no digest.

Cost: a few microseconds for a typical request (``bench/anomaly.py`` measures it).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby
from urllib.parse import unquote_plus

__all__ = [
    "CHAR_CLASSES",
    "Param",
    "RequestFeatures",
    "char_mask",
    "endpoint_of",
    "extract",
    "secret_names",
    "shape_of",
    "value_digest",
]

# -- character classes -------------------------------------------------------------
_PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
CHAR_CLASSES: tuple[str, ...] = (
    "lower",
    "upper",
    "digit",
    "latin_letter",
    "other_high",
    "control",
    "space",
    *_PUNCT,
)
"""Names of the bits of :func:`char_mask`, in bit order."""

# Each character of 0-255 is translated to one representative of its class (letters
# keep a letter, digits become 9, punctuation stays itself), so a value's classes are
# the few distinct characters of its translation, and its shape is read from it too.
_LOWER, _UPPER, _LATIN, _HIGH, _CONTROL = "a", "A", "\u0141", "\u0126", "\u2400"
_CLASS_OF: dict[int, str] = {}
for _code in range(256):
    _ch = chr(_code)
    if "a" <= _ch <= "z":
        _CLASS_OF[_code] = _LOWER
    elif "A" <= _ch <= "Z":
        _CLASS_OF[_code] = _UPPER
    elif "0" <= _ch <= "9":
        _CLASS_OF[_code] = "9"
    elif _code >= 0xC0 and _code not in (0xD7, 0xF7):
        _CLASS_OF[_code] = _LATIN
    elif _code >= 0x80:
        _CLASS_OF[_code] = _HIGH
    elif _code < 0x20 or _code == 0x7F:
        _CLASS_OF[_code] = _CONTROL
    else:
        _CLASS_OF[_code] = _ch  # space and punctuation: classes of their own
_BIT: dict[str, int] = {
    _LOWER: 1 << 0,
    _UPPER: 1 << 1,
    "9": 1 << 2,
    _LATIN: 1 << 3,
    _HIGH: 1 << 4,
    _CONTROL: 1 << 5,
    " ": 1 << 6,
    **{c: 1 << (7 + i) for i, c in enumerate(_PUNCT)},
}
_OTHER_HIGH = 1 << 4
_LETTERS_AS_A = str.maketrans({_UPPER: "a", _LATIN: "a"})


def _mask_of(classes: str) -> int:
    mask = 0
    bit = _BIT.get
    for ch in set(classes):
        mask |= bit(ch, _OTHER_HIGH)  # beyond latin-1: left as is, "other high"
    return mask


def char_mask(value: str) -> int:
    """The character classes in ``value`` as a bit mask (:data:`CHAR_CLASSES`)."""
    return _mask_of(value.translate(_CLASS_OF))


# -- shapes ------------------------------------------------------------------------
SHAPE_CHARS = 24
"""Shapes longer than this are cut (and end in ``~``): free text has many shapes,
and the profile learns that from how many it sees."""


def _shape(classes: str) -> str:
    folded = "".join(k for k, _ in groupby(classes[: SHAPE_CHARS * 8].translate(_LETTERS_AS_A)))
    return folded if len(folded) <= SHAPE_CHARS else folded[:SHAPE_CHARS] + "~"


def shape_of(value: str) -> str:
    """Letters -> ``a``, digits -> ``9``, other characters kept (control characters
    as one symbol), runs folded."""
    return _shape(value.translate(_CLASS_OF))


def value_digest(value: str, salt: bytes) -> str:
    """A short keyed digest of a value: profiles count values without keeping them."""
    return hashlib.blake2b(value.encode("latin-1", "replace"), digest_size=8, key=salt).hexdigest()


# -- endpoints ---------------------------------------------------------------------
_ID_SEGMENT = re.compile(r"\d+|[0-9a-fA-F-]{16,}|[A-Za-z0-9_-]{22,}")
MAX_PATH_CHARS = 512


def endpoint_of(path: str) -> str:
    """The endpoint a path stands for: segments that look like identifiers (digits,
    long hex or UUIDs, long tokens) become ``{n}``."""
    path = path[:MAX_PATH_CHARS]
    if "/" not in path[1:]:
        return path if _ID_SEGMENT.fullmatch(path[1:]) is None else "/{n}"
    return "/".join("{n}" if _ID_SEGMENT.fullmatch(s) else s for s in path.split("/"))


# -- the features ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a request: never its value, only what the models read of it."""

    name: str
    source: str  # "q" query, "b" form or JSON body
    length: int
    mask: int
    shape: str
    digest: str | None  # None for credential fields


@dataclass(frozen=True, slots=True)
class RequestFeatures:
    method: str
    endpoint: str
    depth: int
    extension: str
    params: tuple[Param, ...]
    header_names: frozenset[str]
    body_type: str
    body_length: int
    query_length: int
    path_mask: int


MAX_PARAMS = 64
"""Parameters read per request; the rest are counted (``params`` keeps the first)."""
MAX_NAME_CHARS = 64
_BODY_TYPES = {
    "application/x-www-form-urlencoded": "form",
    "application/json": "json",
    "multipart/form-data": "multipart",
    "text/plain": "text",
    "application/xml": "xml",
    "text/xml": "xml",
}


def _body_type(content_type: str) -> str:
    base = content_type.partition(";")[0].strip().lower()
    if not base:
        return "none"
    found = _BODY_TYPES.get(base)
    if found is not None:
        return found
    return "json" if base.endswith("+json") else "other"


def _json_pairs(body: str) -> list[tuple[str, str]]:
    """Top-level members of a JSON object (and one level down, dotted) as text."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):  # too deep: one opaque value, never an error
        return [("(json)", body)]
    pairs: list[tuple[str, str]] = []
    if not isinstance(doc, dict):
        return [("(json)", body)]
    for key, value in doc.items():
        if isinstance(value, dict):
            for sub, inner in value.items():
                pairs.append((f"{key}.{sub}", _json_text(inner)))
        else:
            pairs.append((str(key), _json_text(value)))
        if len(pairs) >= MAX_PARAMS:
            break
    return pairs


def _json_text(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _pairs(text: str) -> list[tuple[str, str]]:
    """``name=value`` pairs as ``parse_qsl(keep_blank_values=True, encoding="latin-1")``
    reads them, decoding only what is encoded, and at most :data:`MAX_PARAMS`."""
    out = []
    for pair in text.split("&", MAX_PARAMS)[:MAX_PARAMS]:
        if not pair:
            continue
        name, _, value = pair.partition("=")
        if "%" in name or "+" in name:
            name = unquote_plus(name, encoding="latin-1")
        if "%" in value or "+" in value:
            value = unquote_plus(value, encoding="latin-1")
        out.append((name, value))
    return out


def _fold(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


def secret_names(fields: Iterable[str]) -> frozenset[str]:
    """Credential field names as :func:`extract` compares them (any case, ``_``/``-``)."""
    return frozenset(_fold(f) for f in fields)


def _params(
    pairs: Iterable[tuple[str, str]],
    source: str,
    salt: bytes,
    secret: frozenset[str],
    out: list[Param],
) -> None:
    for name, value in pairs:
        if len(out) >= MAX_PARAMS:
            return
        name = name[:MAX_NAME_CHARS]
        hidden = _fold(name) in secret
        classes = value.translate(_CLASS_OF)
        out.append(
            Param(
                name,
                source,
                len(value),
                _mask_of(classes),
                _shape(classes),
                None if hidden else value_digest(value, salt),
            )
        )


_MEMO_MAX = 1024  # memories emptied when full: bounded; the same few keys repeat
_PATHS: dict[str, tuple[str, int, str, int]] = {}


def _path_features(path: str) -> tuple[str, int, str, int]:
    """Endpoint, depth, extension and character classes of a path (remembered: the
    same paths repeat; the memory is emptied when full)."""
    found = _PATHS.get(path)
    if found is None:
        if len(_PATHS) >= _MEMO_MAX:
            _PATHS.clear()
        last = path.rsplit("/", 1)[-1]
        dot = last.rfind(".")
        extension = last[dot + 1 :][:16].lower() if dot >= 0 else ""
        found = (endpoint_of(path), path.count("/"), extension, char_mask(path))
        if len(path) <= MAX_PATH_CHARS:
            _PATHS[path] = found
    return found


_HEADER_SETS: dict[tuple[str, ...], frozenset[str]] = {}


def _header_set(names: tuple[str, ...]) -> frozenset[str]:
    found = _HEADER_SETS.get(names)
    if found is None:
        if len(_HEADER_SETS) >= _MEMO_MAX:
            _HEADER_SETS.clear()
        found = _HEADER_SETS[names] = frozenset(h.lower()[:MAX_NAME_CHARS] for h in names)
    return found


def extract(
    method: str,
    path: str,
    query: str,
    body: str,
    content_type: str,
    header_names: Sequence[str],
    *,
    salt: bytes = b"",
    secret_fields: frozenset[str] = frozenset(),
) -> RequestFeatures:
    """The features of one request (module docstring). ``query`` and ``body`` are
    text as sent (percent-encoded), read as latin-1; ``secret_fields``: names whose
    values keep no digest (credentials; :func:`secret_names`)."""
    params: list[Param] = []
    if query:
        _params(
            _pairs(query),
            "q",
            salt,
            secret_fields,
            params,
        )
    kind = _body_type(content_type)
    if body:
        if kind == "form":
            pairs = _pairs(body)
        elif kind == "json":
            pairs = _json_pairs(body)
        else:
            pairs = [("(body)", body[:4096])]
        _params(pairs, "b", salt, secret_fields, params)
    endpoint, depth, extension, path_mask = _path_features(path)
    return RequestFeatures(
        method=method.upper()[:16],
        endpoint=endpoint,
        depth=depth,
        extension=extension,
        params=tuple(params),
        header_names=_header_set(tuple(header_names[:100])),
        body_type=kind,
        body_length=len(body),
        query_length=len(query),
        path_mask=path_mask,
    )
