"""What a worker saw its policies decide: per-rule counts, shadow disagreements, and
the recent decisions ``replay`` reads. Every map and list here is bounded.

Counts are this worker's (like the monitor's counters before their flush): with
several workers, each answers ``/policies/stats`` with its own share.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from pynomaly_security._bounded import BoundedDict
from pynomaly_security.policy.conditions import Principal, RequestFacts, Resource
from pynomaly_security.policy.evaluator import PolicyDecision

__all__ = ["LoggedDecision", "PolicyStats", "RuleCounts"]


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
    rules: BoundedDict[tuple[str, int, str], RuleCounts] = field(init=False)
    disagreements: deque[dict[str, Any]] = field(init=False)
    logged: deque[LoggedDecision] = field(init=False)

    def __post_init__(self) -> None:
        self.rules = BoundedDict(self.max_rules)
        self.disagreements = deque(maxlen=self.max_disagreements)
        self.logged = deque(maxlen=self.max_logged)

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
        if decision.allowed:
            self.allows += 1
        else:
            self.denies += 1
        for key in decision.matched:
            counts = self.rules.setdefault(key, RuleCounts)
            counts.applied += 1
            counts.last_matched = facts.now
            if key[2] == decision.rule_id and key[0] == decision.policy_id:
                if decision.allowed:
                    counts.allows += 1
                else:
                    counts.denies += 1
        self.logged.append(
            LoggedDecision(facts.now, principal, action, resource, facts, decision.allowed)
        )
        if shadow is None:
            return
        self.shadow_evaluations += 1
        if shadow.allowed == decision.allowed:
            return
        self.shadow_disagreements += 1
        for key in shadow.matched:
            self.rules.setdefault(key, RuleCounts).disagreements += 1
        self.disagreements.append(
            {
                "at": facts.now,
                "request_id": facts.request_id,
                "principal": principal.id,
                "action": action,
                "resource": resource.path or f"{resource.type}:{resource.id}",
                "active": _outcome(decision),
                "shadow": _outcome(shadow),
            }
        )

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
