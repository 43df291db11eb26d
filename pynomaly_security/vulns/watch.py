"""The app's own dependencies, checked in the background at start-up and on demand.

:class:`DependencyWatch` is the stack's part (``stack.vulnerabilities``): the lifespan
starts it, which schedules one :meth:`~DependencyWatch.check` as a task and returns
at once (the scan runs in a worker thread: start-up and requests never wait for it).
A check scans the running process (:meth:`AutomatedVulnerabilityAssessment.scan_environment`)
and raises one ``vulnerable_dependency`` monitor alert per vulnerable package the app
has *imported*. Every worker runs its own check (each is its own process), so the
alert is claimed first with a set-if-absent key in the shared store (a day's TTL):
four workers raise it once. ``summary()`` is the read-only view other parts read.

No advisory database (``VULNS_DB_PATH`` missing) is not an error at start-up: the
summary says so, and the admin route answers 503 naming the import command.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from typing import TYPE_CHECKING, Any

from pynomaly_security._log import get_logger
from pynomaly_security.monitor.events import SecurityAlert, ThreatLevel
from pynomaly_security.vulns.assessment import (
    AutomatedVulnerabilityAssessment,
    VulnerabilityScan,
    VulnerabilitySummary,
)
from pynomaly_security.vulns.osv import AdvisoryError

if TYPE_CHECKING:
    from pynomaly_security.monitor.monitor import SecurityMonitor
    from pynomaly_security.settings import SecuritySettings
    from pynomaly_security.storage import Store

__all__ = ["ALERT_TYPE", "DependencyWatch"]

log = get_logger(__name__)

ALERT_TYPE = "vulnerable_dependency"
_ALERT_TTL = 86_400.0  # one alert per package, version and vulnerabilities a day
_LEVELS = {
    "CRITICAL": ThreatLevel.CRITICAL,
    "HIGH": ThreatLevel.HIGH,
    "MEDIUM": ThreatLevel.MEDIUM,
    "LOW": ThreatLevel.LOW,
    "NONE": ThreatLevel.LOW,
    "UNKNOWN": ThreatLevel.HIGH,  # unranked: not low
}


class DependencyWatch:
    """Background and on-demand checks of the running app's dependencies.

    Args:
        assessment: the assessment over the advisory database.
        monitor: where alerts for imported vulnerable packages go.
        store: the shared store (claims each alert once across workers).
        on_startup: run a check when the stack starts.
    """

    def __init__(
        self,
        assessment: AutomatedVulnerabilityAssessment,
        monitor: SecurityMonitor,
        store: Store | None,
        *,
        on_startup: bool = True,
    ) -> None:
        self.assessment = assessment
        self._monitor = monitor
        self._store = store
        self._on_startup = on_startup
        self._task: asyncio.Task[Any] | None = None
        self._running: asyncio.Lock | None = None

    @classmethod
    def from_settings(
        cls, settings: SecuritySettings, monitor: SecurityMonitor, store: Store | None
    ) -> DependencyWatch:
        return cls(
            AutomatedVulnerabilityAssessment.from_settings(settings),
            monitor,
            store,
            on_startup=settings.vulns.check_on_startup,
        )

    async def start(self) -> None:
        if self._on_startup and self._task is None:
            self._task = asyncio.create_task(self._startup_check())

    async def _startup_check(self) -> None:
        try:
            await self.check()
        except AdvisoryError as exc:  # no database yet: the summary says why
            log.info("vulns_startup_check_skipped", reason=str(exc))
        except Exception as exc:  # never take the app down over a report
            log.error("vulns_startup_check_failed", error=repr(exc))

    async def wait_started(self) -> None:
        """Wait for the start-up check (tests, and callers that need its result)."""
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._task)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        # A cancelled check's thread may still be scanning: close after it, off the loop.
        await asyncio.to_thread(self.assessment.close)

    async def check(self) -> VulnerabilityScan:
        """Scan the running process now (one at a time) and alert on imported findings."""
        if self._running is None:
            self._running = asyncio.Lock()
        async with self._running:
            scan = await asyncio.to_thread(self.assessment.scan_environment)
        await self._alert(scan)
        return scan

    def counts(self) -> dict[str, int]:
        """Vulnerable packages per severity at the last check (the dashboard's tile)."""
        return dict(self.summary().counts)

    def summary(self) -> VulnerabilitySummary:
        """Counts by severity, open criticals, last scan time (never scans)."""
        return self.assessment.summary()

    async def _alert(self, scan: VulnerabilityScan) -> None:
        for step in scan.plan:
            findings = [
                f for f in scan.findings if f.package == step.package and f.version == step.version
            ]
            if not any(f.imported for f in findings):
                continue
            ids = sorted(step.vulnerabilities)
            claim = hashlib.sha256(f"{step.package}\0{step.version}\0{ids}".encode()).hexdigest()
            if self._store is not None and not await self._store.add(
                f"vulns:alerted:{claim[:32]}", "1", _ALERT_TTL
            ):
                continue  # another worker (or an earlier check today) raised it
            advice = f"upgrade to {step.target}" if step.target else "no fix: mitigate or remove"
            await self._monitor.raise_alert(
                SecurityAlert(
                    ALERT_TYPE,
                    _LEVELS.get(step.severity, ThreatLevel.HIGH),
                    f"imported dependency {step.package} {step.version} is vulnerable "
                    f"({', '.join(ids[:5])}{'...' if len(ids) > 5 else ''})",
                    details={
                        "package": step.package,
                        "version": step.version,
                        "vulnerabilities": ids,
                        "severity": step.severity,
                        "priority": step.priority,
                        "deadline": step.deadline,
                        "target": step.target,
                    },
                    recommended_actions=[f"{advice} by {step.deadline}"],
                )
            )
