"""``DecisionService``: the stack's decisions, lists, worker index and enrichment in one
object (``stack.decisions``), built from the settings by the composition root."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pynomaly_security.decisions.index import AllowList, DecisionView
from pynomaly_security.decisions.model import Decision
from pynomaly_security.decisions.store import DecisionStore
from pynomaly_security.decisions.sync import DecisionSync
from pynomaly_security.intel.advice import mitigation_advice
from pynomaly_security.intel.ranges import IPRangeSet
from pynomaly_security.intel.store import IntelList, IntelStore
from pynomaly_security.settings import SecuritySettings

if TYPE_CHECKING:
    from pynomaly_security.audit import AuditLogger
    from pynomaly_security.monitor.events import SecurityAlert

__all__ = ["DecisionService"]


class DecisionService:
    """Args:
    settings: the ``DECISION_*`` settings.
    state: documents and tallies (the stack's state, else its store).
    store: the stack's store (repeat counters, grace periods, throttles).
    audit_logger: where changes are recorded.
    clock: seconds since the epoch; injected by tests.
    tenant_scoped: tenancy is on: decisions are made for the running tenant
        (``store.py``), ``store`` is the tenant-scoped view.
    """

    def __init__(
        self,
        settings: SecuritySettings,
        state: Any,
        store: Any,
        *,
        audit_logger: AuditLogger | None = None,
        clock: Callable[[], float] = time.time,
        tenant_scoped: bool = False,
    ) -> None:
        self.allow = AllowList(settings.decision_allow_networks, settings.decision_allow_paths)
        self.store = DecisionStore(
            state,
            store,
            max_decisions=settings.decision_max,
            default_ttl=settings.decision_default_ttl,
            escalation_window=settings.decision_escalation_window,
            max_ttl=settings.decision_max_ttl,
            grace_period=settings.decision_grace_period,
            allow=self.allow,
            audit_logger=audit_logger,
            clock=clock,
            tenant_scoped=tenant_scoped,
        )
        self.intel = IntelStore(state, clock=clock)
        self.view = DecisionView()
        self.sync = DecisionSync(
            self.store,
            self.intel,
            self.view,
            poll_seconds=settings.decision_poll_seconds,
            shared=bool(getattr(state, "shared", True)),
        )
        self.store.on_change = self.sync.refresh
        self.clock = clock

    async def start(self) -> None:
        await self.sync.start()

    async def aclose(self) -> None:
        await self.sync.aclose()

    async def add(self, *args: Any, **kwargs: Any) -> Decision:
        """:meth:`DecisionStore.add`, in force on this worker when it returns (from before
        its audit record is written: ``DecisionStore.on_change``)."""
        return await self.store.add(*args, **kwargs)

    async def revert(self, decision_id: str, **kwargs: Any) -> Decision | None:
        """:meth:`DecisionStore.revert`, lifted on this worker when it returns."""
        return await self.store.revert(decision_id, **kwargs)

    async def import_list(
        self, name: str, ranges: IPRangeSet, *, action: str, ttl: float
    ) -> IntelList:
        imported = await self.intel.import_list(name, ranges, action=action, ttl=ttl)
        await self.sync.refresh()
        return imported

    async def remove_list(self, name: str) -> bool:
        removed = await self.intel.remove(name)
        await self.sync.refresh()
        return removed

    def intel_lists(self, ip: str | None) -> list[str]:
        """The imported lists ``ip`` is on (as this worker last loaded them)."""
        return self.view.index.lists_of(ip, self.clock())

    def enrich_alert(self, alert: SecurityAlert) -> None:
        """A monitor enricher: the lists the alert's address is on, and what to do
        about an alert of its type (``intel/advice.py``)."""
        lists = self.intel_lists(alert.source_ip)
        if lists:
            alert.details["intel_lists"] = lists
        advice = mitigation_advice(alert.alert_type)
        if advice and advice not in alert.recommended_actions:
            alert.recommended_actions = [*alert.recommended_actions, advice]
