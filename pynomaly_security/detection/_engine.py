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
found there carries the view as its ``text`` (for the excerpt). The reading
costs (``shlex``: up to ~6 ms per 2 Ki characters), so a text longer than
:data:`SHELL_WINDOW` is read in windows overlapping by :data:`SHELL_OVERLAP`,
each reported to the caller's ``spend`` (the request's CPU budget): the whole
text is read, never only its start (issue 12: no limit scans a prefix).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import re2

from pynomaly_security.detection.rules._shell import (
    MAX_SHELL_CHARS,
    may_read_differently,
    shell_view,
)
from pynomaly_security.detection.rules.base import Rule

__all__ = [
    "DFA_MEMORY",
    "SET_SIZE",
    "SHELL_FAMILIES",
    "SHELL_OVERLAP",
    "SHELL_WINDOW",
    "Hit",
    "RuleEngine",
]

DFA_MEMORY = 128 << 20
"""RE2's ``max_mem`` for each set and each rule's pattern: its program and its lazy
DFA's state cache. A worker's memory stays bounded: each cache grows only as traffic
meets new states, never past this; and running out never means a missed match:

* a set (``RE2::Set``, :meth:`RuleEngine.scan`'s pre-filter) has no NFA to fall
  back on, so RE2 checks at ``Compile()`` that its DFA has room for at least 20
  of its largest states (``re2.error`` here, at start-up, when it has not); a
  full cache is then emptied and rebuilt as the scan goes on, slower, never
  given up (``dfa.cc``: "RE2::Set cannot fall back, so we just have to keep on
  keeping on"). The binding's ``Set.Match`` would return "no match" if the DFA
  failed (it drops RE2's ``ErrorInfo``): that is why the room checked at compile
  time matters, and ``tests/detection/test_state.py`` scans adversarial values
  with a set at the least memory RE2 accepts and gets every rule's match;
* a single pattern (the confirmation) whose DFA gives up falls back to RE2's NFA:
  slower, same answer.

With about 200 rules in one set, 64 MB ran out on varied traffic and each reset
rebuilt states (inspection of the developer corpora 2.4 times slower)."""
SET_SIZE = 256
SHELL_FAMILIES = frozenset({"cmdi", "path_traversal"})
"""Families whose rules also scan the shell reading of a value."""
SHELL_WINDOW = MAX_SHELL_CHARS
SHELL_OVERLAP = 512
"""Characters two shell-reading windows share: longer than an obfuscated command."""
SHELL_UNITS = 2
"""Budget units per character read as a shell would (shlex is slow)."""
_BOUNDED_STAR = re.compile(r"\{0,\d{2,}\}\??")
_BOUNDED_PLUS = re.compile(r"\{1,\d{2,}\}\??")


def _free(_: int) -> None:
    """``spend`` when nothing meters the work."""


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

    def __init__(
        self, rules: Sequence[Rule], *, shell: bool = True, dfa_memory: int = DFA_MEMORY
    ) -> None:
        """``dfa_memory``: RE2's ``max_mem`` for each compiled object
        (:data:`DFA_MEMORY`; too little for a set raises ``re2.error`` here)."""
        self._rules = tuple(rules)
        shell_rules = [r for r in self._rules if r.family in SHELL_FAMILIES]
        self._shell: RuleEngine | None = (
            RuleEngine(shell_rules, shell=False, dfa_memory=dfa_memory)
            if shell and shell_rules
            else None
        )
        options = re2.Options()
        options.max_mem = dfa_memory  # why, and why running out misses nothing: DFA_MEMORY
        self._compiled: list[Any] = [re2.compile(r.pattern, options) for r in self._rules]
        self._sets: list[tuple[int, Any]] = []
        for offset in range(0, len(self._rules), SET_SIZE):
            rule_set: Any = re2.Set.SearchSet(options)
            for rule in self._rules[offset : offset + SET_SIZE]:
                rule_set.Add(_relaxed(rule.pattern))
            rule_set.Compile()
            self._sets.append((offset, rule_set))

    def scan(self, text: str, spend: Callable[[int], None] = _free) -> list[Hit]:
        """Every rule's hits in ``text``; ``spend`` is told of each shell-reading
        window before it is read."""
        hits: list[Hit] = []
        for offset, rule_set in self._sets:
            matched = rule_set.Match(text)
            if matched:
                self._confirm(text, [offset + i for i in matched], hits)
        if self._shell is not None and may_read_differently(text):
            seen = {hit.rule.rule_id for hit in hits}
            size = len(text)
            for start in range(0, size, SHELL_WINDOW - SHELL_OVERLAP):
                window = text[start : start + SHELL_WINDOW]
                spend(SHELL_UNITS * len(window))
                view = shell_view(window)
                if view is not None:
                    for hit in self._shell.scan(view):
                        if hit.rule.rule_id not in seen:
                            seen.add(hit.rule.rule_id)
                            hits.append(hit)
                if start + SHELL_WINDOW >= size:
                    break
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
