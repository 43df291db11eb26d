"""Runs many rules over one value in a single pass.

All active patterns go into one ``re2.Set``: one linear-time scan of the
value tells which rules match at all (most values: none), and only those
rules' own compiled patterns run again to find the span for the excerpt and
the optional check. RE2 guarantees time linear in the input, so there is no
catastrophic backtracking whatever the pattern or the value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import re2

from pynomaly_security.detection.rules.base import Rule

__all__ = ["Hit", "RuleEngine"]


@dataclass(frozen=True, slots=True)
class Hit:
    rule: Rule
    score: int
    start: int
    end: int


class RuleEngine:
    """Matches a fixed rule list (compiled once) against normalized values."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self._rules = tuple(rules)
        options = re2.Options()
        options.max_mem = 64 << 20
        self._set: Any = re2.Set.SearchSet(options)
        self._compiled: list[Any] = []
        for rule in self._rules:
            self._set.Add(rule.pattern)
            self._compiled.append(re2.compile(rule.pattern, options))
        self._set.Compile()

    def scan(self, text: str) -> list[Hit]:
        matched = self._set.Match(text)
        if not matched:
            return []
        hits: list[Hit] = []
        for index in sorted(matched):
            rule = self._rules[index]
            found = self._compiled[index].search(text)
            if found is None:  # pragma: no cover - the Set said it matches
                continue
            start, end = found.span()
            score = rule.score if rule.check is None else rule.check(text, start, end)
            if score > 0:
                hits.append(Hit(rule, score, start, end))
        return hits
