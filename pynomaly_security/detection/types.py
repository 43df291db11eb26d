"""Value types shared by the detection package, the middleware and the replay tool.

No ASGI and no I/O here: a request is described by :class:`RequestParts`, and
the answer is a :class:`Verdict`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Finding", "RequestParts", "Verdict"]


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
class Finding:
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
    malicious (e.g. JSON nested deeper than allowed: 400).
    """

    findings: tuple[Finding, ...] = ()
    score: int = 0
    blocked: bool = False
    reject_status: int | None = None
    reject_reason: str | None = None
    families: frozenset[str] = field(default_factory=frozenset)

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.rule_id for f in self.findings))

    @property
    def suspicious(self) -> bool:
        return bool(self.findings)
