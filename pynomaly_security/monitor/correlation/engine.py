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
from pynomaly_security.storage.base import KeyValueStore, MemberStore, SlidingWindowStore

__all__ = ["CorrelationEngine", "CorrelationMatch", "CorrelationStore", "MatchHandler"]

log = get_logger(__name__)

EVENT_HANDLER_FAILED = "correlation_match_handler_failed"

# Far above any threshold: the window counter then always counts (it never refuses).
_NO_LIMIT = 1 << 40


class CorrelationStore(SlidingWindowStore, KeyValueStore, MemberStore, Protocol):
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
    """Gets every match after its alert was raised (sync or async; errors are logged)."""

    def __call__(self, match: CorrelationMatch) -> Awaitable[None] | None: ...


AlertSink = Callable[[SecurityAlert], Awaitable[None]]


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:24]


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
        handlers: called with each match, after its alert.
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
        """Observe ``event``; raise each match's alert through the sink, then hand the
        match to the handlers. Returns ``None``: the alerts are raised here, as one
        event can complete several patterns."""
        for match in await self.observe(event):
            if self._sink is not None and match.alert_id is not None:
                await self._sink(match.to_alert())
            for handler in list(self._handlers):
                try:
                    result = handler(match)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    log.exception(EVENT_HANDLER_FAILED, rule=match.rule_id)
        return None

    async def observe(self, event: SecurityEvent) -> list[CorrelationMatch]:
        """Count ``event`` in every rule it concerns; the matches it completes (after
        suppression). Raises :class:`StorageError` when the store fails."""
        counting = self._counting.get(event.kind)
        stepping = self._stepping.get(event.kind)
        if counting is None and stepping is None:
            return []
        matches: list[CorrelationMatch] = []
        hits: list[tuple[_Compiled, int]] = []  # temporal (rule, step) seen in this event
        for c in counting or ():
            if c.accepts is not None and c.accepts(event):
                await self._count(c, event, matches, hits)
        for c, s in stepping or ():
            step = c.steps[s]
            if step is not None and step(event):
                hits.append((c, s))
        for c, s in hits:
            await self._step(c, s, event, matches)
        return matches

    # -- rule types --------------------------------------------------------------------
    def _group(self, rule: CorrelationRule, event: SecurityEvent) -> dict[str, str] | None:
        group: dict[str, str] = {}
        for name in rule.group_by:
            value = event_value(event, name)
            if value is None or value == "":
                return None  # an event without the field cannot be grouped by it
            group[name] = str(value)
        return group

    def _key(self, rule: CorrelationRule, part: str, group: Mapping[str, str]) -> str:
        return f"{self._prefix}{rule.id}:{part}:{_digest(*group.values())}"

    async def _count(
        self,
        c: _Compiled,
        event: SecurityEvent,
        matches: list[CorrelationMatch],
        hits: list[tuple[_Compiled, int]],
    ) -> None:
        rule = c.rule
        group = self._group(rule, event)
        if group is None:
            return
        if rule.type == "event_count":
            _, (prev, prev_ttl, current, _ttl) = await self._store.acquire_sliding_window_stats(
                self._key(rule, "n", group), _NO_LIMIT, rule.window
            )
            count = math.floor(prev * prev_ttl / rule.window) + current
        else:
            value = event_value(event, rule.field or "")
            if value is None or value == "":
                return
            count = await self._store.add_member(
                self._key(rule, "v", group), _digest(str(value)), rule.window
            )
        if count < rule.threshold:
            return
        for t, s in c.chained_into:  # the condition holds: a step of temporal rules
            hits.append((self._compiled[t], s))
        if rule.alert:
            await self._matched(rule, group, event, count, None, matches)

    async def _step(
        self, c: _Compiled, s: int, event: SecurityEvent, matches: list[CorrelationMatch]
    ) -> None:
        rule = c.rule
        group = self._group(rule, event)
        if group is None:
            return
        now = event.timestamp
        await self._store.put(self._key(rule, f"s{s}", group), repr(now), rule.window)
        # Every step checks for completion, the last one as well as the others: the
        # order is the events' times, not the order workers happen to process them
        # in (a success processed before the failures' threshold still completes).
        others = [i for i in range(len(rule.steps)) if i != s]
        seen = await self._store.get_many([self._key(rule, f"s{i}", group) for i in others])
        if any(v is None for v in seen):
            return
        times = dict(zip(others, (float(v) for v in seen if v is not None), strict=True))
        times[s] = now
        ordered = [times[i] for i in range(len(rule.steps))]
        if now - min(ordered) > rule.window:
            return
        if rule.type == "temporal_ordered" and any(
            a > b for a, b in itertools.pairwise(ordered)
        ):
            return
        if rule.alert:
            await self._matched(rule, group, event, len(ordered), min(ordered), matches)

    async def _matched(
        self,
        rule: CorrelationRule,
        group: dict[str, str],
        event: SecurityEvent,
        count: int,
        first_seen: float | None,
        matches: list[CorrelationMatch],
    ) -> None:
        # One match per group and suppression window, whichever worker gets there first.
        if not await self._store.add(self._key(rule, "x", group), "1", rule.suppression):
            return
        matches.append(
            CorrelationMatch(
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
        )
