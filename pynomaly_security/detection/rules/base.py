"""The rule type every detector module declares its rules with.

A rule is a linear-time RE2 pattern over the *normalized* value (lower case,
decoded; see :mod:`pynomaly_security.detection.normalize`) plus an anomaly
score in the spirit of the OWASP Core Rule Set (critical 5, error 4,
warning 3, notice 2). An optional ``check`` refines a match: it sees the
whole normalized value and the matched span and returns the score to add
(0 discards the match), which is where slower analysis (sqlparse, nh3) runs,
only after the cheap pattern matched.

References:
    OWASP CRS anomaly scoring: https://coreruleset.org/docs/concepts/anomaly_scoring/
    RE2 syntax (no backtracking): https://github.com/google/re2/wiki/Syntax
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["CRITICAL", "ERROR", "NOTICE", "WARNING", "Check", "Rule"]

CRITICAL = 5
ERROR = 4
WARNING = 3
NOTICE = 2

Check = Callable[[str, int, int], int]
"""``check(text, start, end) -> score``; 0 drops the match."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One weighted detection rule.

    Args:
        rule_id: stable id shown in verdicts (``sqli-union``).
        family: attack family (``sqli``, ``xss``, ``path_traversal``, ...).
        pattern: RE2 pattern over the normalized, lower-cased value.
        score: anomaly score added when it matches.
        level: lowest detection level at which the rule is active
            (1 lenient .. 4 paranoid), like CRS paranoia levels.
        check: optional refinement run only on a match.
        plain: also run on "plain" values (letters, digits, ``_``, ``-``) of
            5 characters or more, which are otherwise skipped unscanned:
            for encoded payloads such as base64 gadget names.
    """

    rule_id: str
    family: str
    pattern: str
    score: int
    level: int = 1
    check: Check | None = None
    plain: bool = False
