"""Correlation rules in the monitor (issue 16, item 1): events correlated into patterns.

``rules.py`` the rule models (validated at start-up), ``builtin.py`` the built-in rules,
``engine.py`` the engine that counts in the shared store and raises alerts and matches.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pynomaly_security.monitor.correlation.builtin import BUILTIN_RULES, builtin_rules
from pynomaly_security.monitor.correlation.engine import (
    AlertSink,
    CorrelationEngine,
    CorrelationMatch,
    CorrelationStore,
    MatchHandler,
)
from pynomaly_security.monitor.correlation.rules import (
    CorrelationRule,
    Selector,
    Step,
    load_rules,
    rules_from_yaml,
)

__all__ = [
    "BUILTIN_RULES",
    "AlertSink",
    "CorrelationEngine",
    "CorrelationMatch",
    "CorrelationRule",
    "CorrelationStore",
    "MatchHandler",
    "Selector",
    "Step",
    "builtin_rules",
    "configured_rules",
    "load_rules",
    "rules_from_yaml",
]


def configured_rules(
    *, builtin: bool = True, disabled: Sequence[str] = (), rules_file: str | Path | None = None
) -> tuple[CorrelationRule, ...]:
    """The rules settings describe: the built-in ones (less ``disabled``), then a YAML
    file's, whose rule with a built-in id replaces that rule (to tune a threshold).
    Validated as one set; a bad rule raises ``ConfigurationError`` naming it."""
    base = list(builtin_rules(list(disabled))) if builtin else []
    extra = list(rules_from_yaml(Path(rules_file))) if rules_file else []
    replaced = {rule.id for rule in extra}
    return load_rules([r for r in base if r.id not in replaced] + extra)
