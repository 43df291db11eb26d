"""What a check is: a kind (an async function of the run's context and its
parameters) and how often it may run.

``cheap`` kinds read settings and small state and run every minute; ``full`` kinds
send requests through the app or walk data (the audit chain, the users) and run at
start-up and every ``COMPLIANCE_INTERVAL_SECONDS``. An application registers its own
kinds with :meth:`~pynomaly_security.compliance.ComplianceValidator.register_kind`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pynomaly_security.compliance.results import CheckResult, Status

if TYPE_CHECKING:
    from pynomaly_security.compliance.checks.probes import ProbeSession
    from pynomaly_security.compliance.sources import ComplianceSources
    from pynomaly_security.plugin import SecurityStack
    from pynomaly_security.settings import SecuritySettings
    from pynomaly_security.storage.base import DocumentStore

__all__ = ["Cadence", "CheckContext", "CheckFn", "CheckKind"]

Cadence = Literal["cheap", "full"]


@dataclass(eq=False)
class CheckContext:
    """What one run's checks read: the effective settings, the stack's parts, the
    application (for probes), the data sources the app gave, and the clock."""

    settings: SecuritySettings
    stack: SecurityStack | None
    app: Any
    sources: ComplianceSources
    now: float
    state: DocumentStore | None = None
    probes: ProbeSession | None = None
    scratch: dict[str, Any] = field(default_factory=dict)

    def result(
        self,
        check_id: str,
        status: Status,
        summary: str,
        *,
        observed: Mapping[str, Any] | None = None,
        expected: Mapping[str, Any] | None = None,
        method: str = "settings",
        how: str = "",
    ) -> CheckResult:
        return CheckResult(
            check_id=check_id,
            status=status,
            summary=summary,
            observed=dict(observed or {}),
            expected=dict(expected or {}),
            method=method,
            how=how,
            at=self.now,
        )


CheckFn = Callable[[CheckContext, str, Mapping[str, Any]], Awaitable[CheckResult]]


@dataclass(frozen=True, slots=True)
class CheckKind:
    func: CheckFn
    cadence: Cadence = "cheap"
