"""What the stack builds for tenancy (``stack.tenancy``), and a tenant's deletion.

Deleting a tenant (``Tenancy.delete``):

1. the registry's record becomes a tombstone: every worker answers the generic
   404 within ``TENANCY_CACHE_SECONDS``, and the id is never given out again;
2. every version of the tenant's key is destroyed: whatever was sealed with
   :class:`~pynomaly_security.tenancy.keys.TenantKeys` (its encrypted fields) is
   crypto-shredded;
3. with an audit trail (:meth:`Tenancy.bind_audit`), every subject the tenant's
   records are sealed under is erased (``AuditLogger.erase_tenant``: its users, the
   names tried at its sign-in, its own subject for anonymous clients' IPs): their
   personal data in the trail reads ``[erased]`` while the chain, hashing
   ciphertext, still verifies;
4. each hook of :attr:`Tenancy.on_delete` runs (the app's own data).

The audit trail stays one hash chain, with tenant-bound records and per-tenant
verification (``audit/tenants.py`` says why).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pynomaly_security.audit.tenants import AccessTenants
from pynomaly_security.storage.base import MonitorState, Store, missing_capability
from pynomaly_security.tenancy.context import acting_for, current_tenant
from pynomaly_security.tenancy.keys import TenantKeys
from pynomaly_security.tenancy.quotas import Quotas
from pynomaly_security.tenancy.registry import TenantRegistry
from pynomaly_security.tenancy.scoped import TenantScopedState, TenantScopedStore

if TYPE_CHECKING:
    from pynomaly_security.audit.logger import AuditLogger
    from pynomaly_security.crypto.keys import KeyRing
    from pynomaly_security.monitor.monitor import SecurityMonitor
    from pynomaly_security.settings import SecuritySettings

__all__ = ["Tenancy"]

DeleteHook = Callable[[str], Awaitable[int]]
T = TypeVar("T")


@dataclass(eq=False)
class Tenancy:
    settings: SecuritySettings
    registry: TenantRegistry
    keys: TenantKeys
    quotas: Quotas
    store: TenantScopedStore
    """The tenant-scoped view of the stack's store: build per-tenant state on it
    (the authenticator: ``ZeroTrustAuthenticator.from_settings(settings, stack.tenancy.store)``)."""
    state: TenantScopedState
    on_delete: list[DeleteHook] = field(default_factory=list)
    """Run with the tenant id when it is deleted, after its keys are destroyed; each
    returns how many subjects it erased."""
    access_tenants: AccessTenants | None = None
    """Where the tenancy layer notes each request's tenant for its access row
    (:meth:`bind_audit`); None without an audit trail."""
    audit: AuditLogger | None = None

    def bind_audit(self, audit: AuditLogger) -> None:
        """Bind the audit trail's records to tenants (``audit/tenants.py``); a deleted
        tenant's personal data in it is then crypto-shredded."""
        self.access_tenants = audit.bind_tenants()
        self.audit = audit

    @classmethod
    def build(
        cls,
        settings: SecuritySettings,
        store: Store,
        state: MonitorState | Store,
        keyring: KeyRing,
        monitor: SecurityMonitor | None = None,
    ) -> Tenancy:
        """The parts; ``monitor`` gets the quota alerts (or later: :meth:`report_to`)."""
        if not isinstance(state, MonitorState):
            raise missing_capability(state, MonitorState, "tenancy (its registry and keys)")
        section = settings.tenancy
        scoped = TenantScopedStore(store)
        alert = _quota_alert(monitor) if monitor is not None else None
        return cls(
            settings=settings,
            registry=TenantRegistry(
                state, cache_seconds=section.cache_seconds, max_cached=section.max_tenants
            ),
            keys=TenantKeys(keyring, state, cache_seconds=section.cache_seconds),
            quotas=Quotas(scoped, alert=alert),
            store=scoped,
            state=TenantScopedState(state, max_tenants=section.max_tenants),
        )

    async def visible(
        self, read: Callable[[], Awaitable[list[T]]], *, newest: Callable[[T], float], limit: int
    ) -> list[T]:
        """What ``read`` answers for the caller: inside a tenant (its admin, or the
        platform admin with ``X-Tenant``), that tenant's; for the platform admin without
        one, the platform's and every tenant's (active or suspended), merged newest
        first, at most ``limit`` (one read per tenant: an admin's view, not a hot path)."""
        if current_tenant() is not None:
            return await read()
        with acting_for(None):
            found = await read()
        for tenant in await self.registry.all(limit=self.settings.tenancy.max_tenants):
            with acting_for(tenant.id):
                found += await read()
        found.sort(key=newest, reverse=True)
        return found[:limit]

    def report_to(self, monitor: SecurityMonitor) -> None:
        """Raise the quota alerts in ``monitor`` (built on this object's scoped views,
        so after it)."""
        self.quotas.alert = _quota_alert(monitor)

    async def delete(self, tenant_id: str) -> dict[str, Any]:
        """Delete and crypto-shred a tenant (see the module docstring)."""
        await self.registry.delete(tenant_id)
        versions = len(await self.keys.versions(tenant_id))
        await self.keys.destroy(tenant_id)
        shredded = await self.audit.erase_tenant(tenant_id) if self.audit is not None else 0
        erased = 0
        for hook in self.on_delete:
            erased += await hook(tenant_id)
        return {
            "key_versions_destroyed": versions,
            "audit_subject_keys_destroyed": shredded,
            "subjects_erased": erased,
        }


def _quota_alert(monitor: SecurityMonitor) -> Callable[[str, str], Awaitable[None]]:
    from pynomaly_security.monitor.events import SecurityAlert, ThreatLevel

    async def alert(tenant_id: str, which: str) -> None:
        await monitor.raise_alert(
            SecurityAlert(
                "tenant_quota_exceeded",
                ThreatLevel.MEDIUM,
                f"tenant {tenant_id} over its {which} quota",
                details={"tenant": tenant_id, "quota": which},
            )
        )

    return alert
