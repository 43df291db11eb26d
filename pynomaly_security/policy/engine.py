"""``SecurityPolicyEngine``: versioned policies in the stack's state, the active set
every worker decides with, a shadow candidate beside it, and replay.

Each worker keeps two :class:`~pynomaly_security.policy.evaluator.PolicySet`: the
active versions of every policy, and (while some policy has a shadow version) the
same with each shadow version in place of its active one. :meth:`evaluate` never
touches the store; a :class:`~pynomaly_security._poller.StorePoller` reads the
change counter every ``poll_seconds`` and rebuilds the sets only when it moved (the
worker that made a change rebuilds at once). Each decision names the version it used.

A shadow candidate is evaluated beside the active set on every decision and never
enforced; where the two disagree the request is counted and listed (bounded).
:meth:`replay` runs any version against the decisions logged over a period (by every
worker) and lists which would flip. Counts and decisions are made in memory and added
to the shared state by the poll's task (``ledger.py``), so every worker answers the
same statistics.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from starlette.types import Scope

from pynomaly_security._log import get_logger
from pynomaly_security._poller import StorePoller
from pynomaly_security.exceptions import StorageError
from pynomaly_security.policy.conditions import Principal, RequestFacts, Resource
from pynomaly_security.policy.evaluator import ALLOWED, DENIED, PolicyDecision, PolicySet
from pynomaly_security.policy.ledger import PolicyLedger
from pynomaly_security.policy.model import Effect, Policy, PolicyRule, load_policy
from pynomaly_security.policy.stats import PolicyStats
from pynomaly_security.policy.store import PolicyConflict, PolicyStatus, PolicyStore, PolicyVersion
from pynomaly_security.storage.base import ChangeNotifier

if TYPE_CHECKING:
    from pynomaly_security.audit import AuditLogger
    from pynomaly_security.settings import SecuritySettings

__all__ = ["ReplayReport", "SecurityPolicyEngine"]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ReplayReport:
    policy_id: str
    version: int
    replayed: int
    flips: list[dict[str, Any]]
    """At most ``limit`` of the decisions that would change (oldest first)."""
    flipped: int


class SecurityPolicyEngine:
    """Args:
    state: documents and tallies (the stack's state, else its store).
    poll_seconds: how often a worker reads the change counter.
    shared: whether other processes change the state (a memory state: False).
    max_versions, max_policies: the bounds of the two collections.
    max_logged, max_disagreements, max_rule_stats: the bounds of the statistics.
    audit_logger: where changes (and refusals, by the enforcers) are recorded.
    clock: seconds since the epoch; injected by tests.
    """

    def __init__(
        self,
        state: Any,
        *,
        poll_seconds: float = 0.5,
        shared: bool | None = None,
        max_versions: int = 10_000,
        max_policies: int = 1_000,
        max_logged: int = 10_000,
        max_disagreements: int = 1_000,
        max_rule_stats: int = 100_000,
        audit_logger: AuditLogger | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = PolicyStore(
            state,
            max_versions=max_versions,
            max_policies=max_policies,
            audit_logger=audit_logger,
            clock=clock,
        )
        self.audit_logger = audit_logger
        self.clock = clock
        self.active = PolicySet()
        self.shadow: PolicySet | None = None
        self.coarse: PolicySet | None = None
        """The active coarse rules (``middleware.py``); None while there are none, and
        the middleware is then out of the request path."""
        self.coarse_shadow: PolicySet | None = None
        self._switches: list[tuple[Any, Any]] = []
        self.after_switch: list[Callable[[], None]] = []
        """Called after the layer went in or out of the path (the decision layer's
        switch re-reads the layer it skips to)."""
        self.principal_of: Callable[[Scope], Principal | Awaitable[Principal | None] | None] = (
            _no_principal
        )
        """Who a request is at the middleware (before the app's authentication):
        the app may set it (say, from a verified token's claims); by default the
        request context's user id."""
        self.stats = PolicyStats(
            max_rules=max_rule_stats, max_disagreements=max_disagreements, max_logged=max_logged
        )
        self.ledger = PolicyLedger(state, self.stats)
        # Redis pub/sub: the other workers rebuild on a message rather than at their next
        # poll (issue 17: "within a second"); the poll stays, for a lost message.
        self._notifier: ChangeNotifier | None = (
            state if isinstance(state, ChangeNotifier) else None
        )
        self._listener: asyncio.Task[None] | None = None
        self._seen: int | None = None
        self._lock = asyncio.Lock()
        shared = bool(getattr(state, "shared", True)) if shared is None else shared
        self._poller = StorePoller(
            self._tick,
            interval=poll_seconds,
            shared=shared,
            name="policies",
            memory_hint="a policy change reaches the worker that made it only; "
            "set PYNOMALY_SECURITY__REDIS_URL or STATE_URL",
        )

    @classmethod
    def from_settings(
        cls, settings: SecuritySettings, state: Any, *, audit_logger: AuditLogger | None = None
    ) -> SecurityPolicyEngine:
        return cls(
            state,
            poll_seconds=settings.policy_poll_seconds,
            max_versions=settings.policy_max_versions,
            max_logged=settings.policy_decision_log,
            max_rule_stats=settings.max_tracked_keys,
            audit_logger=audit_logger,
        )

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        await self._poller.start()
        if self._notifier is not None and self._poller.shared and self._listener is None:
            self._listener = asyncio.get_running_loop().create_task(self._listen(self._notifier))

    async def _listen(self, notifier: ChangeNotifier) -> None:
        failing = False
        while True:
            try:
                await notifier.listen(_CHANNEL, self._on_notice)
            except StorageError as exc:
                if not failing:  # once per outage; the poll keeps the worker current
                    log.warning("policies_listen_failed", error=str(exc))
                failing = True
            except Exception as exc:  # the task outlives any one bad message
                log.error("policies_listen_failed", error=repr(exc))
            await asyncio.sleep(self._poller.interval)

    async def _on_notice(self) -> None:
        with contextlib.suppress(StorageError):  # the poll retries
            await self.refresh()

    async def _notify(self) -> None:
        """Wake the other workers after a change (best effort: they poll anyway)."""
        if self._notifier is None:
            return
        try:
            await self._notifier.publish(_CHANNEL)
        except StorageError as exc:
            log.warning("policies_notify_failed", error=str(exc))

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        await self._poller.aclose()
        await self.ledger.flush()  # a stopping worker's last counts are not lost

    async def _tick(self) -> None:
        await self.refresh()
        await self.ledger.flush()

    async def refresh(self, *, force: bool = False) -> bool:
        """Rebuild the sets if the store's change counter moved; True if rebuilt."""
        async with self._lock:
            generation = await self.store.generation()
            if not force and generation == self._seen:
                return False
            active: list[tuple[Policy, int]] = []
            candidate: list[tuple[Policy, int]] = []
            shadowing = False
            for head in await self.store.heads():
                in_force = await self._read(head, "active")
                trial = await self._read(head, "shadow")
                if in_force is not None:
                    active.append(in_force)
                if trial is not None:
                    candidate.append(trial)
                    shadowing = True
                elif in_force is not None:
                    candidate.append(in_force)
            self.active = PolicySet(active)
            self.shadow = PolicySet(candidate) if shadowing else None
            coarse = PolicySet(_coarse(active))
            coarse_shadow = PolicySet(_coarse(candidate)) if shadowing else None
            self.coarse = coarse if coarse or coarse_shadow else None
            self.coarse_shadow = coarse_shadow if coarse_shadow else None
            self._switch()
            self._seen = generation
            return True

    def attach(self, root: Any) -> bool:
        """Find the policy layer reading this engine below ``root`` (a built middleware
        stack, following ``app`` attributes) and bind its outer layer, so that while no
        coarse rule is in force the outer layer calls the next one directly (as the
        decision layer does, ``decisions/index.py``); False if none is found (the layer
        then stays in place, passing requests without a frame)."""
        node = root
        for _ in range(64):  # a stack is a few layers deep; never loop on a cycle
            inner = getattr(node, "app", None)
            if inner is None:
                return False
            if getattr(inner, "engine", None) is self:
                self._switches.append((node, inner))
                self._switch()
                return True
            node = inner
        return False

    def _switch(self) -> None:
        if not self._switches:
            return
        for outer, layer in self._switches:
            outer.app = layer if self.coarse is not None else layer.app
        for callback in self.after_switch:
            callback()

    async def _read(self, head: dict[str, Any], field: str) -> tuple[Policy, int] | None:
        number = head.get(field)
        if number is None:
            return None
        version = await self.store.version(head["policy_id"], int(number))
        return (version.body, version.version) if version is not None else None

    # -- deciding ----------------------------------------------------------------------
    def evaluate(
        self,
        principal: Principal,
        action: str,
        resource: Resource,
        facts: RequestFacts | None = None,
        *,
        record: bool = True,
    ) -> PolicyDecision:
        """The active versions' decision (and, while shadowing, the candidate's beside it)."""
        if facts is None:
            facts = RequestFacts(now=self.clock())
        decision = self.active.evaluate(principal, action, resource, facts)
        if record:
            shadow = self.shadow
            other = shadow.evaluate(principal, action, resource, facts) if shadow else None
            self.stats.record(principal, action, resource, facts, decision, other)
            if decision.warn:
                log.warning("policy_warn_rule_matched", rules=list(decision.dry_run), action=action)
        return decision

    def check_request(
        self, principal: Principal, method: str, resource: Resource, facts: RequestFacts
    ) -> PolicyDecision | None:
        """The coarse rules' decision on a request: refused only when a coarse deny
        applies (the layer never default-denies); None without coarse rules."""
        coarse = self.coarse
        if coarse is None:
            return None
        decision = _passing(coarse.evaluate(principal, method, resource, facts))
        shadow = self.coarse_shadow
        other = _passing(shadow.evaluate(principal, method, resource, facts)) if shadow else None
        if decision.matched or (other is not None and other.matched):
            self.stats.record(principal, method, resource, facts, decision, other)
        if decision.warn:
            log.warning("policy_warn_rule_matched", rules=list(decision.dry_run), action=method)
        return decision

    async def replay(
        self,
        policy_id: str,
        version: int,
        *,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
    ) -> ReplayReport:
        """Run ``version`` of a policy (in place of its active one) over the decisions
        every worker logged in [``since``, ``until``]; the ones that would flip."""
        candidate = await self.store.version(policy_id, version)
        if candidate is None:
            raise PolicyConflict("not_found", f"no version {version} of policy {policy_id!r}")
        others = [(v, n) for v, n in await self.active_policies() if v.id != policy_id]
        trial = PolicySet([*others, (candidate.body, candidate.version)])
        flips: list[dict[str, Any]] = []
        replayed = flipped = 0
        await self.ledger.flush()
        for logged in await self.ledger.decisions(since=since, until=until):
            replayed += 1
            d = trial.evaluate(logged.principal, logged.action, logged.resource, logged.facts)
            if d.allowed == logged.allowed:
                continue
            flipped += 1
            if len(flips) < limit:
                flips.append(
                    {
                        "at": logged.at,
                        "request_id": logged.facts.request_id,
                        "principal": logged.principal.id,
                        "action": logged.action,
                        "resource": logged.resource.path
                        or f"{logged.resource.type}:{logged.resource.id}",
                        "was_allowed": logged.allowed,
                        "would_allow": d.allowed,
                        "rule_id": d.rule_id,
                    }
                )
        return ReplayReport(policy_id, version, replayed, flips, flipped)

    async def active_policies(self) -> list[tuple[Policy, int]]:
        found = []
        for head in await self.store.heads():
            if head.get("active") is not None:
                v = await self.store.version(head["policy_id"], int(head["active"]))
                if v is not None:
                    found.append((v.body, v.version))
        return found

    # -- changing (each in force on this worker when it returns) -----------------------
    async def add_policy(
        self, policy: Policy | str | bytes | Mapping[str, Any], *, author: str = "system"
    ) -> PolicyVersion:
        """A new policy, version 1, as a draft (:meth:`activate` puts it in force)."""
        made = await self.store.create(_policy(policy), author=author)
        await self.refresh()
        await self._notify()
        return made

    async def update_policy(
        self, policy: Policy | str | bytes | Mapping[str, Any], *, author: str = "system"
    ) -> PolicyVersion:
        """A new draft version; the active one stays in force until activated."""
        made = await self.store.update(_policy(policy), author=author)
        await self.refresh()
        await self._notify()
        return made

    async def remove_policy(self, policy_id: str, *, author: str = "system") -> bool:
        removed = await self.store.remove(policy_id, author=author)
        await self.refresh()
        await self._notify()
        return removed

    async def get_policy(self, policy_id: str, version: int | None = None) -> PolicyVersion | None:
        return await self.store.get(policy_id, version)

    async def activate(
        self, policy_id: str, version: int, *, author: str = "system"
    ) -> PolicyVersion:
        made = await self.store.set_status(
            policy_id, version, PolicyStatus.ACTIVE, author=author, action="policy_activated"
        )
        await self.refresh()
        await self._notify()
        return made

    async def shadow_version(
        self, policy_id: str, version: int, *, author: str = "system"
    ) -> PolicyVersion:
        """Evaluate ``version`` beside the active one on live traffic, not enforced."""
        made = await self.store.set_status(
            policy_id, version, PolicyStatus.SHADOW, author=author, action="policy_shadowed"
        )
        await self.refresh()
        await self._notify()
        return made

    async def rollback(
        self, policy_id: str, version: int, *, author: str = "system"
    ) -> PolicyVersion:
        """Make an earlier version active again."""
        head = await self.store.head(policy_id)
        if head is None:
            raise PolicyConflict("not_found", f"no policy {policy_id!r}")
        if head.get("active") is None or version >= int(head["active"]):
            raise PolicyConflict(
                "not_earlier",
                f"rollback goes to a version before the active one ({head.get('active')})",
            )
        made = await self.store.set_status(
            policy_id, version, PolicyStatus.ACTIVE, author=author, action="policy_rolled_back"
        )
        await self.refresh()
        await self._notify()
        return made


_CHANNEL = "policies"

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _is_coarse(rule: PolicyRule) -> bool:
    return (
        rule.effect is Effect.DENY
        and all(a in _METHODS for a in rule.actions)
        and all(r == "*" or r.startswith("/") for r in rule.resources)
    )


def _coarse(policies: list[tuple[Policy, int]]) -> list[tuple[Policy, int]]:
    """Each policy reduced to its coarse rules (those without any left out)."""
    found = []
    for policy, version in policies:
        rules = [r for r in policy.rules if _is_coarse(r)]
        if rules:
            found.append(
                (Policy.model_construct(id=policy.id, description="", rules=rules), version)
            )
    return found


def _passing(decision: PolicyDecision) -> PolicyDecision:
    """At the coarse layer no rule applying means the request passes."""
    if decision.code == DENIED:
        return decision
    return replace(decision, allowed=True, effect=Effect.ALLOW, code=ALLOWED)


def _no_principal(scope: Scope) -> Principal | None:
    return None


def _policy(policy: Policy | str | bytes | Mapping[str, Any]) -> Policy:
    return policy if isinstance(policy, Policy) else load_policy(policy)
