"""The request inspector: one object the middleware and the replay tool share.

(Placeholder rules; the detection work of issue 3 replaces the internals
while keeping this constructor and ``inspect`` signature.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from urllib.parse import parse_qsl, unquote_plus

from pynomaly_security.detection.types import Finding, RequestParts, Verdict

__all__ = ["Inspector"]

_RULES: tuple[tuple[str, str, re.Pattern[str], int], ...] = (
    ("sqli", "sqli-tautology", re.compile(r"'\s*or\s+'?\d+'?\s*=\s*'?\d", re.I), 5),
    ("sqli", "sqli-union", re.compile(r"\bunion\b[\s/*]+(all\s+)?select\b", re.I), 5),
    ("xss", "xss-script", re.compile(r"<\s*script\b|javascript:|\bon\w+\s*=", re.I), 5),
    ("path_traversal", "pt-dotdot", re.compile(r"\.\./|\.\.\\"), 5),
    ("cmdi", "cmdi-chain", re.compile(r"[;|&`]\s*(cat|ls|id|whoami|wget|curl)\b"), 5),
)


class Inspector:
    """Inspects every user-controlled value of a request and scores it.

    Args:
        level: 1 (lenient) .. 4 (paranoid); the blocking threshold.
        mode: ``"block"`` or ``"detect"`` (report only).
        mode_overrides: per-family mode.
        exclusions: route -> field names not inspected (``"*"``: the route).
        inspect_headers: header names (``x-*`` wildcard) whose values are inspected.
        max_input_length: values are cut to this many bytes before matching.
    """

    def __init__(
        self,
        *,
        level: int = 2,
        mode: str = "block",
        mode_overrides: Mapping[str, str] | None = None,
        exclusions: Mapping[str, Sequence[str]] | None = None,
        inspect_headers: Sequence[str] = ("user-agent", "referer", "x-forwarded-for", "x-*"),
        max_input_length: int = 1_048_576,
    ) -> None:
        self.level = level
        self.mode = mode
        self.mode_overrides = dict(mode_overrides or {})
        self.threshold = {1: 10, 2: 5, 3: 4, 4: 3}[level]

    def inspect(self, parts: RequestParts) -> Verdict:
        values: list[tuple[str, str]] = [("path", unquote_plus(parts.path))]
        query = parts.query_string.decode("latin-1")
        values += [(f"query.{k}", v) for k, v in parse_qsl(query, keep_blank_values=True)]
        findings = [
            Finding(fam, rid, name, value[:40], score)
            for name, value in values
            for fam, rid, pattern, score in _RULES
            if pattern.search(value)
        ]
        score = sum(f.score for f in findings)
        families = frozenset(f.family for f in findings)
        blocking = {
            fam for fam in families if self.mode_overrides.get(fam, self.mode) == "block"
        }
        blocked = bool(blocking) and score >= self.threshold
        return Verdict(tuple(findings), score, blocked, families=families)
