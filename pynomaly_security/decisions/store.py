"""Decisions in the shared state, and the rules of making and reverting them.

Each decision is a document of the ``decisions`` collection (the stack's state, else
its store; memory, SQLite, Redis, PostgreSQL), its id derived from scope, value,
action and origin. Every change adds one to the ``decisions`` tally of ``decisions``:
workers poll that version (``sync.py``) and reload only when it moved, so the request
path never reads the store.

* **Idempotent**: making a live decision again extends it (the later expiry wins).
* **Escalation**: an automatic decision (``correlation:``/``playbook:``) on a value
  that had one within ``DECISION_ESCALATION_WINDOW`` lasts twice as long per repeat,
  up to ``DECISION_MAX_TTL`` (a counter per scope and value in the store).
* **Allow-list**: a decision on an admin network, a health path, or the acting admin
  (their user id or address) is refused.
* **Grace**: after a manual revert, no automatic decision on that value for
  ``DECISION_GRACE_PERIOD`` seconds (a key in the store).
* **Bounded**: at most ``DECISION_MAX`` live decisions; one more is refused
  (:class:`DecisionRefused`, the API's 409), expired ones dropped from the count.

Tenancy (issue 21, ``tenant_scoped``): a decision made in a tenant's scope (its admin,
or a detector or playbook acting on its events) names that tenant and applies to its
requests only (``index.py``); one made by the platform applies to all. Reads answer
the running scope: a tenant sees its own decisions (another's id is unknown), the
platform admin all of them, or one tenant's inside it. The repeat and grace counters
are on the tenant-scoped store. The collection stays one (every worker's index is
built from all of it).

The collection has no delete: a reverted decision is written back expired and
``reverted``; the collection keeps twice ``DECISION_MAX`` documents and drops the
oldest beyond, and a decision still in force is re-written before it would be the
one dropped. Every change is an
``admin_action`` record in the audit trail (scope, action, origin, id; never the value).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from pynomaly_security._log import get_logger
from pynomaly_security.decisions.index import AllowList
from pynomaly_security.decisions.model import (
    MAX_REASON,
    Decision,
    DecisionAction,
    DecisionScope,
    normalize_value,
    valid_origin,
)
from pynomaly_security.intel.store import VERSIONS
from pynomaly_security.storage.base import (
    CounterStore,
    DocumentStore,
    KeyValueStore,
    TallyStore,
)
from pynomaly_security.tenancy.context import current_tenant

if TYPE_CHECKING:
    from pynomaly_security.audit import AuditLogger

__all__ = ["DecisionRefused", "DecisionStore"]

log = get_logger(__name__)

_AUTOMATIC = ("correlation:", "playbook:")
_REPEAT = "dec:rep:"
_GRACE = "dec:grace:"


class DecisionRefused(ValueError):
    """A decision the rules do not allow (allow-list, grace period, bound)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


class _State(DocumentStore, TallyStore, Protocol):
    pass


class _Counters(KeyValueStore, CounterStore, Protocol):
    pass


class DecisionStore:
    """Args:
    state: documents and tallies (the stack's state, else its store).
    store: counters and keys (repeats, grace periods): the stack's store.
    max_decisions, default_ttl, escalation_window, max_ttl, grace_period: the
        ``DECISION_*`` settings.
    allow: the allow-list.
    audit_logger: where changes are recorded (None: not recorded).
    clock: seconds since the epoch; injected by tests.
    tenant_scoped: tenancy is on (see the module docstring).
    """

    def __init__(
        self,
        state: _State,
        store: _Counters,
        *,
        max_decisions: int = 10_000,
        default_ttl: float = 3600.0,
        escalation_window: float = 86_400.0,
        max_ttl: float = 30 * 86_400.0,
        grace_period: float = 600.0,
        allow: AllowList | None = None,
        audit_logger: AuditLogger | None = None,
        clock: Callable[[], float] = time.time,
        tenant_scoped: bool = False,
    ) -> None:
        self._scoped = tenant_scoped
        self._keep = 2 * max_decisions
        self._docs = state.documents(
            "decisions", indexed=("scope", "value", "action"), keep=self._keep
        )
        self._state = state
        self._store = store
        self.max_decisions = max_decisions
        self.default_ttl = default_ttl
        self.escalation_window = escalation_window
        self.max_ttl = max_ttl
        self.grace_period = grace_period
        self.allow = allow if allow is not None else AllowList()
        self.audit_logger = audit_logger
        self.clock = clock
        self.on_change: Callable[[], Awaitable[object]] | None = None
        """Called after a change is stored and before it is audited: the service puts it
        in force on this worker there, so a ban does not wait for an audit commit."""

    # -- reading -----------------------------------------------------------------------
    async def versions(self) -> dict[str, int]:
        """``{"decisions": n, "intel": m}``: what the workers poll."""
        return await self._state.tallies(VERSIONS)

    async def live(self) -> list[Decision]:
        """Every decision not expired nor reverted (at most twice the bound are read)."""
        now = self.clock()
        docs = await self._docs.find(limit=self._keep)
        return [d for d in map(Decision.from_dict, docs) if d.live(now)]

    def _visible(self, decision: Decision) -> bool:
        """Whether the running scope may see ``decision`` (module docstring)."""
        if not self._scoped:
            return True
        tenant = current_tenant()
        return tenant is None or decision.tenant == tenant

    async def get(self, decision_id: str) -> Decision | None:
        found = await self._docs.get(decision_id)
        decision = Decision.from_dict(found) if found is not None else None
        return decision if decision is not None and self._visible(decision) else None

    async def find(
        self,
        *,
        scope: DecisionScope | None = None,
        value: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Decision]:
        """Live decisions, newest first; ``value`` normalized by ``scope`` when both given."""
        where: dict[str, Any] = {}
        if scope is not None:
            where["scope"] = scope.value
            if value is not None:
                value = normalize_value(scope, value)
        if value is not None:
            where["value"] = value
        now = self.clock()
        docs = await self._docs.find(where, limit=self._keep)
        found = [d for d in map(Decision.from_dict, docs) if d.live(now) and self._visible(d)]
        return found[offset : offset + limit]

    # -- making ------------------------------------------------------------------------
    async def add(
        self,
        scope: DecisionScope | str,
        value: str,
        action: DecisionAction | str,
        *,
        origin: str = "manual",
        reason: str = "",
        ttl: float | None = None,
        actor: str = "system",
        actor_ip: str | None = None,
    ) -> Decision:
        """Make (or extend) a decision; the decision as stored.

        Raises:
            ValueError: a bad scope, value, action, origin or ttl (the reason says which).
            DecisionRefused: allow-listed, in a grace period, or over the bound.
        """
        scope, action = DecisionScope(scope), DecisionAction(action)
        value = normalize_value(scope, value)
        if not valid_origin(origin):
            raise ValueError(f"origin {origin!r}: manual, correlation:<rule>, playbook:<name>")
        if ttl is not None and not 0 < ttl <= self.max_ttl:
            raise ValueError(f"ttl must be in (0, {self.max_ttl:g}] seconds")
        self._check_allowed(scope, value, actor, actor_ip)
        automatic = origin.startswith(_AUTOMATIC)
        target = f"{scope.value}:{value}"
        if automatic and await self._store.get(_GRACE + target) is not None:
            raise DecisionRefused(
                "grace_period",
                f"{scope.value} was unbanned by an admin recently: no automatic decision",
            )
        now = self.clock()
        decision = Decision(
            scope,
            value,
            action,
            origin,
            reason[:MAX_REASON],
            now,
            now,
            actor=actor,
            tenant=current_tenant() if self._scoped else None,
        )
        existing = await self.get(decision.decision_id)
        if existing is not None and existing.live(now):
            duration = ttl if ttl is not None else self.default_ttl
            expires = max(existing.expires_at, now + duration)
            await self._docs.update(existing.decision_id, {"expires_at": expires})
            existing.expires_at = expires
            await self._changed(existing, "decision_extended", actor, actor_ip)
            return existing
        kept = [Decision.from_dict(d) for d in await self._docs.find(limit=self._keep)]
        if sum(d.live(now) for d in kept) >= self.max_decisions:
            raise DecisionRefused(
                "limit", f"{self.max_decisions} decisions are in force (DECISION_MAX)"
            )
        if len(kept) >= self._keep:
            # At the collection's bound the next write drops its oldest document: keep
            # decisions in force out of the way (re-written, they are the newest), so
            # only expired or reverted ones are ever dropped (at most half are live).
            for old in reversed(kept):
                if not old.live(now):
                    break
                await self._docs.put(old.decision_id, old.to_dict())
        repeats = 0
        if automatic:
            repeats = await self._store.incr(_REPEAT + target, self.escalation_window) - 1
        duration = ttl if ttl is not None else self.default_ttl
        decision.repeats = repeats
        decision.expires_at = now + min(duration * 2 ** min(repeats, 40), self.max_ttl)
        await self._docs.put(decision.decision_id, decision.to_dict())
        await self._changed(decision, "decision_added", actor, actor_ip)
        return decision

    def _check_allowed(
        self, scope: DecisionScope, value: str, actor: str, actor_ip: str | None
    ) -> None:
        if self.allow.covers(scope, value):
            raise DecisionRefused("allow_listed", f"that {scope.value} is on the allow-list")
        if scope is DecisionScope.USER and value == actor:
            raise DecisionRefused("acting_admin", "a decision may not target the acting admin")
        if actor_ip is not None and scope in (DecisionScope.IP, DecisionScope.CIDR):
            probe = AllowList(
                [value]
                if scope is DecisionScope.CIDR
                else [value + "/128" if ":" in value else value + "/32"]
            )
            if probe.allows_ip(actor_ip):
                raise DecisionRefused(
                    "acting_admin", "a decision may not target the acting admin's address"
                )

    async def revert(
        self, decision_id: str, *, actor: str = "admin", actor_ip: str | None = None
    ) -> Decision | None:
        """End a decision now; None if unknown or no longer in force. A manual revert
        starts the value's grace period."""
        existing = await self.get(decision_id)
        now = self.clock()
        if existing is None or not existing.live(now):
            return None
        await self._docs.update(decision_id, {"expires_at": now, "reverted": True})
        existing.expires_at = now
        if self.grace_period > 0:
            await self._store.put(
                f"{_GRACE}{existing.scope.value}:{existing.value}", "1", self.grace_period
            )
        await self._changed(existing, "decision_reverted", actor, actor_ip)
        return existing

    async def _changed(
        self, decision: Decision, action: str, actor: str, actor_ip: str | None
    ) -> None:
        await self._state.add_tallies(VERSIONS, {"decisions": 1})
        if self.on_change is not None:
            await self.on_change()
        if self.audit_logger is None:
            return
        from pynomaly_security.audit import SecurityEventType

        try:
            await self.audit_logger.log_audit_event(
                action,
                f"decision:{decision.decision_id}",
                user_id=actor,
                details={
                    "decision_id": decision.decision_id,
                    "scope": decision.scope.value,
                    "action": decision.action.value,
                    "origin": decision.origin,
                    "expires_at": decision.expires_at,
                    "repeats": decision.repeats,
                },
                event_type=SecurityEventType.ADMIN_ACTION,
                source_ip=actor_ip,
            )
        except Exception as exc:  # in force already: say so loudly, do not undo it
            log.error(
                "decision_audit_failed", decision_id=decision.decision_id, error=type(exc).__name__
            )
