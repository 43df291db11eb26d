"""The evaluator's semantics as tables (issue 17, item 7): default deny, deny wins,
principals, actions and resources as written, time windows across midnight and DST
with a frozen clock, date ranges, CIDR edges and IPv4-mapped IPv6, user, resource and
request attributes, modes, and load errors that name the rule and field."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pynomaly_security.policy import (
    Policy,
    PolicyError,
    PolicySet,
    Principal,
    RequestFacts,
    Resource,
    load_policy,
)


def at(text: str, tz: str = "UTC") -> float:
    """Epoch seconds of a local wall time (``2026-03-29 01:30``) in ``tz``."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp()


MONDAY_NOON = at("2026-12-07 12:00")
ALICE = Principal("alice", roles=frozenset({"staff"}))
ADMIN_MFA = Principal("root", roles=frozenset({"admin"}), mfa=True)
ORDER_1 = Resource(path="/orders/1")


def decide(
    rules: list[dict[str, Any]],
    *,
    principal: Principal = ALICE,
    action: str = "orders:read",
    resource: Resource = ORDER_1,
    now: float = MONDAY_NOON,
    ip: str | None = "10.0.0.1",
    method: str = "GET",
    headers: frozenset[str] = frozenset(),
) -> bool:
    policy = load_policy({"id": "p", "rules": rules})
    facts = RequestFacts(now=now, ip=ip, method=method, headers=headers)
    return PolicySet([(policy, 1)]).evaluate(principal, action, resource, facts).allowed


def allow(**extra: Any) -> dict[str, Any]:
    return {"id": "a", "effect": "allow", "principals": ["*"], "actions": ["*"], **extra}


def deny(**extra: Any) -> dict[str, Any]:
    return {"id": "d", "effect": "deny", "principals": ["*"], "actions": ["*"], **extra}


@pytest.mark.parametrize(
    ("rules", "kwargs", "expected"),
    [
        # -- default deny and deny wins --
        pytest.param([], {}, False, id="no-rules-default-deny"),
        pytest.param([allow()], {}, True, id="allow-all"),
        pytest.param([allow(), deny()], {}, False, id="deny-wins"),
        pytest.param([deny(), allow()], {}, False, id="deny-wins-either-order"),
        pytest.param([allow(actions=["orders:write"])], {}, False, id="other-action-default-deny"),
        # -- principals --
        pytest.param([allow(principals=["user:alice"])], {}, True, id="user"),
        pytest.param([allow(principals=["user:bob"])], {}, False, id="other-user"),
        pytest.param([allow(principals=["role:staff"])], {}, True, id="role"),
        pytest.param(
            [allow(principals=["group:ops"])],
            {"principal": Principal("x", groups=frozenset({"ops"}))},
            True,
            id="group",
        ),
        pytest.param(
            [allow(principals=["tenant:t1"])],
            {"principal": Principal("x", tenant="t2")},
            False,
            id="other-tenant",
        ),
        pytest.param(
            [allow(principals=["api_key:k1"])],
            {"principal": Principal("x", api_key="k1")},
            True,
            id="api-key",
        ),
        # -- actions --
        pytest.param([allow(actions=["orders:*"])], {}, True, id="action-namespace"),
        pytest.param([allow(actions=["billing:*"])], {}, False, id="other-namespace"),
        pytest.param([allow(actions=["DELETE"])], {"action": "DELETE"}, True, id="method"),
        # -- resources --
        pytest.param([allow(resources=["/orders/{id}"])], {}, True, id="template"),
        pytest.param([allow(resources=["/orders/*"])], {}, True, id="star-segment"),
        pytest.param(
            [allow(resources=["/orders/*"])],
            {"resource": Resource(path="/orders/1/items")},
            False,
            id="star-is-one-segment",
        ),
        pytest.param(
            [allow(resources=["/orders/**"])],
            {"resource": Resource(path="/orders/1/items")},
            True,
            id="double-star-rest",
        ),
        pytest.param([allow(resources=["/items/*"])], {}, False, id="other-route"),
        pytest.param(
            [allow(resources=["order:*"])],
            {"resource": Resource(type="order", id="9")},
            True,
            id="type",
        ),
        pytest.param(
            [allow(resources=["order:8"])],
            {"resource": Resource(type="order", id="9")},
            False,
            id="other-id",
        ),
        pytest.param(
            [allow(resources=["/{x}/**"])],
            {"resource": Resource(path="/any/thing")},
            True,
            id="leading-placeholder",
        ),
    ],
)
def test_rule_matching(rules: list[dict[str, Any]], kwargs: dict[str, Any], expected: bool) -> None:
    """Who, what and which resource decide as written; nothing is allowed by default."""
    if not rules:
        policy = Policy.model_construct(id="p", rules=[])
        facts = RequestFacts(now=MONDAY_NOON)
        decision = PolicySet([(policy, 1)]).evaluate(
            ALICE, "orders:read", Resource(path="/"), facts
        )
        assert decision.allowed is expected and decision.code == "no_matching_rule"
        return
    assert decide(rules, **kwargs) is expected


OFFICE = {"start": "09:00", "end": "18:00", "days": ["mon", "tue", "wed", "thu", "fri"]}
NIGHT = {"start": "22:00", "end": "06:00", "days": ["fri"], "tz": "Europe/Paris"}


@pytest.mark.parametrize(
    ("window", "now", "expected"),
    [
        pytest.param(OFFICE, at("2026-12-07 09:00"), True, id="office-start-inclusive"),
        pytest.param(OFFICE, at("2026-12-07 17:59"), True, id="office-last-minute"),
        pytest.param(OFFICE, at("2026-12-07 18:00"), False, id="office-end-exclusive"),
        pytest.param(OFFICE, at("2026-12-06 12:00"), False, id="office-sunday"),
        pytest.param(
            NIGHT, at("2026-12-04 23:00", "Europe/Paris"), True, id="night-friday-evening"
        ),
        pytest.param(
            NIGHT, at("2026-12-05 05:59", "Europe/Paris"), True, id="night-saturday-morning"
        ),
        pytest.param(NIGHT, at("2026-12-05 06:00", "Europe/Paris"), False, id="night-over"),
        pytest.param(
            NIGHT, at("2026-12-05 23:00", "Europe/Paris"), False, id="night-saturday-evening"
        ),
        pytest.param(NIGHT, at("2026-12-04 22:00", "UTC"), True, id="night-in-paris-not-utc"),
        # DST: Paris moves 02:00 -> 03:00 on 2026-03-29 and 03:00 -> 02:00 on 2026-10-25.
        pytest.param(
            {"start": "09:00", "end": "10:00", "tz": "Europe/Paris"},
            at("2026-03-29 07:30"),  # 09:30 CEST after the change (UTC+2)
            True,
            id="dst-spring-wall-clock",
        ),
        pytest.param(
            {"start": "09:00", "end": "10:00", "tz": "Europe/Paris"},
            at("2026-03-28 07:30"),  # 08:30 CET the day before (UTC+1)
            False,
            id="dst-spring-day-before",
        ),
        pytest.param(
            {"start": "02:00", "end": "03:00", "tz": "Europe/Paris"},
            at("2026-10-25 00:30"),  # 02:30 CEST, the first of two 02:30s
            True,
            id="dst-autumn-first-pass",
        ),
        pytest.param(
            {"start": "02:00", "end": "03:00", "tz": "Europe/Paris"},
            at("2026-10-25 01:30"),  # 02:30 CET, the repeated hour
            True,
            id="dst-autumn-second-pass",
        ),
        pytest.param(
            {"start": "22:00", "end": "02:00", "days": ["sat"], "tz": "America/New_York"},
            at("2026-03-08 01:30", "America/New_York"),  # the night the clocks skip 02:00
            True,
            id="dst-across-midnight",
        ),
    ],
)
def test_time_windows(window: dict[str, Any], now: float, expected: bool) -> None:
    """A window follows the wall clock of its zone, across midnight and DST."""
    assert decide([allow(when={"time": window})], now=now) is expected


@pytest.mark.parametrize(
    ("dates", "now", "expected"),
    [
        pytest.param({"start": "2026-12-01", "end": "2026-12-31"}, MONDAY_NOON, True, id="inside"),
        pytest.param({"end": "2026-12-06"}, MONDAY_NOON, False, id="after-end"),
        pytest.param({"start": "2026-12-07"}, at("2026-12-07 00:00"), True, id="start-inclusive"),
        pytest.param(
            {"end": "2026-12-06", "tz": "Pacific/Auckland"},
            at("2026-12-06 12:00", "UTC"),  # already the 7th in Auckland
            False,
            id="date-in-zone",
        ),
    ],
)
def test_date_ranges(dates: dict[str, Any], now: float, expected: bool) -> None:
    """Date ranges are inclusive and read in their zone."""
    assert decide([allow(when={"dates": dates})], now=now) is expected


@pytest.mark.parametrize(
    ("cidrs", "ip", "expected"),
    [
        pytest.param(["10.0.0.0/8"], "10.255.255.255", True, id="v4-last"),
        pytest.param(["10.0.0.0/8"], "11.0.0.0", False, id="v4-just-outside"),
        pytest.param(["192.168.1.0/31"], "192.168.1.1", True, id="v4-slash31"),
        pytest.param(["192.168.1.7/32"], "192.168.1.7", True, id="v4-host"),
        pytest.param(["192.168.1.7"], "192.168.1.8", False, id="v4-bare-address"),
        pytest.param(["10.0.0.0/8"], "::ffff:10.1.2.3", True, id="v4-mapped-v6"),
        pytest.param(["10.0.0.0/8"], "::ffff:11.1.2.3", False, id="v4-mapped-v6-outside"),
        pytest.param(["2001:db8::/32"], "2001:db8:ffff::1", True, id="v6"),
        pytest.param(["2001:db8::/32"], "2001:db9::1", False, id="v6-outside"),
        pytest.param(["2001:db8::/32"], "fe80::1%eth0", False, id="v6-scoped"),
        pytest.param(["::/0"], "10.0.0.1", False, id="v6-any-is-not-v4"),
        pytest.param(["10.0.0.0/8"], None, False, id="no-address-fails-closed"),
        pytest.param(["10.0.0.0/8"], "not-an-ip", False, id="garbage-fails-closed"),
    ],
)
def test_ip_conditions(cidrs: list[str], ip: str | None, expected: bool) -> None:
    """CIDR edges, IPv6, and IPv4-mapped IPv6 read as IPv4."""
    assert decide([allow(when={"ip": cidrs})], ip=ip) is expected


@pytest.mark.parametrize(
    ("when", "kwargs", "expected"),
    [
        pytest.param({"user": {"roles": ["admin"]}}, {}, False, id="role-missing"),
        pytest.param({"user": {"roles": ["admin", "staff"]}}, {}, True, id="any-role"),
        pytest.param({"user": {"mfa": True}}, {}, False, id="mfa-not-used"),
        pytest.param({"user": {"mfa": True}}, {"principal": ADMIN_MFA}, True, id="mfa-used"),
        pytest.param(
            {"user": {"max_risk": 0.5}}, {"principal": Principal("x", risk=0.7)}, False, id="risky"
        ),
        pytest.param(
            {"user": {"device_known": True}},
            {"principal": Principal("x", device_known=True)},
            True,
            id="known-device",
        ),
        pytest.param(
            {"resource": {"owner_is_principal": True}},
            {"resource": Resource(type="doc", id="1", owner="alice")},
            True,
            id="owner",
        ),
        pytest.param(
            {"resource": {"owner_is_principal": True}},
            {"resource": Resource(type="doc", id="1", owner="bob")},
            False,
            id="not-owner",
        ),
        pytest.param(
            {"resource": {"classification": ["public"]}},
            {"resource": Resource(type="doc", id="1", classification="secret")},
            False,
            id="classification",
        ),
        pytest.param({"methods": ["get"]}, {}, True, id="method"),
        pytest.param({"methods": ["POST"]}, {}, False, id="other-method"),
        pytest.param(
            {"headers_present": ["X-Tenant"]},
            {"headers": frozenset({"x-tenant"})},
            True,
            id="header-present",
        ),
        pytest.param({"headers_present": ["x-tenant"]}, {}, False, id="header-absent"),
    ],
)
def test_attribute_conditions(when: dict[str, Any], kwargs: dict[str, Any], expected: bool) -> None:
    """User, resource and request attributes."""
    resource = kwargs.pop("resource", Resource(type="doc", id="1"))
    assert decide([allow(when=when, resources=["*"])], resource=resource, **kwargs) is expected


def test_deny_outside_office_hours_except_admins_with_mfa() -> None:
    """The issue's example: a deny with ``unless`` blocks (office hours; admin with MFA)."""
    rules = [
        allow(id="delete", actions=["DELETE"], resources=["/items/*"]),
        deny(
            id="late-delete",
            actions=["DELETE"],
            resources=["/items/*"],
            unless=[{"time": OFFICE}, {"user": {"roles": ["admin"], "mfa": True}}],
        ),
    ]
    item = Resource(path="/items/3")
    saturday = at("2026-12-05 12:00")
    assert decide(rules, action="DELETE", resource=item, now=MONDAY_NOON)
    assert not decide(rules, action="DELETE", resource=item, now=saturday)
    assert decide(rules, action="DELETE", resource=item, now=saturday, principal=ADMIN_MFA)
    admin_no_mfa = Principal("root", roles=frozenset({"admin"}))
    assert not decide(rules, action="DELETE", resource=item, now=saturday, principal=admin_no_mfa)


def test_decision_explains_itself() -> None:
    """The decision names the policy, rule and version, and why others did not apply."""
    policy = load_policy(
        {
            "id": "p",
            "rules": [
                allow(),
                deny(when={"time": OFFICE}),
                deny(id="d2", when={"ip": ["1.2.3.4"]}),
            ],
        }
    )
    facts = RequestFacts(now=MONDAY_NOON, ip="10.0.0.1")
    d = PolicySet([(policy, 4)]).evaluate(ALICE, "orders:read", Resource(path="/x"), facts)
    assert (d.allowed, d.effect.value, d.policy_id, d.rule_id, d.version, d.code) == (
        False,
        "deny",
        "p",
        "d",
        4,
        "denied_by_rule",
    )
    assert "deny: p@v4/d applied" in d.reasons
    assert "p@v4/d2 not applied: when.ip did not hold" in d.reasons


def test_modes_dry_run_and_warn_do_not_decide() -> None:
    """A dry-run or warn deny is recorded but does not refuse."""
    for mode in ("dry_run", "warn"):
        policy = load_policy({"id": "p", "rules": [allow(), deny(mode=mode)]})
        d = PolicySet([(policy, 1)]).evaluate(
            ALICE, "orders:read", Resource(path="/x"), RequestFacts(now=0)
        )
        assert d.allowed and d.dry_run == ("p/d:deny",) and d.warn is (mode == "warn")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param("rules: [", "not YAML or JSON", id="bad-yaml"),
        pytest.param("[1, 2]", "a policy is a mapping", id="not-a-mapping"),
        pytest.param({"id": "p", "rules": []}, "rules", id="no-rules"),
        pytest.param(
            {"id": "p", "rules": [allow(id="late", when={"time": {"tz": "Mars/Olympus"}})]},
            "rules[0] (id 'late') -> when.time.tz",
            id="bad-zone",
        ),
        pytest.param(
            {"id": "p", "rules": [allow(), allow(id="x", when={"ip": ["10.0.0.0/33"]})]},
            "rules[1] (id 'x') -> when.ip",
            id="bad-cidr",
        ),
        pytest.param(
            {"id": "p", "rules": [allow(when={"time": {"start": "25:00"}})]},
            "when.time.start",
            id="bad-time",
        ),
        pytest.param(
            {"id": "p", "rules": [allow(principals=["boss"])]},
            "rules[0] (id 'a') -> principals",
            id="bad-principal",
        ),
        pytest.param(
            {"id": "p", "rules": [allow(resources=["/a/**/b"])]},
            "** only as the last",
            id="bad-glob",
        ),
        pytest.param({"id": "p", "rules": [allow(effect="maybe")]}, "effect", id="bad-effect"),
        pytest.param({"id": "p", "rules": [allow(colour="red")]}, "colour", id="unknown-field"),
        pytest.param({"id": "p", "rules": [allow(), allow()]}, "appears twice", id="duplicate-id"),
        pytest.param(
            {
                "id": "p",
                "rules": [allow(when={"dates": {"start": "2026-02-01", "end": "2026-01-01"}})],
            },
            "end is before start",
            id="dates-reversed",
        ),
    ],
)
def test_load_errors_name_rule_and_field(body: Any, message: str) -> None:
    """An invalid policy is refused at load with the rule and field."""
    with pytest.raises(PolicyError) as info:
        load_policy(body)
    assert message in str(info.value)


def test_yaml_form() -> None:
    """The YAML form reads as the JSON form does."""
    text = """
id: office
rules:
  - id: late-delete
    effect: deny
    principals: ["*"]
    actions: [DELETE]
    resources: ["/items/*"]
    unless:
      - time: {start: "09:00", end: "18:00", days: [mon, tue, wed, thu, fri], tz: Europe/Paris}
"""
    policy = load_policy(text)
    assert policy.rules[0].unless[0].time is not None
    assert policy.rules[0].unless[0].time.tz == "Europe/Paris"
