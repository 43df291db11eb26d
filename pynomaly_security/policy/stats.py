"""What a worker saw its policies decide: per-rule counts, shadow disagreements, and
the recent decisions ``replay`` reads. Every map and list here is bounded.

This is the worker's side; :mod:`pynomaly_security.policy.ledger` adds what it holds
since the last flush (``pending``) to the shared state, so ``/policies/stats`` and
``replay`` answer the same on every worker (issue 17, items 3 and 5).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from pynomaly_security._bounded import BoundedDict
from pynomaly_security.policy.conditions import Principal, RequestFacts, Resource
from pynomaly_security.policy.evaluator import PolicyDecision

__all__ = ["LoggedDecision", "PolicyStats", "RuleCounts", "rule_field"]


@dataclass(slots=True)
class RuleCounts:
    applied: int = 0
    allows: int = 0
    denies: int = 0
    disagreements: int = 0
    last_matched: float | None = None


@dataclass(frozen=True, slots=True)
class LoggedDecision:
    """One decision with what it was made on (the principal's attributes, never a
    secret: an API key appears by its id)."""

    at: float
    principal: Principal
    action: str
    resource: Resource
    facts: RequestFacts
    allowed: bool


def rule_field(kind: str, key: tuple[str, int, str]) -> str:
    """The tally field of one rule's counter: policy and rule ids never hold ``|``
    (``model._NAME``), so the field splits back unambiguously."""
    return f"{kind}|{key[0]}|{key[1]}|{key[2]}"


@dataclass(slots=True)
class PolicyStats:
    max_rules: int = 100_000
    max_disagreements: int = 1_000
    max_logged: int = 10_000
    evaluations: int = 0
    allows: int = 0
    denies: int = 0
    shadow_evaluations: int = 0
    shadow_disagreements: int = 0
    dropped: int = 0
    """Counter deltas left out because ``pending`` was full (a store down for long)."""
    rules: BoundedDict[tuple[str, int, str], RuleCounts] = field(init=False)
    disagreements: deque[dict[str, Any]] = field(init=False)
    pending: dict[str, int] = field(init=False)
    """Counter deltas since the last flush (tally field -> delta)."""
    pending_logged: deque[LoggedDecision] = field(init=False)
    pending_disagreements: deque[dict[str, Any]] = field(init=False)
    pending_seen: dict[tuple[str, int, str], float] = field(init=False)

    def __post_init__(self) -> None:
        self.rules = BoundedDict(self.max_rules)
        self.disagreements = deque(maxlen=self.max_disagreements)
        self.pending = {}
        self.pending_logged = deque(maxlen=self.max_logged)
        self.pending_disagreements = deque(maxlen=self.max_disagreements)
        self.pending_seen = {}

    def _add(self, name: str, amount: int = 1) -> None:
        # Five totals plus four counters per rule: bounded like ``rules``, so a store
        # that stays down costs counts, never memory.
        if name not in self.pending and len(self.pending) >= 4 * self.max_rules + 5:
            self.dropped += amount
            return
        self.pending[name] = self.pending.get(name, 0) + amount

    def _seen(self, key: tuple[str, int, str], at: float) -> None:
        if key in self.pending_seen or len(self.pending_seen) < self.max_rules:
            self.pending_seen[key] = at

    def record(
        self,
        principal: Principal,
        action: str,
        resource: Resource,
        facts: RequestFacts,
        decision: PolicyDecision,
        shadow: PolicyDecision | None,
    ) -> None:
        self.evaluations += 1
        self._add("evaluations")
        if decision.allowed:
            self.allows += 1
            self._add("allows")
        else:
            self.denies += 1
            self._add("denies")
        for key in decision.matched:
            counts = self.rules.setdefault(key, RuleCounts)
            counts.applied += 1
            counts.last_matched = facts.now
            self._add(rule_field("applied", key))
            self._seen(key, facts.now)
            if key[2] == decision.rule_id and key[0] == decision.policy_id:
                if decision.allowed:
                    counts.allows += 1
                    self._add(rule_field("allows", key))
                else:
                    counts.denies += 1
                    self._add(rule_field("denies", key))
        if self.max_logged:
            self.pending_logged.append(
                LoggedDecision(facts.now, principal, action, resource, facts, decision.allowed)
            )
        if shadow is None:
            return
        self.shadow_evaluations += 1
        self._add("shadow_evaluations")
        if shadow.allowed == decision.allowed:
            return
        self.shadow_disagreements += 1
        self._add("shadow_disagreements")
        for key in shadow.matched:
            self.rules.setdefault(key, RuleCounts).disagreements += 1
            self._add(rule_field("disagreements", key))
        listed = {
            "at": facts.now,
            "request_id": facts.request_id,
            "principal": principal.id,
            "action": action,
            "resource": resource.path or f"{resource.type}:{resource.id}",
            "active": _outcome(decision),
            "shadow": _outcome(shadow),
        }
        self.disagreements.append(listed)
        self.pending_disagreements.append(listed)

    def rule_rows(self) -> list[dict[str, Any]]:
        return [
            {"policy_id": p, "version": v, "rule_id": r, **_counts(c)}
            for (p, v, r), c in self.rules.items()
        ]


def _outcome(decision: PolicyDecision) -> dict[str, Any]:
    return {
        "allowed": decision.allowed,
        "policy_id": decision.policy_id,
        "rule_id": decision.rule_id,
        "version": decision.version,
    }


def _counts(c: RuleCounts) -> dict[str, Any]:
    return {
        "applied": c.applied,
        "allows": c.allows,
        "denies": c.denies,
        "disagreements": c.disagreements,
        "last_matched": c.last_matched,
    }
