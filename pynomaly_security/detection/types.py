"""Value types shared by the detection package, the middleware and the replay tool.

No ASGI and no I/O here: a request is described by :class:`RequestParts`, and
the answer is a :class:`Verdict`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["InspectionLimits", "InspectionRefused", "RequestParts", "RuleFinding", "Verdict"]


@dataclass(slots=True)
class RequestParts:
    """What inspection needs of one HTTP request (read-only by convention).

    Not ``frozen``: a frozen dataclass sets each field through
    ``object.__setattr__`` (1.6 µs per request here against 0.4 µs), and one is
    built for every request the middleware inspects.

    Args:
        method: the HTTP method, upper case.
        path: the URL path as sent (still percent-encoded, i.e. ASGI ``raw_path``).
        query_string: the raw query string, without ``?``.
        headers: ``(name, value)`` pairs as in ASGI: lower-case names, bytes.
        body: the whole body (already bounded by the caller).
        route: the route template the request matched (``/items/{item_id}``),
            when known; used for per-route exclusions and typed fields.
    """

    method: str
    path: str
    query_string: bytes = b""
    headers: Sequence[tuple[bytes, bytes]] = ()
    body: bytes = b""
    route: str | None = None


@dataclass(frozen=True, slots=True)
class RuleFinding:
    """One rule that matched one field."""

    family: str  # "sqli", "xss", "path_traversal", "cmdi", "code_injection", ...
    rule_id: str
    field: str  # e.g. "query.q", "body.user.comment", "header.user-agent"
    excerpt: str  # short and redacted: never the whole value
    score: int


@dataclass(frozen=True, slots=True)
class Verdict:
    """The result of inspecting one request.

    ``blocked`` is the decision after levels, modes and exclusions;
    ``reject_status`` is set when the request is unusable rather than
    malicious (e.g. JSON nested deeper than allowed: 400). ``sink_confirmed``:
    only SQL injection findings would have blocked it, and the SQL sink (in block
    mode) is left to decide, at the statement the value would change
    (``SQLI_EDGE_MODE``, issue 15 item 4); the request is not blocked here.
    """

    findings: tuple[RuleFinding, ...] = ()
    score: int = 0
    blocked: bool = False
    reject_status: int | None = None
    reject_reason: str | None = None
    families: frozenset[str] = field(default_factory=frozenset)
    sink_confirmed: bool = False

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.rule_id for f in self.findings))

    @property
    def suspicious(self) -> bool:
        return bool(self.findings)

    def summary(self, max_findings: int = 20) -> dict[str, Any]:
        """What a report of this verdict carries (the monitor's injection event, the
        orchestrator's answer): decision, score, families, rules, the first findings
        with their redacted excerpts."""
        return {
            "blocked": self.blocked,
            "sink_confirmed": self.sink_confirmed,
            "score": self.score,
            "families": sorted(self.families),
            "rules": list(self.rules),
            "findings": [
                {
                    "family": f.family,
                    "rule_id": f.rule_id,
                    "field": f.field,
                    "excerpt": f.excerpt,
                    "score": f.score,
                }
                for f in self.findings[:max_findings]
            ],
        }


@dataclass(frozen=True, slots=True)
class InspectionLimits:
    """Every bound of one request's inspection; each one fails closed.

    A request past any of them is refused (413 for size and cost, 431 for
    headers, 400 for structure) instead of being inspected in part: the
    README's caps table lists each with its status and reason.

    Args:
        max_fields: values inspected per request (query pairs, cookies, form
            fields, multipart parts, JSON strings and keys, headers).
        max_value_length: characters of one value (path, query value, header,
            body field); the body itself is bounded by the middleware's
            ``max_body_size``.
            The normalized text of a value is held to it too (NFKC expands
            some characters 18 times).
        max_json_depth: nesting of a JSON body.
        max_headers: header lines of a request.
        max_parts: parts of a multipart body.
        budget_ms: CPU milliseconds of inspection per request.
        max_header_bytes: bytes of the inspected header values of a request
            together (cookies, ``User-Agent``, ``Referer``, ``X-*``...).
        max_json_elements: elements of a JSON body (array items, object members
            and containers), counted before it is parsed.
    """

    max_fields: int = 10_000
    max_value_length: int = 1_048_576
    max_json_depth: int = 64
    max_headers: int = 100
    max_parts: int = 1_000
    budget_ms: float = 50.0
    max_header_bytes: int = 65_536
    max_json_elements: int = 20_000

    def __post_init__(self) -> None:
        for name in (
            "max_fields",
            "max_value_length",
            "max_json_depth",
            "max_headers",
            "max_header_bytes",
            "max_json_elements",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.max_parts < 1 or self.budget_ms <= 0:
            raise ValueError(
                f"max_parts must be >= 1 and budget_ms > 0, got {self.max_parts!r}, "
                f"{self.budget_ms!r}"
            )


class InspectionRefused(Exception):
    """A request inspection will not pass: over a limit, ambiguous, or unusable.

    ``status`` is the HTTP status to answer (400, 413, 415, 431) and
    ``reason`` the ``error`` of the response body and the audit record.
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
