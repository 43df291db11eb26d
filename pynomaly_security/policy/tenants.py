"""Tenant policies (issue 21): a tenant's own policies, on top of the global ones.

A tenant admin adds policies that apply to that tenant's requests only, and only
ever **restrict**: every rule of a tenant policy is a ``deny`` (a "require" is a deny
``unless`` the requirement holds: ``deny * unless principal.mfa``); an ``allow`` rule
is refused when the policy is written (422). A request of tenant T is decided by the
global policies first; only if they allow it are T's policies evaluated, and a deny of
T's then wins. So a tenant can never allow what a global policy denies (or leaves
undecided: the global default deny stands), and never reach another tenant's requests.

Storage is isolated by construction: the tenant's policies live in its own namespace
of the state (``TenantScopedState``: collections ``t<len>:<id>|policies`` ...), so no
listing or id of one tenant can reach another's or the global ones. The platform's
index of the tenants that have policies tells every worker which to load; a change
bumps the global change counter, so every worker reloads within its poll (or at once,
with Redis pub/sub), as for a global change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pynomaly_security.policy.evaluator import DENIED, PolicyDecision, PolicySet
from pynomaly_security.policy.model import Effect, Policy
from pynomaly_security.policy.store import PolicyStore
from pynomaly_security.tenancy.context import PLATFORM, tenant_scope

if TYPE_CHECKING:
    from pynomaly_security.audit import AuditLogger
    from pynomaly_security.policy.conditions import Principal, RequestFacts, Resource

__all__ = ["TenantPolicies", "loosening_rules"]

_INDEX = PLATFORM + "tenant_policies"


def loosening_rules(policy: Policy) -> list[str]:
    """The rules of a tenant policy that are not restrictions (must be empty)."""
    return [
        f"rule {rule.id!r} is an allow: a tenant policy may only deny (or require)"
        for rule in policy.rules
        if rule.effect is not Effect.DENY
    ]


class TenantPolicies:
    """Every tenant's policies: their stores (one per tenant namespace) and the sets in
    force, by tenant.

    Args:
        state: the stack's state (the platform's index of tenants with policies).
        tenant_state: its tenant-scoped view (each tenant's policy collections).
    """

    def __init__(
        self,
        state: Any,
        tenant_state: Any,
        *,
        max_versions: int,
        max_tenants: int,
        audit_logger: AuditLogger | None,
    ) -> None:
        self.store = PolicyStore(tenant_state, max_versions=max_versions, audit_logger=audit_logger)
        """Every call runs for the tenant in scope (``tenant_scope``)."""
        self._index = state.documents(_INDEX, indexed=(), keep=max_tenants)
        self._max = max_tenants
        self.active: dict[str, PolicySet] = {}
        self.coarse: dict[str, PolicySet] = {}

    async def changed(self, tenant_id: str) -> None:
        """Note that ``tenant_id`` has policies (the workers load its set)."""
        await self._index.put(tenant_id, {"tenant": tenant_id})

    async def load(self, coarse_of: Any) -> None:
        """Rebuild every tenant's active set (and coarse rules: ``coarse_of``)."""
        active: dict[str, PolicySet] = {}
        coarse: dict[str, PolicySet] = {}
        for doc in await self._index.find(None, limit=self._max):
            tenant = str(doc["tenant"])
            with tenant_scope(tenant):
                found: list[tuple[Policy, int]] = []
                for head in await self.store.heads():
                    number = head.get("active")
                    if number is None:
                        continue
                    version = await self.store.version(head["policy_id"], int(number))
                    if version is not None:
                        found.append((version.body, version.version))
            if found:
                active[tenant] = PolicySet(found)
                rules = coarse_of(found)
                if rules:
                    coarse[tenant] = PolicySet(rules)
        self.active, self.coarse = active, coarse

    def restrict(
        self,
        sets: dict[str, PolicySet],
        tenant: str | None,
        decision: PolicyDecision,
        args: tuple[Principal, str, Resource, RequestFacts],
    ) -> PolicyDecision:
        """``decision`` (the global one), or the tenant's deny when the global allowed."""
        if tenant is None or not decision.allowed:
            return decision
        own = sets.get(tenant)
        if own is None:
            return decision
        mine = own.evaluate(*args)
        return mine if mine.code == DENIED else decision
