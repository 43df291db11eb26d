"""Security policies (issue 17): the typed model, its evaluator, the versioned engine.

``model.py`` and ``conditions.py`` (what a policy says, validated at load),
``evaluator.py`` (a decision, pure and indexed), ``engine.py`` (versions in the
stack's state, activation, shadow, replay; ``stack.policies``), ``enforce.py`` (the
FastAPI dependency).
"""

from __future__ import annotations

from pynomaly_security.policy.conditions import Principal, RequestFacts, Resource
from pynomaly_security.policy.enforce import enforce, require
from pynomaly_security.policy.engine import SecurityPolicyEngine
from pynomaly_security.policy.evaluator import PolicyDecision, PolicySet
from pynomaly_security.policy.model import (
    Effect,
    Mode,
    Policy,
    PolicyError,
    PolicyRule,
    load_policy,
)

__all__ = [
    "Effect",
    "Mode",
    "Policy",
    "PolicyDecision",
    "PolicyError",
    "PolicyRule",
    "PolicySet",
    "Principal",
    "RequestFacts",
    "Resource",
    "SecurityPolicyEngine",
    "enforce",
    "load_policy",
    "require",
]
