"""Alert thresholds on metrics (``METRICS_ALERT_THRESHOLDS``), raised like a detector's.

A rule is ``<series><op><number>``: ``blocked_per_minute>100`` (a per-minute series
of the summary, all workers' counts of the last complete minute),
``audit_verification_failed>0`` or ``lockouts_active>=10`` (a current value). The
metrics hub evaluates them (per-minute rules once a minute, once the minute is
complete; current values every ``CURRENT_EVERY`` seconds) and raises a
``metric_threshold`` alert through the monitor, so handlers, the audit trail and
correlation see it as any other; a set-if-absent cool-down in the shared store
raises each rule once per :data:`COOLDOWN` seconds across workers.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from pynomaly_security.exceptions import ConfigurationError

__all__ = ["COOLDOWN", "CURRENT", "PER_MINUTE", "ThresholdRule", "parse_rules"]

COOLDOWN = 300.0
PER_MINUTE = (
    "requests",
    "blocked",
    "injections",
    "errors",
    "alerts",
    "failed_logins",
    "lockouts",
    "dropped",
)
"""The summary's one-minute series; a rule names one as ``<series>_per_minute``."""
CURRENT = (
    "audit_verification_failed",
    "dropped_events",
    "active_alerts",
    "open_incidents",
    "lockouts_active",
    "decisions_active",
    "queue_depth",
)
"""Current values a rule may name."""
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}
_RULE = re.compile(r"^\s*([a-z_]+)\s*(>=|<=|==|>|<)\s*(-?[0-9]+(?:\.[0-9]+)?)\s*$")


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    """One rule: ``series`` compared by ``op`` with ``value``."""

    text: str
    series: str
    op: str
    value: float

    @property
    def per_minute(self) -> bool:
        return self.series.endswith("_per_minute")

    def fires(self, observed: float) -> bool:
        return _OPS[self.op](observed, self.value)


def parse_rules(texts: list[str]) -> list[ThresholdRule]:
    """The rules of the setting; a malformed one or an unknown series fails at start-up."""
    rules = []
    known = {f"{s}_per_minute" for s in PER_MINUTE} | set(CURRENT)
    for text in texts:
        found = _RULE.match(text)
        if found is None:
            raise ConfigurationError(
                f"PYNOMALY_SECURITY__METRICS_ALERT_THRESHOLDS: {text!r} is not "
                "<series><op><number> (e.g. blocked_per_minute>100)"
            )
        series, op, value = found.groups()
        if series not in known:
            raise ConfigurationError(
                f"PYNOMALY_SECURITY__METRICS_ALERT_THRESHOLDS: unknown series {series!r}; "
                f"one of {sorted(known)}"
            )
        rules.append(ThresholdRule(text.strip(), series, op, float(value)))
    return rules
