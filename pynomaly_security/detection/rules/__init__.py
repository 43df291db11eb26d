"""Detection rules, one module per attack family.

:data:`ALL_RULES` is what the inspector compiles; rule ids are unique.
"""

from __future__ import annotations

from pynomaly_security.detection.rules import cmdi, code, protocol, sqli, traversal, xss
from pynomaly_security.detection.rules.base import Rule

__all__ = ["ALL_RULES", "FAMILIES", "Rule"]

ALL_RULES: tuple[Rule, ...] = (
    *sqli.RULES,
    *xss.RULES,
    *traversal.RULES,
    *cmdi.RULES,
    *code.RULES,
    *protocol.RULES,
)

FAMILIES: frozenset[str] = frozenset(rule.family for rule in ALL_RULES)
