"""Correlation rules (issue 16, item 1): each rule type with a fake clock on the memory
store, validation errors that name the rule and field, YAML, handlers and alerts, and
two engines on one Redis standing for two workers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.monitor import EventKind, SecurityEvent, SecurityMonitor, ThreatLevel
from pynomaly_security.monitor.correlation import (
    CorrelationEngine,
    CorrelationMatch,
    builtin_rules,
    configured_rules,
    load_rules,
    rules_from_yaml,
)
from pynomaly_security.storage import create_store
from pynomaly_security.storage.memory import MemoryStore


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def failure(clock: Clock, ip: str = "203.0.113.9", user: str = "alice") -> SecurityEvent:
    return SecurityEvent(
        kind=EventKind.LOGIN_FAILURE,
        source_ip=ip,
        user_id=user,
        path="/login",
        method="POST",
        status_code=401,
        timestamp=clock(),
        details={"username": user},
    )


def success(clock: Clock, ip: str = "203.0.113.9", user: str = "alice") -> SecurityEvent:
    return SecurityEvent(
        kind=EventKind.LOGIN_SUCCESS,
        source_ip=ip,
        user_id=user,
        path="/login",
        method="POST",
        status_code=200,
        timestamp=clock(),
        details={"username": user},
    )


COUNT_RULE: dict[str, Any] = {
    "id": "failures",
    "title": "failures",
    "type": "event_count",
    "severity": "high",
    "match": {"kind": "login_failure"},
    "group_by": ["source_ip"],
    "threshold": 5,
    "window": "1m",
}


def engine_for(clock: Clock, *rules: dict[str, Any]) -> CorrelationEngine:
    return CorrelationEngine(rules, MemoryStore(clock=clock))


async def observe_all(engine: CorrelationEngine, events: list[SecurityEvent]) -> list[str]:
    found: list[str] = []
    for event in events:
        found += [m.rule_id for m in await engine.observe(event)]
    return found


# -- event_count ------------------------------------------------------------------------
@pytest.mark.anyio
async def test_event_count_matches_once_at_the_threshold() -> None:
    """The fifth failure from one address within the window matches; the next ones are
    suppressed; another address counts apart."""
    clock = Clock()
    engine = engine_for(clock, COUNT_RULE)
    assert await observe_all(engine, [failure(clock) for _ in range(4)]) == []
    assert await observe_all(engine, [failure(clock, ip="198.51.100.7") for _ in range(4)]) == []
    matches = await engine.observe(failure(clock))
    assert [(m.rule_id, m.count, m.group) for m in matches] == [
        ("failures", 5, {"source_ip": "203.0.113.9"})
    ]
    assert await observe_all(engine, [failure(clock) for _ in range(10)]) == []


@pytest.mark.anyio
async def test_event_count_forgets_events_older_than_the_window() -> None:
    """Four failures, then four more two windows later: never five within one window."""
    clock = Clock()
    engine = engine_for(clock, COUNT_RULE)
    assert await observe_all(engine, [failure(clock) for _ in range(4)]) == []
    clock.now += 121
    assert await observe_all(engine, [failure(clock) for _ in range(4)]) == []


@pytest.mark.anyio
async def test_event_count_matches_again_after_suppression() -> None:
    """Suppression lasts ``suppress`` seconds, longer than the window here: a burst
    within it raises nothing; after it, a new burst matches again."""
    clock = Clock()
    engine = engine_for(clock, {**COUNT_RULE, "suppress": "5m"})
    assert await observe_all(engine, [failure(clock) for _ in range(5)]) == ["failures"]
    clock.now += 121
    assert await observe_all(engine, [failure(clock) for _ in range(5)]) == []
    clock.now += 200
    assert await observe_all(engine, [failure(clock) for _ in range(5)]) == ["failures"]


@pytest.mark.anyio
async def test_where_conditions_select_events() -> None:
    """Only events meeting every condition count: 404s on /wp- paths, not other 404s."""
    clock = Clock()
    rule = {
        **COUNT_RULE,
        "match": {"kind": "not_found", "where": {"path|startswith": "/wp-", "status_code": 404}},
        "threshold": 2,
    }
    engine = engine_for(clock, rule)

    def miss(path: str) -> SecurityEvent:
        return SecurityEvent(
            kind=EventKind.NOT_FOUND,
            source_ip="203.0.113.9",
            path=path,
            status_code=404,
            timestamp=clock(),
        )

    assert await observe_all(engine, [miss("/robots.txt"), miss("/favicon.ico")]) == []
    assert await observe_all(engine, [miss("/wp-admin"), miss("/wp-login.php")]) == ["failures"]


# -- value_count ------------------------------------------------------------------------
@pytest.mark.anyio
async def test_value_count_counts_distinct_values() -> None:
    """One address failing for one name many times is not stuffing; for ten names it is."""
    clock = Clock()
    rule = {
        **COUNT_RULE,
        "id": "stuffing",
        "type": "value_count",
        "field": "user_name",
        "threshold": 10,
    }
    engine = engine_for(clock, rule)
    assert await observe_all(engine, [failure(clock, user="alice") for _ in range(30)]) == []
    names = [failure(clock, user=f"user{i}") for i in range(8)]
    assert await observe_all(engine, names) == []  # alice + 8 = 9 names
    matches = await engine.observe(failure(clock, user="mallory"))
    assert [(m.rule_id, m.count) for m in matches] == [("stuffing", 10)]
    assert matches[0].observables["ip"] == ("203.0.113.9",)


@pytest.mark.anyio
async def test_value_count_one_user_from_many_addresses() -> None:
    """Grouped by user name, counting addresses: the distributed guess."""
    clock = Clock()
    rule = {
        **COUNT_RULE,
        "id": "spread",
        "type": "value_count",
        "group_by": ["user_name"],
        "field": "source_ip",
        "threshold": 3,
    }
    engine = engine_for(clock, rule)
    events = [failure(clock, ip=f"198.51.100.{i}") for i in range(3)]
    assert await observe_all(engine, events) == ["spread"]


# -- temporal ---------------------------------------------------------------------------
ORDERED: dict[str, Any] = {
    "id": "takeover",
    "title": "failures then a success",
    "type": "temporal_ordered",
    "severity": "critical",
    "steps": [{"rule": "failures"}, {"kind": "login_success"}],
    "group_by": ["source_ip"],
    "window": "10m",
    "response": "dry_run",
    "playbook": "account_takeover_response",
}


@pytest.mark.anyio
async def test_temporal_ordered_failures_then_success() -> None:
    """Five failures then a success from the same address match once; the failures
    rule (``alert: false``) raises nothing of its own."""
    clock = Clock()
    engine = engine_for(clock, {**COUNT_RULE, "alert": False}, ORDERED)
    assert await observe_all(engine, [failure(clock) for _ in range(7)]) == []
    clock.now += 30
    matches = await engine.observe(success(clock))
    assert [m.rule_id for m in matches] == ["takeover"]
    match = matches[0]
    assert (match.response, match.playbook, match.severity) == (
        "dry_run",
        "account_takeover_response",
        ThreatLevel.CRITICAL,
    )
    assert match.first_seen is not None and match.timestamp - match.first_seen == 30
    assert match.events[0]["kind"] == "login_success"
    assert await observe_all(engine, [success(clock)]) == []  # suppressed


@pytest.mark.anyio
async def test_temporal_ordered_needs_the_order_and_the_window() -> None:
    """A success before the failures, or after the window, or from another address,
    is not the pattern."""
    clock = Clock()
    engine = engine_for(clock, {**COUNT_RULE, "alert": False}, ORDERED)
    assert await observe_all(engine, [success(clock)]) == []
    clock.now += 1
    assert await observe_all(engine, [failure(clock) for _ in range(5)]) == []
    assert await observe_all(engine, [success(clock, ip="198.51.100.7")]) == []
    clock.now += 601
    assert await observe_all(engine, [success(clock)]) == []


@pytest.mark.anyio
async def test_temporal_ordered_follows_event_times_not_processing_order() -> None:
    """The success processed before the failure that completes the burst (another
    worker was behind) still completes the pattern: order is the events' times."""
    clock = Clock()
    engine = engine_for(clock, {**COUNT_RULE, "alert": False}, ORDERED)
    early = [failure(clock) for _ in range(4)]
    late = failure(clock)
    clock.now += 5
    assert await observe_all(engine, [*early, success(clock)]) == []
    assert await observe_all(engine, [late]) == ["takeover"]


@pytest.mark.anyio
async def test_temporal_unordered_any_order() -> None:
    """``temporal``: both steps within the window, in either order."""
    clock = Clock()
    rule = {
        "id": "both",
        "title": "injection and a refusal",
        "type": "temporal",
        "severity": "medium",
        "steps": [{"kind": "blocked"}, {"kind": "injection"}],
        "group_by": ["source_ip"],
        "window": 60,
    }
    engine = engine_for(clock, rule)
    injection = SecurityEvent(kind=EventKind.INJECTION, source_ip="1.2.3.4", timestamp=clock())
    assert await observe_all(engine, [injection]) == []
    clock.now += 10
    blocked = SecurityEvent(kind=EventKind.BLOCKED, source_ip="1.2.3.4", timestamp=clock())
    assert await observe_all(engine, [blocked]) == ["both"]


@pytest.mark.anyio
async def test_events_without_a_group_field_are_not_grouped() -> None:
    """An event lacking a group-by field (no address) counts for no group."""
    clock = Clock()
    engine = engine_for(clock, {**COUNT_RULE, "threshold": 1})
    event = SecurityEvent(kind=EventKind.LOGIN_FAILURE, timestamp=clock())
    assert await engine.observe(event) == []


# -- validation -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"window": "5 weeks"}, "'window'", id="bad-window"),
        pytest.param({"window": 0}, "between 1 s", id="zero-window"),
        pytest.param({"severity": "dire"}, "'severity'", id="bad-severity"),
        pytest.param({"group_by": ["ip"]}, "unknown field 'ip'", id="bad-group-field"),
        pytest.param({"match": {"kind": "nope"}}, "'match.kind.0'", id="bad-kind"),
        pytest.param(
            {"match": {"kind": "login_failure", "where": {"path|regex": "x"}}},
            "unknown modifier 'regex'",
            id="bad-modifier",
        ),
        pytest.param(
            {"match": {"kind": "login_failure", "where": {"status_code|gte": "a"}}},
            "compares with one number",
            id="bad-comparison",
        ),
        pytest.param({"match": None}, "needs 'match'", id="no-match"),
        pytest.param({"type": "value_count"}, "needs 'field'", id="no-field"),
        pytest.param(
            {"type": "value_count", "field": "user_name", "threshold": 5000},
            "can never be met",
            id="threshold-over-cap",
        ),
        pytest.param({"response": "on"}, "needs a 'playbook'", id="response-without-playbook"),
        pytest.param({"playbook": "Drop Tables"}, "'playbook'", id="bad-playbook-name"),
        pytest.param({"id": "Bad-Id"}, "'id'", id="bad-id"),
        pytest.param({"thresold": 3}, "'thresold'", id="typo-field"),
    ],
)
def test_invalid_rules_name_the_rule_and_field(change: dict[str, Any], message: str) -> None:
    """Every bad rule fails at start-up with its id and the field at fault."""
    with pytest.raises(ConfigurationError) as info:
        load_rules([{**COUNT_RULE, **change}])
    text = str(info.value)
    assert message in text
    if "id" not in change:
        assert "correlation rule 'failures'" in text


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        pytest.param([COUNT_RULE, COUNT_RULE], "used twice", id="duplicate-id"),
        pytest.param([ORDERED], "no rule 'failures'", id="unknown-step-rule"),
        pytest.param(
            [{**COUNT_RULE, "group_by": ["user_name"]}, ORDERED],
            "must include this rule's group_by",
            id="step-rule-groups-differently",
        ),
        pytest.param(
            [{**ORDERED, "steps": [{"kind": "login_success"}]}],
            "at least two steps",
            id="one-step",
        ),
    ],
)
def test_invalid_rule_sets(rules: list[dict[str, Any]], message: str) -> None:
    """The set is checked too: ids, the rules steps name, their grouping."""
    with pytest.raises(ConfigurationError, match=message):
        load_rules(rules)


def test_builtin_rules_are_valid_and_can_be_disabled() -> None:
    """The built-in set loads; disabling a rule another needs keeps it as a step only."""
    ids = {rule.id for rule in builtin_rules()}
    assert {"brute_force", "credential_stuffing", "password_spraying", "scanner_sweep"} <= ids
    rules = {rule.id: rule for rule in builtin_rules(["brute_force", "scanner_sweep"])}
    assert "scanner_sweep" not in rules and rules["brute_force"].alert is False


def test_yaml_rules_file_replaces_a_builtin(tmp_path: Path) -> None:
    """A YAML file adds rules and replaces a built-in one by id; only safe YAML loads."""
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n"
        "  - id: brute_force\n"
        "    title: tuned\n"
        "    type: event_count\n"
        "    severity: critical\n"
        "    match: {kind: login_failure}\n"
        "    group_by: [source_ip]\n"
        "    threshold: 50\n"
        "    window: 1h\n",
        encoding="utf-8",
    )
    rules = {rule.id: rule for rule in configured_rules(rules_file=str(path))}
    assert (rules["brute_force"].threshold, rules["brute_force"].window) == (50, 3600)
    assert "brute_force_success" in rules
    with pytest.raises(ConfigurationError, match="not valid YAML"):
        rules_from_yaml("- !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigurationError, match="cannot be read"):
        rules_from_yaml(tmp_path / "missing.yaml")


# -- alerts and handlers ----------------------------------------------------------------
@pytest.mark.anyio
async def test_matches_become_alerts_then_reach_handlers() -> None:
    """Through the monitor, a match is an alert of the rule's severity with the
    observables as indicators; a handler gets the match with the alert's id, and a
    handler that raises breaks nothing."""
    clock = Clock()
    store = MemoryStore(clock=clock)
    monitor = SecurityMonitor(store=store, detectors=[], clock=clock)
    engine = CorrelationEngine(
        [{**COUNT_RULE, "alert": False}, ORDERED], store, alert_sink=monitor.raise_alert
    )
    seen: list[CorrelationMatch] = []

    def broken(match: CorrelationMatch) -> None:
        raise RuntimeError("handler down")

    async def keep(match: CorrelationMatch) -> None:
        seen.append(match)

    engine.register_match_handler(broken)
    engine.register_match_handler(keep)
    monitor.register_detector(engine)
    for _ in range(5):
        await monitor.process_event(failure(clock))
    await monitor.process_event(success(clock))
    alerts = await monitor.get_active_alerts()
    assert [(a.alert_type, a.threat_level) for a in alerts] == [
        ("correlation:takeover", ThreatLevel.CRITICAL)
    ]
    alert = alerts[0]
    assert alert.source_ip == "203.0.113.9" and alert.indicators["user"] == ["alice"]
    assert alert.details["playbook"] == "account_takeover_response"
    assert [m.alert_id for m in seen] == [alert.alert_id]


# -- shared across workers --------------------------------------------------------------
@pytest.fixture
async def two_engines(redis_url: str) -> AsyncIterator[tuple[CorrelationEngine, ...]]:
    stores = [create_store(redis_url, key_prefix="pns-corr-test:") for _ in range(2)]
    rules = [{**COUNT_RULE, "alert": False}, ORDERED, {**COUNT_RULE, "id": "burst"}]
    yield tuple(CorrelationEngine(rules, store) for store in stores)
    for store in stores:
        await store.aclose()


@pytest.mark.anyio
async def test_two_workers_on_redis_see_one_attacker(
    two_engines: tuple[CorrelationEngine, CorrelationEngine],
) -> None:
    """Failures alternating between two engines on one Redis count as one burst; the
    burst and the success after it match exactly once each."""
    one, two = two_engines
    clock = Clock()
    found: list[str] = []
    for i in range(8):
        found += [m.rule_id for m in await (one, two)[i % 2].observe(failure(clock))]
    assert found == ["burst"]
    found = [m.rule_id for m in await two.observe(success(clock))]
    found += [m.rule_id for m in await one.observe(success(clock))]
    assert found == ["takeover"]
