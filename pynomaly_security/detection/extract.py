"""Lists every user-controlled value of a request as ``(field, value)`` pairs.

Fields are named the way findings and exclusions name them:

- ``path`` (the whole raw path: traversal spans segments);
- ``query.<name>`` (names that are not plain identifiers are values too);
- ``body.<name>`` for form fields and multipart parts
  (``body.<name>.filename`` for upload file names), ``body.<a>.<b>.<0>`` for
  JSON values and keys at any depth, ``body`` for any other text body;
- ``cookie.<name>`` and ``header.<name>`` (the configured header list).

Parsing never raises: malformed JSON, bad multipart and non-UTF-8 bytes are
inspected as text. JSON nested deeper than ``max_depth`` is reported
(:class:`JsonTooDeep`) because the application's own ``json.loads`` would
hit Python's recursion limit and answer 500.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from urllib.parse import unquote_plus

from pynomaly_security.detection.normalize import is_plain
from pynomaly_security.detection.types import RequestParts

__all__ = ["MAX_FIELDS", "HeaderSelector", "JsonTooDeep", "extract_fields"]

PLAIN_KEY_MIN = 8
_MAX_HEADER_NAMES = 1024
MAX_FIELDS = 2000
"""Values beyond this many per request are not inspected (bounded work)."""

_FORM_START = re.compile(rb"[\w.\[\]-]{1,64}=")
_TEXT_PART_TYPES = ("text/", "application/json", "application/xml", "application/x-www-form")


class JsonTooDeep(ValueError):
    """The JSON body nests deeper than allowed."""


# Headers browsers and proxies set with fixed grammars; "*" in the header list
# means every header except these (custom headers such as "test:" included).
STANDARD_HEADERS = frozenset(
    {
        *("accept", "accept-charset", "accept-encoding", "accept-language", "accept-datetime"),
        *("access-control-request-headers", "access-control-request-method"),
        *("authorization", "cache-control", "connection", "content-length", "content-encoding"),
        *("content-md5", "content-type", "cookie", "date", "dnt", "expect", "forwarded", "host"),
        *("if-match", "if-modified-since", "if-none-match", "if-range", "if-unmodified-since"),
        *("keep-alive", "max-forwards", "origin", "pragma", "priority", "proxy-authorization"),
        *("proxy-connection", "range", "te", "trailer", "transfer-encoding", "upgrade"),
        *("upgrade-insecure-requests", "via", "warning", "purpose"),
    }
)


class HeaderSelector:
    """Which header names to inspect: exact names, prefixes ending in ``*``, or
    ``*`` alone for every header but :data:`STANDARD_HEADERS` and ``sec-*``."""

    def __init__(self, names: Sequence[str]) -> None:
        lowered = [name.strip().lower() for name in names if name.strip()]
        self._all = "*" in lowered
        self._exact = frozenset(n for n in lowered if not n.endswith("*"))
        self._prefixes = tuple(n[:-1] for n in lowered if n.endswith("*") and n != "*")
        # Raw ASGI header name -> what extract_fields does with it. Clients send
        # few distinct names, so each is decoded, lowered and matched once per
        # process instead of once per request; emptied when full (bounded).
        self.roles: dict[bytes, str] = {}
        """What :meth:`role_of` answered so far (read directly on the hot path)."""

    def role_of(self, raw_name: bytes) -> str:
        """``"cookie"``, ``"content-type"``, ``"header.<name>"`` when the header is
        inspected, or ``""`` when it is not."""
        known = self.roles.get(raw_name)
        if known is not None:
            return known
        name = raw_name.decode("latin-1").lower()
        if name in ("cookie", "content-type"):
            role = name
        else:
            role = f"header.{name}" if self(name) else ""
        if len(self.roles) >= _MAX_HEADER_NAMES:
            self.roles.clear()
        self.roles[raw_name] = role
        return role

    def __call__(self, name: str) -> bool:
        name = name.replace("_", "-")  # X_Filename reaches apps as x_filename
        if name in self._exact or name.startswith(self._prefixes):
            return True
        return self._all and name not in STANDARD_HEADERS and not name.startswith("sec-")


def _key_worth_scanning(key: str) -> bool:
    """Names are values too; short plain names (``id``, ``page``) are skipped here,
    longer plain ones still reach the encoded-payload rules (base64 gadgets)."""
    return len(key) >= PLAIN_KEY_MIN or not is_plain(key)


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _pairs(text: str, prefix: str) -> Iterator[tuple[str, str]]:
    """``a=1&b=2`` with ``+`` as space; odd names are inspected too."""
    for chunk in text.split("&", MAX_FIELDS)[:MAX_FIELDS]:
        if not chunk:
            continue
        name, sep, value = chunk.partition("=")
        key = unquote_plus(name, errors="replace")
        field = f"{prefix}.{key}" if key else prefix
        if _key_worth_scanning(key):
            yield field, key
        if sep:
            yield field, unquote_plus(value, errors="replace")


def _json_fields(doc: object, prefix: str, max_depth: int) -> Iterator[tuple[str, str]]:
    stack: list[tuple[str, object, int]] = [(prefix, doc, 0)]
    while stack:
        path, node, depth = stack.pop()
        if depth > max_depth:
            raise JsonTooDeep(path)
        if isinstance(node, str):
            yield path, node
        elif isinstance(node, dict):
            for key, child in node.items():
                child_path = f"{path}.{key}"
                if _key_worth_scanning(key):
                    yield child_path, key
                stack.append((child_path, child, depth + 1))
        elif isinstance(node, list):
            for index, child in enumerate(node):
                stack.append((f"{path}.{index}", child, depth + 1))


def _multipart(body: bytes, boundary: str) -> Iterator[tuple[str, str]]:
    delimiter = b"--" + boundary.encode("latin-1", errors="replace")
    for part in body.split(delimiter)[1:MAX_FIELDS]:
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            head, sep, content = part.partition(b"\n\n")
            if not sep:
                continue
        name, filename, part_type = "", None, ""
        for line in _decode(head).splitlines():
            lower = line.lower()
            if lower.startswith("content-disposition:"):
                for item in line.split(";")[1:]:
                    key, _, val = item.strip().partition("=")
                    if key.lower() == "name":
                        name = val.strip('"')
                    elif key.lower() == "filename":
                        filename = val.strip('"')
            elif lower.startswith("content-type:"):
                part_type = lower.partition(":")[2].strip()
        field = f"body.{name}" if name else "body"
        if filename is not None:
            yield f"{field}.filename", filename
            if part_type and not part_type.startswith(_TEXT_PART_TYPES):
                continue  # uploaded binary file: not free text
        yield field, _decode(content.removesuffix(b"\r\n"))


def _body_fields(body: bytes, content_type: str, max_depth: int) -> Iterator[tuple[str, str]]:
    media = content_type.partition(";")[0].strip().lower()
    stripped = body.lstrip()
    if "json" in media or (not media and stripped[:1] in (b"{", b"[")):
        try:
            doc = json.loads(body)
        except RecursionError as exc:
            raise JsonTooDeep("body") from exc
        except ValueError:
            pass
        else:
            yield from _json_fields(doc, "body", max_depth)
            return
    elif media == "multipart/form-data":
        for param in content_type.split(";")[1:]:
            key, _, val = param.strip().partition("=")
            if key.lower() == "boundary" and val.strip('"'):
                yield from _multipart(body, val.strip('"'))
                return
    elif media == "application/x-www-form-urlencoded" or (
        # No declared type, and either no whitespace or a "name=" start: read
        # it as a form (clients and test tools default to it), so "+" and
        # "%xx" decode as in a form.
        not media
        and stripped
        and (not any(c in body for c in b" \t\r\n") or _FORM_START.match(body) is not None)
    ):
        yield from _pairs(_decode(body), "body")
        return
    yield "body", _decode(body)


def extract_fields(
    parts: RequestParts, headers: HeaderSelector, *, max_depth: int = 64
) -> list[tuple[str, str]]:
    """Every inspectable value of ``parts``; raises :class:`JsonTooDeep` only."""
    fields: list[tuple[str, str]] = [("path", parts.path)]
    if parts.query_string:
        fields.extend(_pairs(_decode(parts.query_string), "query"))
    content_type = ""
    roles = headers.roles
    for raw_name, raw_value in parts.headers:
        role = roles.get(raw_name)
        if role is None:
            role = headers.role_of(raw_name)
        if not role:
            continue
        if role == "content-type":
            content_type = raw_value.decode("latin-1")
        elif role == "cookie":
            for item in _decode(raw_value).split(";")[:MAX_FIELDS]:
                key, _, val = item.strip().partition("=")
                fields.append((f"cookie.{key}", val))
                if _key_worth_scanning(key):
                    fields.append((f"cookie.{key}", key))
        else:
            fields.append((role, _decode(raw_value)))
    if parts.body:
        fields.extend(_body_fields(parts.body, content_type, max_depth))
    return fields if len(fields) <= MAX_FIELDS else fields[:MAX_FIELDS]
