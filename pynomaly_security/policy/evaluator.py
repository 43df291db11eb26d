"""Deciding a request against a set of policy versions: pure, no I/O.

Rules are indexed by (action key, resource key) when the set is built, so a decision
looks at the rules that name its action and resource (plus the wildcard buckets),
never at every rule: its cost does not grow with the number of rules (issue 17,
targets). The keys a request has:

* action ``orders:read``: ``orders:read``, ``orders:*``, ``*``;
* resource path ``/items/5``: ``p:/items`` (its first segment), ``p:*`` (templates that
  start with a placeholder), ``*``; type ``order`` id ``5``: ``i:order:5``, ``t:order``.

Every candidate is then checked in full (template, principal, conditions). The
decision is default deny; an applicable ``enforce`` deny wins; the rule that decided
is the least ``(policy id, rule id)`` of its kind, and reasons are sorted, so the
order rules were written in changes nothing (``tests/policy/test_properties.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pynomaly_security.policy.conditions import Conditions, Principal, RequestFacts, Resource
from pynomaly_security.policy.model import Effect, Mode, Policy, route_pattern

__all__ = ["PolicyDecision", "PolicySet"]

NO_MATCH = "no_matching_rule"
DENIED = "denied_by_rule"
ALLOWED = "allowed"


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """The outcome and why. ``code`` is what a refused client may see; ``reasons``
    are for the audit trail and admins."""

    allowed: bool
    effect: Effect
    policy_id: str | None
    rule_id: str | None
    version: int | None
    reasons: tuple[str, ...]
    code: str
    matched: tuple[tuple[str, int, str], ...] = ()
    """(policy, version, rule) of every rule that applied, enforced or not (statistics)."""
    dry_run: tuple[str, ...] = ()
    """``policy/rule:effect`` of rules in dry_run or warn mode that applied."""
    warn: bool = False
    """A rule in warn mode applied: the caller logs it."""

    def to_dict(self) -> dict[str, object]:
        return {
            "allowed": self.allowed,
            "effect": self.effect.value,
            "policy_id": self.policy_id,
            "rule_id": self.rule_id,
            "version": self.version,
            "reasons": list(self.reasons),
            "code": self.code,
            "dry_run": list(self.dry_run),
        }


@dataclass(frozen=True, slots=True, eq=False)
class _Compiled:
    policy_id: str
    version: int
    rule_id: str
    effect: Effect
    mode: Mode
    principals: frozenset[str] | None  # None: "*"
    actions: tuple[str, ...]
    resources: tuple[tuple[str, re.Pattern[str] | None], ...]
    when: Conditions | None
    unless: tuple[Conditions, ...]
    name: str  # policy@vN/rule, in reasons
    applied: str  # the reason when it applied, made once


def _resource_key(pattern: str) -> str:
    if pattern == "*":
        return "*"
    if pattern.startswith("/"):
        first = pattern.strip("/").split("/", 1)[0]
        if first in ("*", "**") or first.startswith("{"):
            return "p:*"
        return "p:/" + first
    kind, _, ident = pattern.partition(":")
    return f"t:{kind}" if ident == "*" else f"i:{pattern}"


def _action_keys(action: str) -> tuple[str, ...]:
    namespace, sep, _ = action.partition(":")
    return (action, namespace + ":*", "*") if sep else (action, "*")


def _resource_keys(resource: Resource) -> list[str]:
    keys = []
    if resource.path is not None:
        keys.append("p:/" + resource.path.strip("/").split("/", 1)[0])
        keys.append("p:*")
    if resource.type is not None:
        if resource.id is not None:
            keys.append(f"i:{resource.type}:{resource.id}")
        keys.append(f"t:{resource.type}")
    keys.append("*")
    return keys


def _resource_matches(rule: _Compiled, resource: Resource) -> bool:
    for pattern, regex in rule.resources:
        if pattern == "*":
            return True
        if regex is not None:
            if resource.path is not None and regex.fullmatch(resource.path):
                return True
        elif resource.type is not None:
            kind, _, ident = pattern.partition(":")
            if kind == resource.type and (ident == "*" or ident == resource.id):
                return True
    return False


def _action_matches(rule: _Compiled, action: str) -> bool:
    namespace = action.partition(":")[0]
    return any(a in ("*", action, namespace + ":*") for a in rule.actions)


class PolicySet:
    """The rules of some policy versions, indexed for :meth:`evaluate`.

    Args:
        policies: (policy, version) pairs; typically the active version of each policy.
    """

    def __init__(self, policies: Iterable[tuple[Policy, int]] = ()) -> None:
        self.versions: dict[str, int] = {}
        index: dict[tuple[str, str], list[_Compiled]] = {}
        count = 0
        for policy, version in policies:
            self.versions[policy.id] = version
            for rule in policy.rules:
                compiled = _Compiled(
                    policy.id,
                    version,
                    rule.id,
                    rule.effect,
                    rule.mode,
                    None if "*" in rule.principals else frozenset(rule.principals),
                    tuple(rule.actions),
                    tuple(
                        (r, route_pattern(r) if r.startswith("/") else None) for r in rule.resources
                    ),
                    rule.when,
                    tuple(rule.unless),
                    f"{policy.id}@v{version}/{rule.id}",
                    f"{rule.effect.value}: {policy.id}@v{version}/{rule.id} applied",
                )
                count += 1
                keys = {(a, _resource_key(r)) for a in rule.actions for r in rule.resources}
                for key in keys:
                    index.setdefault(key, []).append(compiled)
        self.rule_count = count
        self._index = {key: tuple(rules) for key, rules in index.items()}

    def __bool__(self) -> bool:
        return self.rule_count > 0

    def candidates(self, action: str, resource: Resource) -> list[_Compiled]:
        """The rules filed under the request's keys (each once)."""
        found: list[_Compiled] = []
        get = self._index.get
        resource_keys = _resource_keys(resource)
        for action_key in _action_keys(action):
            for resource_key in resource_keys:
                bucket = get((action_key, resource_key))
                if bucket:
                    found.extend(bucket)
        if len(found) > 1:
            found = list({id(r): r for r in found}.values())
        return found

    def evaluate(
        self, principal: Principal, action: str, resource: Resource, facts: RequestFacts
    ) -> PolicyDecision:
        """Default deny; an applicable enforced deny wins; order-independent."""
        names: frozenset[str] | None = None
        denies: list[_Compiled] = []
        allows: list[_Compiled] = []
        other: list[_Compiled] = []
        notes: list[str] = []
        for rule in self.candidates(action, resource):
            if rule.principals is not None:
                if names is None:
                    names = principal.names()
                if rule.principals.isdisjoint(names):
                    continue
            if not _action_matches(rule, action) or not _resource_matches(rule, resource):
                continue
            if rule.when is not None:
                failed = rule.when.failed(principal, resource, facts)
                if failed is not None:
                    notes.append(f"{rule.name} not applied: when.{failed} did not hold")
                    continue
            excepted = next(
                (
                    i
                    for i, c in enumerate(rule.unless)
                    if c.failed(principal, resource, facts) is None
                ),
                None,
            )
            if excepted is not None:
                notes.append(f"{rule.name} not applied: unless[{excepted}] held")
                continue
            if rule.mode is not Mode.ENFORCE:
                other.append(rule)
            elif rule.effect is Effect.DENY:
                denies.append(rule)
            else:
                allows.append(rule)
        return _decide(action, resource, denies, allows, other, notes)


def _decide(
    action: str,
    resource: Resource,
    denies: Sequence[_Compiled],
    allows: Sequence[_Compiled],
    other: Sequence[_Compiled],
    notes: list[str],
) -> PolicyDecision:
    if not notes and not other and len(denies) + len(allows) == 1:
        # The common case, one rule applied: nothing to sort.
        rule = denies[0] if denies else allows[0]
        allowed = not denies
        return PolicyDecision(
            allowed,
            rule.effect,
            rule.policy_id,
            rule.rule_id,
            rule.version,
            (rule.applied,),
            ALLOWED if allowed else DENIED,
            ((rule.policy_id, rule.version, rule.rule_id),),
        )
    applied = [*denies, *allows, *other]
    matched = tuple(sorted((r.policy_id, r.version, r.rule_id) for r in applied))
    reasons = sorted(r.applied for r in (*denies, *allows))
    reasons += sorted(f"{r.effect.value} ({r.mode.value}, not enforced): {r.name}" for r in other)
    reasons += sorted(notes)
    dry = tuple(sorted(f"{r.policy_id}/{r.rule_id}:{r.effect.value}" for r in other))
    warn = any(r.mode is Mode.WARN for r in other)
    decider = min(denies or allows, key=lambda r: (r.policy_id, r.rule_id), default=None)
    if decider is None:
        target = resource.path or f"{resource.type}:{resource.id}"
        reasons.insert(0, f"no rule allows {action} on {target}: default deny")
        return PolicyDecision(
            False, Effect.DENY, None, None, None, tuple(reasons), NO_MATCH, matched, dry, warn
        )
    allowed = not denies
    return PolicyDecision(
        allowed,
        decider.effect,
        decider.policy_id,
        decider.rule_id,
        decider.version,
        tuple(reasons),
        ALLOWED if allowed else DENIED,
        matched,
        dry,
        warn,
    )
