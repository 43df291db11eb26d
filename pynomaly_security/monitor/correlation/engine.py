"""The correlation engine: rules over the monitor's event stream, state in the shared store.

Every worker runs the engine on the events it saw (it is one of the monitor's detectors);
what the rules count lives in the stack's store (Redis when workers share one), so four
workers see one attacker as one:

- ``event_count``: a sliding-window counter per rule and group (limits' strategy: the
  previous fixed window weighted by its overlap; one atomic round trip);
- ``value_count``: a member set per rule and group, trimmed to the window (one round trip);
- ``temporal``/``temporal_ordered``: the time each step was last seen per group, kept for
  the window (one write), and one read of the other steps; order is by the events' own
  times, so events processed late by another worker still complete the pattern;
- suppression: one set-if-absent key per rule and group, so a pattern seen by several
  workers at once raises one match.

Group values, counted values and keys are attacker text (user names, paths): keys hold
their digest, never the text. A match becomes a monitor alert (the rule's severity, the
observables as indicators), then goes to every :class:`MatchHandler`: where incidents will
be opened and playbooks run from (issue 16), with the rule's ``response`` and ``playbook``.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import math
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pynomaly_security._log import get_logger
from pynomaly_security.monitor.correlation.rules import CorrelationRule, event_value, load_rules
from pynomaly_security.monitor.events import EventKind, SecurityAlert, SecurityEvent, ThreatLevel
from pynomaly_security.storage.base import (
    BATCHABLE,
    BatchCall,
    BatchStore,
    KeyValueStore,
    MemberStore,
    SlidingWindowStore,
    missing_capability,
)

__all__ = ["CorrelationEngine", "CorrelationMatch", "CorrelationStore", "MatchHandler"]

log = get_logger(__name__)

EVENT_HANDLER_FAILED = "correlation_match_handler_failed"

# Far above any threshold: the window counter then always counts (it never refuses).
_NO_LIMIT = 1 << 40


class CorrelationStore(SlidingWindowStore, KeyValueStore, MemberStore, BatchStore, Protocol):
    """What the engine keeps in the shared store (memory and Redis stores have it)."""


@dataclass(frozen=True, slots=True)
class CorrelationMatch:
    """A rule's pattern, seen for one group: what handlers (incidents, playbooks) get.

    Attributes:
        rule_id, rule_type, title, severity: the rule's.
        group: the group-by fields and their values (``{"source_ip": "203.0.113.9"}``).
        group_key: a digest of ``rule_id`` and ``group``: stable across workers and
            restarts, a dedup key for "the same pattern again".
        count: events (``event_count``), distinct values (``value_count``) or steps seen.
        threshold, window: the rule's (seconds).
        timestamp: the time of the event that completed the pattern.
        first_seen: the earliest step's time (temporal rules), else ``None``.
        events: summaries of the events the engine holds for the match: the one that
            completed it (never bodies: kind, time, address, user, method, path, status).
        observables: ``ip``, ``user``, ``path``, ``request_id`` values seen, as tuples.
        response, playbook: the rule's, passed along for the responders.
        alert_id: the id of the monitor alert raised for the match (``None`` when the
            rule does not alert).
    """

    rule_id: str
    rule_type: str
    title: str
    severity: ThreatLevel
    group: Mapping[str, str]
    group_key: str
    count: int
    threshold: int
    window: int
    timestamp: float
    first_seen: float | None
    events: tuple[Mapping[str, Any], ...]
    observables: Mapping[str, tuple[str, ...]]
    response: str
    playbook: str | None
    alert_id: str | None = None
    recommended_actions: tuple[str, ...] = field(default=())

    def to_alert(self) -> SecurityAlert:
        """The monitor alert of this match (``correlation:<rule id>``)."""
        group = ", ".join(f"{k}={v}" for k, v in self.group.items())
        return SecurityAlert(
            alert_type=f"correlation:{self.rule_id}",
            threat_level=self.severity,
            message=f"{self.title} ({group})" if group else self.title,
            source_ip=self.group.get("source_ip") or _first(self.observables, "ip"),
            user_id=self.group.get("user_id") or _first(self.observables, "user"),
            details={
                "rule": self.rule_id,
                "type": self.rule_type,
                "group": dict(self.group),
                "group_key": self.group_key,
                "count": self.count,
                "threshold": self.threshold,
                "window": self.window,
                "first_seen": self.first_seen,
                "response": self.response,
                "playbook": self.playbook,
            },
            alert_id=self.alert_id or uuid.uuid4().hex,
            timestamp=self.timestamp,
            indicators={k: list(v) for k, v in self.observables.items()},
            recommended_actions=list(self.recommended_actions),
        )


def _first(observables: Mapping[str, tuple[str, ...]], name: str) -> str | None:
    values = observables.get(name)
    return values[0] if values else None


class MatchHandler(Protocol):
    """Gets every match before its alert is raised (sync or async; errors are logged)."""

    def __call__(self, match: CorrelationMatch) -> Awaitable[None] | None: ...


AlertSink = Callable[[SecurityAlert], Awaitable[None]]


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:24]


def _part(*parts: str) -> str:
    """A key part for attacker text: short plain text as it is (an address, a short
    name; hashing every key was the engine's largest cost), anything else digested.
    The two forms are marked apart, so a name cannot pose as another value's digest."""
    text = "\x1f".join(parts)
    if len(text) <= 48 and text.isprintable():
        return "=" + text
    return "#" + _digest(text)


def _summary(event: SecurityEvent) -> dict[str, Any]:
    return {
        "kind": event.kind.value,
        "timestamp": event.timestamp,
        "source_ip": event.source_ip,
        "user": event_value(event, "user_name"),
        "method": event.method,
        "path": event.path,
        "status_code": event.status_code,
        "request_id": event.request_id,
    }


def _observables(event: SecurityEvent, group: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    for name, value in (
        ("ip", event.source_ip),
        ("user", event_value(event, "user_name")),
        ("path", event.path),
        ("request_id", event.request_id),
    ):
        if isinstance(value, str) and value:
            found[name] = (value,)
    for name, value in group.items():  # a group's value is what the pattern is about
        key = {"source_ip": "ip", "user_id": "user", "user_name": "user"}.get(name, name)
        if value not in found.get(key, ()):
            found[key] = (value, *found.get(key, ()))
    return found


@dataclass(frozen=True, slots=True)
class _Compiled:
    rule: CorrelationRule
    accepts: Callable[[SecurityEvent], bool] | None  # count rules
    steps: tuple[Callable[[SecurityEvent], bool] | None, ...]  # None: a rule step
    chained_into: tuple[tuple[int, int], ...]  # (temporal rule index, step index)


class CorrelationEngine:
    """Runs correlation rules over events; a monitor detector (``analyze``).

    Args:
        rules: the rules (validated again as a set).
        store: where windows, counts and suppression keys live (the stack's store).
        alert_sink: raises a match's alert (the monitor's ``raise_alert``); without it,
            :meth:`analyze` only hands matches to the handlers.
        handlers: called with each match, before its alert (containment first).
        prefix: the store key prefix.
    """

    name = "correlation"

    def __init__(
        self,
        rules: Iterable[CorrelationRule | Mapping[str, Any]],
        store: CorrelationStore,
        *,
        alert_sink: AlertSink | None = None,
        handlers: Sequence[MatchHandler] = (),
        prefix: str = "corr:",
    ) -> None:
        self.rules = load_rules(rules)
        if not isinstance(store, BatchStore):
            raise missing_capability(store, BatchStore, "the correlation engine")
        self._store = store
        self._sink = alert_sink
        self._handlers: list[MatchHandler] = list(handlers)
        self._prefix = prefix
        index = {rule.id: i for i, rule in enumerate(self.rules)}
        chained: dict[int, list[tuple[int, int]]] = {}
        for t, rule in enumerate(self.rules):
            for s, step in enumerate(rule.steps):
                if step.rule is not None:
                    chained.setdefault(index[step.rule], []).append((t, s))
        self._compiled: list[_Compiled] = []
        for i, rule in enumerate(self.rules):
            self._compiled.append(
                _Compiled(
                    rule,
                    rule.match.predicate() if rule.match is not None else None,
                    tuple(
                        step.selector.predicate() if step.selector is not None else None
                        for step in rule.steps
                    ),
                    tuple(chained.get(i, ())),
                )
            )
        # Which rules an event kind can concern: most events concern none.
        self._counting: dict[EventKind, list[_Compiled]] = {}
        self._stepping: dict[EventKind, list[tuple[_Compiled, int]]] = {}
        for c in self._compiled:
            if c.rule.match is not None:
                for kind in c.rule.match.kind:
                    self._counting.setdefault(kind, []).append(c)
            for s, step in enumerate(c.rule.steps):
                for kind in step.kind or ():
                    self._stepping.setdefault(kind, []).append((c, s))

    def register_match_handler(self, handler: MatchHandler) -> None:
        if not callable(handler):
            raise TypeError("a match handler must be callable")
        self._handlers.append(handler)

    # -- the detector ------------------------------------------------------------------
    async def analyze(self, event: SecurityEvent) -> SecurityAlert | None:
        """Observe ``event``; hand each match to the handlers, then raise its alert
        through the sink. Returns ``None``: the alerts are raised here, as one event
        can complete several patterns.

        Handlers first: they contain (a playbook's ban), the alert reports; its audit
        record would otherwise delay the ban by a commit (issue 16: time to contain).
        The match carries its alert's id already."""
        for match in await self.observe(event):
            for handler in list(self._handlers):
                try:
                    result = handler(match)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    log.exception(EVENT_HANDLER_FAILED, rule=match.rule_id)
            if self._sink is not None and match.alert_id is not None:
                await self._sink(match.to_alert())
        return None

    async def observe(self, event: SecurityEvent) -> list[CorrelationMatch]:
        """Count ``event`` in every rule it concerns; the matches it completes (after
        suppression). Raises :class:`StorageError` when the store fails.

        One batch (one Redis round trip) for the counts and the steps; a pattern's
        condition holding adds one for the steps it stands for, and one for suppression.
        """
        counting = self._counting.get(event.kind)
        stepping = self._stepping.get(event.kind)
        if counting is None and stepping is None:
            return []
        groups: dict[tuple[str, ...], dict[str, str] | None] = {}
        calls: list[BatchCall] = []
        counted: list[tuple[_Compiled, dict[str, str]]] = []
        for c in counting or ():
            if c.accepts is None or not c.accepts(event):
                continue
            rule = c.rule
            group = self._group(rule, event, groups)
            if group is None:
                continue
            if rule.type == "event_count":
                calls.append(
                    (
                        "acquire_sliding_window_stats",
                        (self._key(rule, "n", group), _NO_LIMIT, rule.window),
                    )
                )
            else:
                value = event_value(event, rule.field or "")
                if value is None or value == "":
                    continue
                key = self._key(rule, "v", group)
                calls.append(("add_member", (key, _part(str(value)), rule.window)))
            counted.append((c, group))
        steps: list[tuple[_Compiled, int, dict[str, str]]] = []
        for c, s in stepping or ():
            step = c.steps[s]
            if step is not None and step(event):
                group = self._group(c.rule, event, groups)
                if group is not None:
                    steps.append((c, s, group))
        results = await self._batch(calls + self._step_calls(steps, event))
        candidates: list[tuple[CorrelationRule, dict[str, str], int, float | None]] = []
        chained: list[tuple[_Compiled, int, dict[str, str]]] = []
        for (c, group), result in zip(counted, results, strict=False):
            rule = c.rule
            if rule.type == "event_count":
                _, (prev, prev_ttl, current, _ttl) = result
                count = math.floor(prev * prev_ttl / rule.window) + current
            else:
                count = int(result)
            if count < rule.threshold:
                continue
            for t, s in c.chained_into:  # the condition holds: a step of temporal rules
                temporal = self._compiled[t]
                chained_group = self._group(temporal.rule, event, groups)
                if chained_group is not None:
                    chained.append((temporal, s, chained_group))
            if rule.alert:
                candidates.append((rule, group, count, None))
        candidates += self._completed(steps, results[len(counted) :], event)
        if chained:
            done = await self._batch(self._step_calls(chained, event))
            candidates += self._completed(chained, done, event)
        if not candidates:
            return []
        # One match per group and suppression window, whichever worker gets there first.
        fresh = await self._batch(
            [
                ("add", (self._key(rule, "x", group), "1", rule.suppression))
                for rule, group, _, _ in candidates
            ]
        )
        return [
            self._match(rule, group, event, count, first_seen)
            for (rule, group, count, first_seen), new in zip(candidates, fresh, strict=True)
            if new
        ]

    async def _batch(self, calls: list[BatchCall]) -> list[Any]:
        if len(calls) == 1:  # a call alone costs less than a pipeline of one
            name, args = calls[0]
            if name not in BATCHABLE:
                raise ValueError(f"{name!r} cannot be batched")
            return [await getattr(self._store, name)(*args)]
        return await self._store.batch(calls) if calls else []

    # -- rule types --------------------------------------------------------------------
    def _group(
        self,
        rule: CorrelationRule,
        event: SecurityEvent,
        cache: dict[tuple[str, ...], dict[str, str] | None],
    ) -> dict[str, str] | None:
        # Rules mostly group by the same fields: each grouping is read once per event.
        fields = tuple(rule.group_by)
        if fields in cache:
            return cache[fields]
        group: dict[str, str] | None = {}
        for name in fields:
            value = event_value(event, name)
            if value is None or value == "":
                group = None  # an event without the field cannot be grouped by it
                break
            group[name] = str(value)  # type: ignore[index]
        cache[fields] = group
        return group

    def _key(self, rule: CorrelationRule, part: str, group: Mapping[str, str]) -> str:
        return f"{self._prefix}{rule.id}:{part}:{_part(*group.values())}"

    def _step_calls(
        self, steps: list[tuple[_Compiled, int, dict[str, str]]], event: SecurityEvent
    ) -> list[BatchCall]:
        """Per step seen: record its time, read the other steps' times."""
        calls: list[BatchCall] = []
        for c, s, group in steps:
            rule = c.rule
            calls.append(
                ("put", (self._key(rule, f"s{s}", group), repr(event.timestamp), rule.window))
            )
            others = [self._key(rule, f"s{i}", group) for i in range(len(rule.steps)) if i != s]
            calls.append(("get_many", (others,)))
        return calls

    def _completed(
        self,
        steps: list[tuple[_Compiled, int, dict[str, str]]],
        results: Sequence[Any],
        event: SecurityEvent,
    ) -> list[tuple[CorrelationRule, dict[str, str], int, float | None]]:
        """The temporal patterns the steps complete. Every step checks, the last one as
        well as the others: the order is the events' times, not the order workers
        happen to process them in (a success processed before the failures' threshold
        still completes the pattern)."""
        done: list[tuple[CorrelationRule, dict[str, str], int, float | None]] = []
        for n, (c, s, group) in enumerate(steps):
            rule = c.rule
            seen: list[str | None] = results[2 * n + 1]
            if any(v is None for v in seen):
                continue
            times = [float(v) for v in seen if v is not None]
            times.insert(s, event.timestamp)
            if event.timestamp - min(times) > rule.window:
                continue
            if rule.type == "temporal_ordered" and any(a > b for a, b in itertools.pairwise(times)):
                continue
            if rule.alert:
                done.append((rule, group, len(times), min(times)))
        return done

    def _match(
        self,
        rule: CorrelationRule,
        group: dict[str, str],
        event: SecurityEvent,
        count: int,
        first_seen: float | None,
    ) -> CorrelationMatch:
        return CorrelationMatch(
            rule_id=rule.id,
            rule_type=rule.type,
            title=rule.title,
            severity=rule.severity,
            group=group,
            group_key=_digest(rule.id, *group.values()),
            count=count,
            threshold=rule.threshold,
            window=rule.window,
            timestamp=event.timestamp,
            first_seen=first_seen,
            events=(_summary(event),),
            observables=_observables(event, group),
            response=rule.response,
            playbook=rule.playbook,
            alert_id=uuid.uuid4().hex,
            recommended_actions=tuple(rule.recommended_actions),
        )
