"""Runs many rules over one value in a single pass.

The patterns go into a few ``re2.Set`` objects: one linear-time scan of the
value per set tells which rules may match (most values: none), and only
those rules' own compiled patterns run again to confirm, find the span for
the excerpt and run the optional check. RE2 guarantees time linear in the
input, so there is no catastrophic backtracking whatever the pattern or the
value.

A measured speed choice: the sets hold *relaxed* copies of the patterns
(large bounded repeats ``{0,400}`` become ``*``; the exact pattern confirms).
Bounded repeats blow up RE2's DFA: with them one set of all rules ran 10x
slower on the corpora than with the relaxed copies, which fit in one set
(``SET_SIZE`` only splits very large rule lists).

A value with shell quoting, escapes or expansions is also read as a shell
would read it (:func:`~pynomaly_security.detection.rules._shell.shell_view`):
that view is scanned by the rules of :data:`SHELL_FAMILIES` only, and a hit
found there carries the view as its ``text`` (for the excerpt).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import re2

from pynomaly_security.detection.rules._shell import shell_view
from pynomaly_security.detection.rules.base import Rule

__all__ = ["SET_SIZE", "SHELL_FAMILIES", "Hit", "RuleEngine"]

SET_SIZE = 256
SHELL_FAMILIES = frozenset({"cmdi", "path_traversal"})
"""Families whose rules also scan the shell reading of a value."""
_BOUNDED_STAR = re.compile(r"\{0,\d{2,}\}\??")
_BOUNDED_PLUS = re.compile(r"\{1,\d{2,}\}\??")


def _relaxed(pattern: str) -> str:
    return _BOUNDED_PLUS.sub("+", _BOUNDED_STAR.sub("*", pattern))


@dataclass(frozen=True, slots=True)
class Hit:
    rule: Rule
    score: int
    start: int
    end: int
    text: str
    """The text ``start``/``end`` index: the normalized value or its shell view."""


class RuleEngine:
    """Matches a fixed rule list (compiled once) against normalized values."""

    def __init__(self, rules: Sequence[Rule], *, shell: bool = True) -> None:
        self._rules = tuple(rules)
        shell_rules = [r for r in self._rules if r.family in SHELL_FAMILIES]
        self._shell: RuleEngine | None = (
            RuleEngine(shell_rules, shell=False) if shell and shell_rules else None
        )
        options = re2.Options()
        options.max_mem = 64 << 20
        self._compiled: list[Any] = [re2.compile(r.pattern, options) for r in self._rules]
        self._sets: list[tuple[int, Any]] = []
        for offset in range(0, len(self._rules), SET_SIZE):
            rule_set: Any = re2.Set.SearchSet(options)
            for rule in self._rules[offset : offset + SET_SIZE]:
                rule_set.Add(_relaxed(rule.pattern))
            rule_set.Compile()
            self._sets.append((offset, rule_set))

    def scan(self, text: str) -> list[Hit]:
        hits: list[Hit] = []
        for offset, rule_set in self._sets:
            matched = rule_set.Match(text)
            if matched:
                self._confirm(text, [offset + i for i in matched], hits)
        if self._shell is not None:
            view = shell_view(text)
            if view is not None:
                seen = {hit.rule.rule_id for hit in hits}
                hits += [h for h in self._shell.scan(view) if h.rule.rule_id not in seen]
        return hits

    def _confirm(self, text: str, indexes: list[int], hits: list[Hit]) -> None:
        for index in sorted(indexes):
            rule = self._rules[index]
            found = self._compiled[index].search(text)
            if found is None:  # the relaxed copy matched, the exact rule does not
                continue
            start, end = found.span()
            score = rule.score if rule.check is None else rule.check(text, start, end)
            if score > 0:
                hits.append(Hit(rule, score, start, end, text))
