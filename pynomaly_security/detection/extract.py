"""Lists every user-controlled value of a request as ``(field, value)`` pairs,
read the way Starlette and FastAPI read them.

Fields are named the way findings and exclusions name them:

- ``path`` (the whole raw path: traversal spans segments);
- ``query.<name>`` (names that are not plain identifiers are values too);
- ``body.<name>`` for form fields and multipart parts
  (``body.<name>.filename`` for upload file names), ``body.<a>.<b>.<0>`` for
  JSON values and keys at any depth, ``body`` for any other body, read whole as
  text: FastAPI hands a ``str`` body parameter the raw text of every type it
  does not json-decode (``text/plain``, ``application/x-json``, octet-stream,
  none), so such a body is read as text even when it is also read as JSON (one
  without a type shaped like a form, ``a=1&b=2``, is read as a form);
- ``cookie.<name>`` and ``header.<name>`` (the configured header list; ``*``:
  every header an app may declare with ``Header()``).

The same parsers as the framework, on the same bytes (the README's "How a
request is read" table): the FIRST ``Content-Type`` (Starlette's
``Headers.get``), header values as latin-1, the query through
``parse_qsl(keep_blank_values=True)``, cookies through Starlette's
``cookie_parser``, forms and multipart bodies through python-multipart with
Starlette's callbacks and charset rule, JSON through ``json.loads`` of the body
bytes as FastAPI does. Where the app could read a value another way (raw
non-ASCII bytes, a ``charset`` parameter, a duplicate JSON key the app takes
the last of), every reading is listed.

Nothing is cut: a request past a limit (:class:`~.types.InspectionLimits`) or
ambiguous (two ``Content-Type`` headers, ``Content-Length`` with
``Transfer-Encoding``, a compressed body) raises
:class:`~.types.InspectionRefused`, and so does JSON the app cannot use (too
deep, ``NaN``/``Infinity``, numbers too long for ``int``, lone surrogates).
Malformed bodies otherwise never raise: they are inspected whole as text.
"""

from __future__ import annotations

import codecs
import json
import logging
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote_plus
from xml.parsers import expat

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, QuerystringParser, parse_options_header
from starlette.requests import cookie_parser

from pynomaly_security.detection.budget import Budget
from pynomaly_security.detection.normalize import is_plain
from pynomaly_security.detection.types import InspectionLimits, InspectionRefused, RequestParts

__all__ = [
    "CREDENTIAL_HEADERS",
    "DEFAULT_LIMITS",
    "SECRET_HEADERS",
    "UNINSPECTED_HEADERS",
    "Budget",
    "Framing",
    "HeaderSelector",
    "JsonTooDeep",
    "extract_fields",
    "read_framing",
]

PLAIN_KEY_MIN = 8
_MAX_HEADER_NAMES = 1024
DEFAULT_LIMITS = InspectionLimits()

_FORM_START = re.compile(rb"[\w.\[\]-]{1,64}=")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'",[{')
_TEXT_PART_TYPES = ("text/", "application/json", "application/xml", "application/x-www-form")
_IDENTITY = frozenset({b"", b"identity"})
# python-multipart logs every malformed body it meets; an attacker's bodies must
# not write to our logs (the parser is given this silent logger).
_PARSER_LOG = logging.getLogger(__name__ + ".multipart")
_PARSER_LOG.addHandler(logging.NullHandler())
_PARSER_LOG.propagate = False


class JsonTooDeep(InspectionRefused):
    """The JSON body nests deeper than allowed."""

    def __init__(self, path: str = "body") -> None:
        super().__init__(400, "json_too_deep")
        self.path = path


def _refuse(status: int, reason: str) -> InspectionRefused:
    return InspectionRefused(status, reason)


# "*" in the header list inspects every header but these: an app reads any header
# it declares with Header() (Accept-Language, X-Custom-Thing...), so only headers
# whose value the server or framework consumes itself are left out.
UNINSPECTED_HEADERS = frozenset(
    {
        "host",  # compared with ALLOWED_HOSTS by the tracking layer
        # Framing and transport: read_framing refuses what is ambiguous in them.
        *("content-length", "content-type", "content-encoding", "transfer-encoding"),
        *("connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"),
        *("expect", "accept-encoding"),
        # Trace context, parsed by tracing instrumentation (W3C, Sentry): ids and
        # span names such as a route template "/product/[saleId]", not app input.
        *("traceparent", "tracestate", "baggage", "sentry-trace"),
    }
)
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization"})
"""Never inspected, even when named: no excerpt of a credential may be recorded."""
SECRET_HEADERS = frozenset({"cookie", "x-api-key"})
"""Inspected, but they carry a session or an API key: a request with one is never
remembered as clean and their values are never memoized (an app adds its own
API-key headers, ``API_KEY_HEADERS``)."""


class HeaderSelector:
    """Which header names to inspect: exact names, prefixes ending in ``*``, or
    ``*`` alone for every header but :data:`UNINSPECTED_HEADERS`; never
    :data:`CREDENTIAL_HEADERS` (``Cookie`` is read on its own, pair by pair)."""

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
        if name in CREDENTIAL_HEADERS:
            return False
        if name in self._exact or name.startswith(self._prefixes):
            return True
        return self._all and name not in UNINSPECTED_HEADERS


@dataclass(frozen=True, slots=True)
class Framing:
    """How a request's body is framed and typed, read as Starlette reads it.

    ``content_type`` is the first ``Content-Type`` (latin-1, as
    ``request.headers.get("content-type")``), ``has_body`` whether a body
    follows, ``content_encoding`` the ``Content-Encoding`` when not identity.
    """

    content_type: str = ""
    has_body: bool = False
    content_encoding: bytes = b""


_NO_FRAMING = Framing()


def read_framing(headers: Sequence[Sequence[bytes]], max_headers: int) -> Framing:
    """The request's :class:`Framing`; raises :class:`InspectionRefused` when the
    request has more header lines than ``max_headers`` (431) or is ambiguous
    (400): two ``Content-Type`` headers (Starlette reads the first, another
    reader the last), ``Content-Length`` with ``Transfer-Encoding`` or two
    different ``Content-Length`` values (request smuggling: a proxy and the
    server could split the body differently)."""
    if len(headers) > max_headers:
        raise _refuse(431, "too_many_headers")
    content_type: bytes | None = None
    lengths: set[bytes] = set()
    chunked = False
    encoding = b""
    for name, value in headers:
        if name == b"content-type":
            if content_type is not None:
                raise _refuse(400, "ambiguous_content_type")
            content_type = value
        elif name == b"content-length":
            lengths.add(value.strip())
        elif name == b"transfer-encoding":
            chunked = True
        elif name == b"content-encoding":
            coding = value.strip().lower()
            if coding not in _IDENTITY:
                encoding = coding
    if len(lengths) > 1 or (lengths and chunked):
        raise _refuse(400, "ambiguous_content_length")
    has_body = chunked or bool(lengths - {b"0", b""})
    if content_type is None and not has_body and not encoding:
        return _NO_FRAMING
    return Framing((content_type or b"").decode("latin-1"), has_body, encoding)


def _key_worth_scanning(key: str) -> bool:
    """Names are values too; short plain names (``id``, ``page``) are skipped here,
    longer plain ones still reach the encoded-payload rules (base64 gadgets)."""
    return len(key) >= PLAIN_KEY_MIN or not is_plain(key)


class _Fields:
    """The growing field list, bounded by ``limits.max_fields`` (fails closed)."""

    __slots__ = ("budget", "items", "limits")

    def __init__(self, limits: InspectionLimits, budget: Budget | None) -> None:
        self.items: list[tuple[str, str]] = []
        self.limits = limits
        self.budget = budget

    def room(self, count: int) -> None:
        """Refuse before parsing ``count`` more values past the limit."""
        if len(self.items) + count > self.limits.max_fields:
            raise _refuse(413, "too_many_fields")

    def add(self, name: str, value: str) -> None:
        items = self.items
        if len(items) >= self.limits.max_fields:
            raise _refuse(413, "too_many_fields")
        items.append((name, value))
        if self.budget is not None:
            # Parsing is metered as it goes (the form and cookie parsers call back
            # per value): 10,000 form fields took 90 ms to parse before any scan.
            self.budget.spend(len(value) + 16)

    def named(self, prefix: str, key: str, value: str) -> None:
        """A ``name=value`` pair: the value, and the name when worth scanning."""
        field = f"{prefix}.{key}" if key else prefix
        if _key_worth_scanning(key):
            self.add(field, key)
        self.add(field, value)


def _query(raw: bytes, out: _Fields) -> None:
    """Starlette's ``QueryParams``: latin-1, ``parse_qsl(keep_blank_values=True)``
    (``+`` is a space, ``%xx`` UTF-8); raw non-ASCII bytes are read as UTF-8 too."""
    out.room(raw.count(b"&") + 1)
    readings = [raw.decode("latin-1")]
    if not raw.isascii():
        readings.append(raw.decode("utf-8", errors="replace"))
    for text in readings:
        for key, value in parse_qsl(text, keep_blank_values=True):
            out.named("query", key, value)


def _cookies(raw: bytes, out: _Fields) -> None:
    """Starlette's ``cookie_parser`` per ``;`` chunk: every pair, also a name
    repeated (the app keeps the last; each one is inspected)."""
    out.room(raw.count(b";") + 1)
    readings = [raw.decode("latin-1")]
    if not raw.isascii():
        readings.append(raw.decode("utf-8", errors="replace"))
    for text in readings:
        for chunk in text.split(";"):
            for key, value in cookie_parser(chunk).items():
                out.add(f"cookie.{key}", value)
                if _key_worth_scanning(key):
                    out.add(f"cookie.{key}", key)


def _form(body: bytes, out: _Fields) -> None:
    """An urlencoded body through python-multipart's ``QuerystringParser`` with
    Starlette's ``FormParser`` decoding (latin-1, then ``unquote_plus``)."""
    out.room(body.count(b"&") + 1)
    name = bytearray()
    value = bytearray()
    ascii_body = body.isascii()

    def on_field_start() -> None:
        del name[:], value[:]

    def on_field_name(data: bytes, start: int, end: int) -> None:
        name.extend(data[start:end])

    def on_field_data(data: bytes, start: int, end: int) -> None:
        value.extend(data[start:end])

    def on_field_end() -> None:
        key = unquote_plus(name.decode("latin-1"))
        out.named("body", key, unquote_plus(value.decode("latin-1")))
        if not ascii_body and not (name.isascii() and value.isascii()):
            key = unquote_plus(name.decode("utf-8", "replace"))
            out.named("body", key, unquote_plus(value.decode("utf-8", "replace")))

    parser = QuerystringParser(
        {
            "on_field_start": on_field_start,
            "on_field_name": on_field_name,
            "on_field_data": on_field_data,
            "on_field_end": on_field_end,
        }
    )
    parser.write(body)
    parser.finalize()


def _lenient_multipart(body: bytes, boundary: bytes, out: _Fields, max_parts: int) -> bool:
    """A multipart body python-multipart rejects (LF line ends, a broken part):
    Starlette answers 400, but an app reading the raw body may split it more
    leniently, so it is read that way (parts split at the delimiter, ``\n`` line
    ends accepted). ``False`` when no part is found (then it is read as text)."""
    found = False
    pieces = body.split(b"--" + boundary)[1:]
    if len(pieces) > max_parts + 1:
        raise _refuse(413, "too_many_parts")
    for piece in pieces:
        head, sep, content = piece.partition(b"\r\n\r\n")
        if not sep:
            head, sep, content = piece.partition(b"\n\n")
            if not sep:
                continue
        _, options = parse_options_header(
            next(
                (
                    line.partition(b":")[2]
                    for line in head.splitlines()
                    if line.lower().startswith(b"content-disposition:")
                ),
                b"",
            )
        )
        name = options.get(b"name", b"").decode("utf-8", "replace")
        field = f"body.{name}" if name else "body"
        if _key_worth_scanning(name):
            out.add(field, name)
        if b"filename" in options:
            out.add(f"{field}.filename", options[b"filename"].decode("utf-8", "replace"))
        out.add(field, content.removesuffix(b"\r\n").removesuffix(b"\n").decode("utf-8", "replace"))
        found = True
    return found


def _safe_decode(data: bytes | bytearray, codec: str) -> str:
    """Starlette's ``_user_safe_decode``: the charset, else latin-1."""
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return data.decode("latin-1")


class _Malformed(Exception):
    """A body its declared parser rejects (the app answers 400): read as text."""


def _multipart(body: bytes, params: dict[bytes, bytes], out: _Fields, max_parts: int) -> None:
    """A multipart body through python-multipart's ``MultipartParser`` with
    Starlette's ``MultiPartParser`` rules: the ``charset`` parameter (else UTF-8;
    latin-1 when unknown or undecodable), ``name`` required, ``filename`` from
    ``parse_options_header`` (which drops ``filename*=``: such a part is a field)."""
    boundary = params.get(b"boundary")
    if not boundary:
        raise _Malformed
    charset = params.get(b"charset", b"utf-8").decode("latin-1")
    try:
        charset = codecs.lookup(charset).name
    except LookupError:
        charset = "latin-1"
    # UTF-8 and latin-1 decode to no lone surrogate; other codecs (UTF-7, *-escape) can.
    exotic = charset not in ("utf-8", "iso8859-1")
    first = len(out.items)
    parts = 0
    header_name = bytearray()
    header_value = bytearray()
    disposition = b""
    part_type = b""
    data = bytearray()

    def on_part_begin() -> None:
        nonlocal parts, disposition, part_type
        parts += 1
        if parts > max_parts:
            raise _refuse(413, "too_many_parts")
        disposition = part_type = b""
        del data[:]

    def on_header_field(chunk: bytes, start: int, end: int) -> None:
        header_name.extend(chunk[start:end])

    def on_header_value(chunk: bytes, start: int, end: int) -> None:
        header_value.extend(chunk[start:end])

    def on_header_end() -> None:
        nonlocal disposition, part_type
        field = bytes(header_name).lower()
        if field == b"content-disposition":
            disposition = bytes(header_value)
        elif field == b"content-type":
            part_type = bytes(header_value).strip().lower()
        del header_name[:], header_value[:]

    def on_part_data(chunk: bytes, start: int, end: int) -> None:
        data.extend(chunk[start:end])

    def on_part_end() -> None:
        _, options = parse_options_header(disposition)
        if b"name" not in options:
            raise _Malformed  # Starlette: 'The Content-Disposition header field "name"...'
        name = _safe_decode(options[b"name"], charset)
        field = f"body.{name}" if name else "body"
        if _key_worth_scanning(name):
            out.add(field, name)
        if b"filename" in options:
            out.add(f"{field}.filename", _safe_decode(options[b"filename"], charset))
            if part_type and not part_type.decode("latin-1").startswith(_TEXT_PART_TYPES):
                return  # an uploaded binary file: not free text
        out.add(field, _safe_decode(data, charset))

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
        },
    )
    parser.logger = _PARSER_LOG
    try:
        parser.write(body)
        parser.finalize()
    except FormParserError as exc:
        raise _Malformed from exc
    if exotic:
        _no_lone_surrogate(out.items[first:], "lone_surrogate")


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as all its pairs: a key sent twice keeps both values (the
    app's ``json.loads`` keeps the last; both are inspected)."""


def _non_finite(_: str) -> Any:
    raise _refuse(400, "json_non_finite")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999999 is inf: FastAPI cannot encode it back
        raise _refuse(400, "json_non_finite")
    return 0.0  # numbers are not inspected


def _bounded_int(text: str) -> int:
    limit = sys.get_int_max_str_digits()
    if limit and len(text.lstrip("-")) > limit:
        raise _refuse(400, "json_number_too_long")  # the app's int() raises ValueError
    return 0


def _json_elements(body: bytes, limit: int) -> None:
    """Refuse a JSON body of more than ``limit`` elements before it is parsed:
    ``json.loads`` cannot be interrupted, and ``[{},{},...]`` of 1 MB took seconds
    to parse and walk. Elements are counted as what starts one outside strings (a
    ``[`` or ``{``, and a ``,`` before every element but a container's first), so
    text full of commas is not counted; each count is a byte-string method."""
    if body.count(b",") + body.count(b"[") + body.count(b"{") <= limit:
        return  # the usual case: an upper bound (it counts text too) already fits
    encoding = json.detect_encoding(body)
    data = body if encoding == "utf-8" else body.decode(encoding, "replace").encode()
    data = data.removeprefix(codecs.BOM_UTF8).lstrip()
    if data[:1] not in (b"[", b"{"):
        return  # not a JSON container: one value, or not JSON (the parser stops early)
    # Escaped backslashes, then escaped quotes, out: every '"' left opens or closes
    # a string; the structure bytes between the 2nd and 3rd, 4th and 5th... are text.
    structure = data.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_STRUCTURE)
    if structure.count(b'"') > 4 * limit:
        raise _refuse(413, "json_too_many_elements")  # each element has at most 2 strings
    if sum(len(outside) for outside in structure.split(b'"')[::2]) > limit:
        raise _refuse(413, "json_too_many_elements")


def _json(body: bytes) -> Any:
    """``json.loads(body)`` as FastAPI calls it, with every object's pairs kept and
    the inputs the app cannot use refused. ``ValueError`` when it is not JSON."""
    try:
        return json.loads(
            body,
            object_pairs_hook=_Pairs,
            parse_constant=_non_finite,
            parse_float=_finite_float,
            parse_int=_bounded_int,
        )
    except RecursionError as exc:
        raise JsonTooDeep() from exc
    except UnicodeDecodeError as exc:
        raise ValueError("not JSON") from exc


def _json_fields(doc: object, out: _Fields, max_depth: int) -> None:
    stack: list[tuple[str, object, int]] = [("body", doc, 0)]
    budget = out.budget
    while stack:
        path, node, depth = stack.pop()
        if depth > max_depth:
            raise JsonTooDeep(path)
        if budget is not None:
            budget.spend(8)
        if isinstance(node, str):
            out.add(path, node)
        elif isinstance(node, _Pairs):
            for key, child in node:
                child_path = f"{path}.{key}"
                if _key_worth_scanning(key):
                    out.add(child_path, key)
                stack.append((child_path, child, depth + 1))
        elif isinstance(node, list):
            for index, child in enumerate(node):
                stack.append((f"{path}.{index}", child, depth + 1))


def _text(body: bytes, params: dict[bytes, bytes], out: _Fields) -> None:
    """A text body as UTF-8 and, when it names another charset (UTF-7, UTF-16),
    as that charset too: the app may decode it either way."""
    text = body.decode("utf-8", errors="replace")
    out.add("body", text)
    charset = params.get(b"charset", b"").decode("latin-1")
    if charset:
        try:
            codec = codecs.lookup(charset).name
        except LookupError:
            return
        if codec != "utf-8":
            other = body.decode(codec, errors="replace")
            if other != text:
                out.add("body", other)


def _xml_values(body: bytes, out: _Fields) -> None:
    """The attribute values and texts of an XML body, as an XML parser hands them to
    the app (``&quot;``, ``&#10;`` decoded), besides its whole text (:func:`_text`),
    within the room left under ``max_fields`` (never a refusal: the text is read
    whole anyway). A body with a DTD is not parsed (entity expansion): the XXE rules
    read its text."""
    lowered = body.lower()
    if b"<!doctype" in lowered or b"<!entity" in lowered:
        return
    room = out.limits.max_fields - len(out.items) - 1
    values: list[tuple[str, str]] = []
    stack: list[str] = []
    texts: list[str] = []

    def flush() -> None:
        text = "".join(texts)
        texts.clear()
        if text.strip() and stack:
            values.append((f"body.{stack[-1]}", text))

    def start(tag: str, attrs: dict[str, str]) -> None:
        flush()
        stack.append(tag)
        values.extend((f"body.{tag}.{name}", value) for name, value in attrs.items())

    def end(_: str) -> None:
        flush()
        stack.pop()

    parser = expat.ParserCreate()
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = texts.append
    try:
        parser.Parse(body, True)
    except expat.ExpatError:
        return  # not XML the app can parse: its text is read
    for name, value in values[: max(0, room)]:
        if value:
            out.add(name, value)


def _fastapi_reads_json(content_type: str) -> bool:
    """Whether FastAPI json-decodes a body of this ``Content-Type`` (its
    ``get_request_handler``: ``email.message`` maintype ``application`` and subtype
    ``json`` or ``*+json``; no type at all only with ``strict_content_type=False``),
    the same string operations as ``Message.get_content_type``. A body of any other
    type reaches a ``str`` or ``bytes`` body parameter as the raw text."""
    main, slash, sub = content_type.partition(";")[0].strip().lower().partition("/")
    return (
        main == "application"
        and bool(slash)
        and "/" not in sub
        and (sub == "json" or sub.endswith("+json"))
    )


def _no_lone_surrogate(values: list[tuple[str, str]], reason: str) -> None:
    """Refuse values holding a lone surrogate (JSON ``"\\ud800"``, a UTF-7 part): the
    app cannot encode them back (FastAPI's own 422 raised on them), and the
    inspector reads them replaced, not as the app has them."""
    for _, value in values:
        if not value.isascii() and _LONE_SURROGATE.search(value) is not None:
            raise _refuse(400, reason)


def _body(body: bytes, content_type: str, out: _Fields) -> None:
    media_raw, params = parse_options_header(content_type)
    media = media_raw.decode("latin-1")
    stripped = body.lstrip()
    limits = out.limits
    # Read as JSON: what FastAPI json-decodes (_fastapi_reads_json, and no type when
    # not strict) and what Starlette's request.json() decodes whatever the type;
    # "json" anywhere in the type is read as JSON too (a superset).
    if not media or "json" in media:
        _json_elements(body, limits.max_json_elements)
        start = len(out.items)
        try:
            doc = _json(body)
        except InspectionRefused:
            raise
        except ValueError:
            pass  # not JSON: the app answers 422; its bytes are inspected as text
        else:
            _json_fields(doc, out, limits.max_json_depth)
            if b"\\u" in body or not body.isascii():  # the only ways to a surrogate
                _no_lone_surrogate(out.items[start:], "json_lone_surrogate")
            if not _fastapi_reads_json(content_type):
                # FastAPI hands a str/bytes body this text as it is: read it too.
                _text(body, params, out)
            return
    try:
        if media == "multipart/form-data":
            try:
                _multipart(body, params, out, limits.max_parts)
                return
            except _Malformed:
                boundary = params.get(b"boundary")
                if boundary and _lenient_multipart(body, boundary, out, limits.max_parts):
                    return
                raise
        if media == "application/x-www-form-urlencoded" or (
            # No declared type, and either no whitespace or a "name=" start: read
            # it as a form (clients and test tools default to it). A str body gets
            # these pairs joined; each name and value is inspected (reading the
            # joined text too blocked CRS's form-field negatives: "var='oreo").
            not media
            and stripped
            and (not any(c in body for c in b" \t\r\n") or _FORM_START.match(body) is not None)
        ):
            _form(body, out)
            return
    except _Malformed:
        pass  # the app answers 400; every byte is inspected as text below
    # Any other type (text, XML, application/x-json, octet-stream, unknown, none):
    # FastAPI hands a str/bytes body parameter these bytes (pydantic decodes UTF-8).
    _text(body, params, out)
    if media.endswith("xml") and stripped.startswith(b"<"):
        _xml_values(body, out)


def extract_fields(
    parts: RequestParts,
    headers: HeaderSelector,
    *,
    limits: InspectionLimits = DEFAULT_LIMITS,
    budget: Budget | None = None,
    framing: Framing | None = None,
) -> list[tuple[str, str]]:
    """Every inspectable value of ``parts``, read as the framework reads it.

    Raises :class:`~.types.InspectionRefused` when the request is over a limit of
    ``limits``, over ``budget`` or ambiguous (see the module docstring); never
    anything else."""
    if framing is None:
        framing = read_framing(parts.headers, limits.max_headers)
    out = _Fields(limits, budget)
    out.add("path", parts.path)
    if parts.query_string:
        _query(parts.query_string, out)
    roles = headers.roles
    header_bytes = 0
    for raw_name, raw_value in parts.headers:
        role = roles.get(raw_name)
        if role is None:
            role = headers.role_of(raw_name)
        if not role or role == "content-type":
            continue
        # Servers accept large header values (uvicorn took 100 of 1 MB each), and
        # each is scanned: the inspected ones are capped together, before any scan.
        header_bytes += len(raw_value)
        if header_bytes > limits.max_header_bytes:
            raise _refuse(431, "headers_too_large")
        if role == "cookie":
            _cookies(raw_value, out)
        else:
            out.add(role, raw_value.decode("latin-1"))  # as Starlette's Headers
            if not raw_value.isascii():
                out.add(role, raw_value.decode("utf-8", errors="replace"))
    if parts.body:
        if framing.content_encoding:
            # Starlette does not decode request bodies; the app might. Compressed
            # bytes cannot be inspected, so they are not passed on.
            raise _refuse(415, "content_encoding_unsupported")
        _body(parts.body, framing.content_type, out)
    return out.items
