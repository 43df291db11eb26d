"""The sink at run time: the current request's values, and the check every driver
hook calls before a statement reaches the database.

:class:`~pynomaly_security.middleware.sqlsink.SQLSinkMiddleware` binds a
:class:`RequestSink` for each HTTP request (a context variable, so the check
finds it in the endpoint's task and in the worker thread of a sync endpoint,
both of which copy the context) and unbinds it when the request ends. The
driver hooks (``pynomaly_security.sql.hooks``) call :func:`guard_statement`:
outside a request, or with sink protection off, it returns at once.

The request's values are read only when a statement is first checked, the way
the inspection layer reads them (:func:`~pynomaly_security.detection.extract.extract_fields`:
query, path, headers, cookies, form, multipart and JSON fields), plus the
decoded path segments (path parameters) and the readings an application
commonly applies itself (one or two more rounds of percent-decoding, HTML
entities, NFKC): a value the app decodes again still matches the statement.
Plain words and numbers (``orders``, ``42``) are left out: one token wherever
they land, they cannot change a statement's structure.
The body is the part the app has read so far (a statement can only carry
what the app read), kept for the request only and bounded.

Findings are only recorded here: the check may run in a worker thread, and
the monitor and the audit trail are fed from the event loop by the middleware.
"""

from __future__ import annotations

import html
import re
import unicodedata
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, unquote_plus

from pynomaly_security._context import SQL_SINK, STATE_KEY, RequestContext
from pynomaly_security.detection.extract import HeaderSelector, extract_fields
from pynomaly_security.detection.types import InspectionLimits, InspectionRefused, RequestParts
from pynomaly_security.logsafe import safe_text
from pynomaly_security.sql.errors import SQLInjectionBlocked
from pynomaly_security.sql.sink import DEFAULT_MIN_LENGTH, SinkFinding, check_statement

if TYPE_CHECKING:
    from starlette.types import Message, Receive, Scope

__all__ = [
    "CURRENT_REQUEST",
    "MAX_FINDINGS",
    "POLICY_KEY",
    "RequestSink",
    "SinkActivity",
    "SinkPolicy",
    "SinkReport",
    "bind",
    "current_sink",
    "guard_statement",
    "keeping_body",
    "release_sink",
    "sink_of",
    "unbind",
]

MAX_FINDINGS = 8
"""Findings kept per request (the first ones): an app looping over a hostile
value in detect mode does not grow the request's memory."""

_DECODE_ROUNDS = 2
# A plain word or number is one token wherever it lands in a statement (and inside
# another token it is a coincidence check_statement ignores): it cannot change the
# structure, so it is not looked for. Without this, the table names a REST path
# carries (/orders/7) occur in most statements and each would be tokenized.
_PLAIN_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")
_ALL_HEADERS = HeaderSelector(["*"])

CURRENT_REQUEST: ContextVar[Scope | None] = ContextVar(
    "pynomaly_security_sql_request", default=None
)
"""The scope of the request being served with sink protection (:func:`bind`). Its
:class:`RequestSink` is made the first time it is needed (a body chunk, a statement)
and kept in the scope's state: most requests run no statement, and making one for each
cost about 4,000 instructions per request (``bench/overhead.py --components
--instructions``)."""
POLICY_KEY = "pynomaly_security.sql_policy"
"""``scope["state"]`` key of a bound request's :class:`SinkPolicy`."""
_SINK = "pynomaly_security.sql_sink"


class SinkActivity:
    """Whether a hooked driver has checked a statement during one of the app's
    requests: the evidence that the app's database access goes through the hooks.
    ``SQLI_EDGE_MODE=auto`` leaves SQL injection to the sink only once it has it; an
    app whose driver is not hooked (a plain ``sqlite3.connect``) keeps its edge
    blocking."""

    __slots__ = ("seen",)

    def __init__(self) -> None:
        self.seen = False

    def ready(self) -> bool:
        """Whether a statement has been checked (the inspector's ``sink_ready``)."""
        return self.seen


@dataclass(frozen=True, slots=True)
class SinkPolicy:
    """How an app's sink protection acts; built once by the middleware.

    Args:
        mode: ``"block"`` raises :class:`SQLInjectionBlocked` before the driver
            sees the statement; ``"detect"`` records the finding and lets it run.
        min_length: request values shorter than this are not checked.
        max_body_size: bytes of body kept for the check; a request whose body is
            longer is refused at its first statement in block mode (fail closed).
        limits: the caps of reading the request's values (the inspection's).
        activity: set by the first statement checked (see :class:`SinkActivity`).
    """

    mode: Literal["block", "detect"] = "block"
    min_length: int = DEFAULT_MIN_LENGTH
    max_body_size: int = 1_048_576
    limits: InspectionLimits = field(default_factory=InspectionLimits)
    activity: SinkActivity = field(default_factory=SinkActivity, compare=False)


@dataclass(frozen=True, slots=True)
class SinkReport:
    """One finding of a request, with where its value came from (a field name such
    as ``query.name``; never the value)."""

    finding: SinkFinding
    field: str
    dialect: str
    blocked: bool


class RequestSink:
    """One HTTP request as the sink sees it: its values (read when first needed)
    and what it found. Lives as long as the request."""

    __slots__ = (
        "_body",
        "_fields",
        "_values",
        "body_truncated",
        "extra",
        "policy",
        "reports",
        "scope",
    )

    def __init__(
        self, scope: Scope, policy: SinkPolicy, extra: dict[str, Any] | None = None
    ) -> None:
        self.scope = scope
        self.policy = policy
        # The request context's annotations: each finding is summarised there when it
        # is made (from whatever thread the driver runs in: one dict assignment), so
        # the audit commits it before the response starts.
        self.extra = extra
        self.reports: list[SinkReport] = []
        self.body_truncated = False
        self._body = bytearray()
        self._values: list[str] | None = None
        self._fields: list[str] = []

    def add_body(self, chunk: bytes) -> None:
        """Keep ``chunk`` of the body the app read (up to the policy's size)."""
        if not chunk:
            return
        room = self.policy.max_body_size - len(self._body)
        if len(chunk) > room:
            self.body_truncated = True
            chunk = chunk[: max(room, 0)]
        self._body += chunk
        self._values = None  # read again, with the new part of the body

    def values(self) -> list[str]:
        """The request's values (each at least ``min_length`` long), read once."""
        if self._values is None:
            self._read()
        assert self._values is not None
        return self._values

    def _read(self) -> None:
        scope = self.scope
        raw_path = scope.get("raw_path")
        parts = RequestParts(
            scope.get("method", "GET"),
            raw_path.decode("latin-1") if raw_path else str(scope.get("path", "")),
            scope.get("query_string", b""),
            scope.get("headers", ()),
            bytes(self._body),
        )
        pairs = extract_fields(parts, _ALL_HEADERS, limits=self.policy.limits)
        # Path parameters reach the app decoded, one segment each.
        pairs.extend(("path", segment) for segment in str(scope.get("path", "")).split("/"))
        minimum = self.policy.min_length
        seen: set[str] = set()
        values: list[str] = []
        fields: list[str] = []
        for name, value in pairs:
            for reading in _readings(value):
                if len(reading) < minimum or _PLAIN_WORD.fullmatch(reading):
                    continue
                if reading not in seen:
                    seen.add(reading)
                    values.append(reading)
                    fields.append(name)
        self._values, self._fields = values, fields

    def check(self, statement: str, dialect: str) -> None:
        """Check ``statement``; record a finding, and raise in block mode."""
        policy = self.policy
        policy.activity.seen = True
        try:
            values = self.values()
        except InspectionRefused:
            # The request cannot be read as the framework reads it (past a cap):
            # its values are unknown, so no statement of it is known safe.
            values = None
        if values is None or (self.body_truncated and policy.mode == "block"):
            finding = SinkFinding("unreadable_request", -1, 0, 0, (), "")
            self._record(finding, "request", dialect)
            return
        finding_or_none = check_statement(statement, values, dialect, min_length=policy.min_length)
        if finding_or_none is not None:
            self._record(finding_or_none, self._fields[finding_or_none.value_index], dialect)

    def _record(self, finding: SinkFinding, field: str, dialect: str) -> None:
        blocked = self.policy.mode == "block"
        if len(self.reports) < MAX_FINDINGS:
            self.reports.append(SinkReport(finding, field, dialect, blocked))
        if self.extra is not None:
            self.extra[SQL_SINK] = self.summary()
        if blocked:
            raise SQLInjectionBlocked(finding)

    def summary(self) -> dict[str, Any]:
        """The findings as the audit records them: field names and statement shapes
        (the statement with the value replaced by ``[value]``), never values."""
        reports = self.reports
        return {
            "blocked": any(r.blocked for r in reports),
            "sink": True,
            "families": ["sqli"],
            "findings": [
                {
                    "field": safe_text(r.field),
                    "reason": r.finding.reason,
                    "dialect": r.dialect,
                    "token_kinds": [str(kind) for kind in r.finding.token_kinds],
                    "shape": r.finding.shape,
                    "blocked": r.blocked,
                }
                for r in reports
            ],
        }


def _readings(value: str) -> list[str]:
    """``value`` and what an app commonly makes of it itself: more rounds of
    percent-decoding, HTML entities, NFKC (full-width quotes become quotes)."""
    readings = [value]
    current = value
    for _ in range(_DECODE_ROUNDS):
        if "%" not in current and "+" not in current:
            break
        for decoded in {unquote(current), unquote_plus(current)}:
            if decoded != current and decoded not in readings:
                readings.append(decoded)
        current = unquote_plus(current)
    for reading in list(readings):
        if "&" in reading:
            unescaped = html.unescape(reading)
            if unescaped != reading and unescaped not in readings:
                readings.append(unescaped)
        if not reading.isascii():
            folded = unicodedata.normalize("NFKC", reading)
            if folded != reading and folded not in readings:
                readings.append(folded)
    return readings


def bind(scope: Scope, policy: SinkPolicy) -> Token[Scope | None]:
    """Make ``scope`` the request being served, checked under ``policy`` (the
    middleware; pair with :func:`unbind`)."""
    state = scope.get("state")
    if state is None:
        scope["state"] = {POLICY_KEY: policy}
    else:
        state[POLICY_KEY] = policy
    return CURRENT_REQUEST.set(scope)


def unbind(token: Token[Scope | None]) -> None:
    """Undo :func:`bind` when the request ends."""
    CURRENT_REQUEST.reset(token)


def sink_of(scope: Scope) -> RequestSink:
    """The sink of a bound request, made on first use (from the driver's thread too:
    ``setdefault`` keeps one when two threads make it at once)."""
    state = scope["state"]
    sink = state.get(_SINK)
    if sink is None:
        ctx = state.get(STATE_KEY)
        extra = ctx.extra if isinstance(ctx, RequestContext) else None
        sink = state.setdefault(_SINK, RequestSink(scope, state[POLICY_KEY], extra))
    return sink  # type: ignore[no-any-return]


def release_sink(scope: Scope) -> RequestSink | None:
    """The sink made for a bound request (None: no statement, no body), taken out of
    the scope's state when the request ends. The sink refers to the scope: left in its
    state, the pair would wait for the cycle collector, which cost a request with a
    body about 12,000 instructions (``bench/overhead.py --instructions``, the 1 KB
    POST)."""
    return scope["state"].pop(_SINK, None)  # type: ignore[no-any-return]


def keeping_body(scope: Scope, receive: Receive) -> Receive:
    """``receive`` that keeps the body chunks the app reads in the request's sink."""

    async def receive_body() -> Message:
        message = await receive()
        if message["type"] == "http.request":
            sink_of(scope).add_body(message.get("body", b""))
        return message

    return receive_body


def current_sink() -> RequestSink | None:
    """The sink of the request being served, or None (outside a request)."""
    scope = CURRENT_REQUEST.get()
    return sink_of(scope) if scope is not None else None


def guard_statement(statement: str, dialect: str) -> None:
    """What every driver hook calls before a statement runs: nothing outside a
    request with sink protection; else check it against the request's values
    (raises :class:`SQLInjectionBlocked` in block mode)."""
    scope = CURRENT_REQUEST.get()
    if scope is not None:
        sink_of(scope).check(statement, dialect)
