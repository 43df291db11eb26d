"""``IncidentResponseAutomation``: create and drive incidents; every change on the
audit trail (the integration guide's incident response, issue 16).

Each change is first made on the stored incident (compare-and-set, ``store.py``),
then recorded as an ``incident_created`` / ``incident_updated`` audit record, and
the record's sequence number appended to the incident's ``timeline``: the
timeline is thus part of the hash-chained, signed trail, and
:meth:`IncidentResponseAutomation.get_timeline` reads it back and says whether it
verifies. A record says what changed and who changed it, never an observable's
value (addresses and user names stay in the incident, out of the trail) nor a
secret.

A ``dedup_key`` makes a repeating pattern one incident: while the newest incident
of that key is open, creating it again links the new alerts and observables to
it (``occurrences`` + 1) and returns its id; once it is closed, the next creation
opens a new generation. The id of a generation is derived from the key, so two
workers creating it at once insert one document (``DocumentCollection.add``) and
the loser joins the winner's incident.

Two ways to get one, as :class:`~pynomaly_security.AdvancedSecurityOrchestrator`:

* ``IncidentResponseAutomation.from_stack(stack)``: the app's state (``STATE_URL``,
  else its store) and audit logger; what the admin API uses.
* ``IncidentResponseAutomation()``: settings from the environment
  (``pynomaly_security.defaults``), the state at ``STATE_URL`` / ``REDIS_URL`` (memory
  without either: this process only), the process's default ``AuditLogger()``.

Sync or awaited (:mod:`pynomaly_security._dual`): every method runs to completion
when called from code without an event loop (the guide's ``incident_id =
incident_response.create_incident(...)``) and must be awaited inside async code
(unawaited there it does nothing and says so when read).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from pynomaly_security._dual import Deferred, SyncPortal, in_running_loop
from pynomaly_security.audit.bounds import cut
from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.incidents.model import (
    MAX_ALERTS,
    MAX_NAME,
    MAX_NOTES,
    MAX_OBSERVABLES,
    MAX_TEXT,
    MAX_TIMELINE,
    Incident,
    IncidentSeverity,
    IncidentStatus,
    bounded_names,
    check_transition,
    clean_observables,
    dedup_digest,
    merge_names,
)
from pynomaly_security.incidents.notify import Notifier
from pynomaly_security.incidents.playbooks import PlaybookLibrary
from pynomaly_security.incidents.runner import PlaybookRunner
from pynomaly_security.incidents.store import IncidentConflict, IncidentNotFound, IncidentStore
from pynomaly_security.settings import SecuritySettings
from pynomaly_security.storage.base import DocumentStore, missing_capability
from pynomaly_security.tenancy.context import acting_for, current_tenant

if TYPE_CHECKING:
    from pynomaly_security.audit import AuditLogger
    from pynomaly_security.decisions.service import DecisionService
    from pynomaly_security.incidents.actions import AppRef, SessionRevoker
    from pynomaly_security.plugin import SecurityStack
    from pynomaly_security.storage.registry import StorageRegistry

__all__ = ["IncidentResponseAutomation"]

_SEVERITY_RANK = {s: n for n, s in enumerate(IncidentSeverity)}


def _actor(actor: str | None) -> str:
    return cut(actor.strip(), MAX_NAME) if actor and actor.strip() else "system"


class IncidentResponseAutomation:
    """Incidents: create (deduplicated), read, move through the lifecycle, annotate.

    Args:
        settings: default: from the environment (the process defaults).
        state: where incidents live (a :class:`~pynomaly_security.storage.base.DocumentStore`);
            default: ``STATE_URL``, else ``REDIS_URL``, else memory.
        audit_logger: where the timeline is written; default: the process's
            ``AuditLogger()`` (none when ``ENABLE_AUDIT_LOGGING`` is off: incidents
            then have no timeline).
        clock: seconds since the epoch; injected by tests.
    """

    def __init__(
        self,
        settings: SecuritySettings | None = None,
        *,
        state: DocumentStore | None = None,
        audit_logger: AuditLogger | None = None,
        clock: Callable[[], float] = time.time,
        _stack: SecurityStack | None = None,
    ) -> None:
        from pynomaly_security import defaults

        self._registry: StorageRegistry | None = None
        if settings is None:
            settings = _stack.settings if _stack is not None else defaults.settings()
        self.settings = settings
        if state is None:
            from pynomaly_security.storage.registry import StorageRegistry

            url = settings.state_url or settings.redis_url or "memory://"
            self._registry = StorageRegistry.from_settings(settings)
            state = self._registry.state(url, setting="STATE_URL")
        if not isinstance(state, DocumentStore):
            raise missing_capability(state, DocumentStore, "incidents")
        if audit_logger is None and _stack is None and settings.enable_audit_logging:
            audit_logger = defaults.audit_logger()
        self.state = state
        self.store = IncidentStore(state)
        self.audit_logger = audit_logger
        self._clock = clock
        self._portal = SyncPortal()
        self._started = _stack is not None
        self.intel_lookup: Callable[[str], list[str]] | None = None
        """The imported lists an address is on (the stack's decisions); an incident's
        addresses are looked up when it is created and when it recurs."""
        self.decisions: DecisionService | None = None
        """Where playbook decisions are made: the stack's (``from_stack``), else one on
        this object's state (standalone)."""
        self.counters: Any = None
        """Keys and counters of playbook runs (idempotency, rate): the stack's store."""
        self.session_revoker: SessionRevoker | None = None
        """Ends every session of a user (``revoke_sessions``); set by
        ``auth.install_authenticator`` on an app with a stack."""
        self.app: AppRef | None = None
        """A weak reference to the stack's ASGI app (set by ``setup_security_middleware``):
        ``verify`` sends its synthetic request through it (``actions.py``). Weak: the
        app owns the stack, which owns this object; none without an app."""
        if self._registry is not None:
            from pynomaly_security.decisions.service import DecisionService

            # Counters live where the stack keeps them (REDIS_URL, else this process's
            # memory): SQL state backends have documents, not counters.
            self.counters = self._registry.store(
                settings.redis_url or "memory://", setting="REDIS_URL"
            )
            if settings.decisions_enabled:
                self.decisions = DecisionService(
                    settings, state, self.counters, audit_logger=audit_logger, clock=clock
                )
        self.playbook_marks: Any = None
        """Where playbook runs keep their done marks and rate (``incidents/marks.py``):
        the state's documents when the state is shared and ``REDIS_URL`` is not set
        (the counters are then this process's memory), else the counters."""
        if settings.redis_url is None and settings.state_url is not None:
            from pynomaly_security.incidents.marks import StateMarks

            self.playbook_marks = StateMarks(state, lambda: self._clock())
        self.playbooks = PlaybookLibrary(file=settings.playbooks_file)
        self.runner = PlaybookRunner(self, self.playbooks, Notifier(settings))

    @property
    def clock(self) -> Callable[[], float]:
        """Seconds since the epoch (incident times, approvals' time-to-live, rates)."""
        return self._clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self._clock = clock

    def _intel(self, seen: Mapping[str, Sequence[str]]) -> list[str]:
        lookup = self.intel_lookup
        if lookup is None:
            return []
        names: list[str] = []
        for ip in seen.get("ips", ()):
            names = merge_names(names, lookup(ip), MAX_OBSERVABLES)
        return names

    @classmethod
    def from_stack(cls, stack: SecurityStack) -> IncidentResponseAutomation:
        """Incidents on an app's stack: its state and audit logger (its lifespan opens them).

        With tenancy (issue 21), the tenant-scoped views: an incident opened while an
        event of tenant A is analysed (a correlation match) is A's, its playbook's
        marks, counters and decisions are made in A's scope, and only A's admin (or the
        platform admin inside A) reads it."""
        tenancy = stack.tenancy
        state = (
            tenancy.state
            if tenancy is not None
            else stack.state
            if stack.state is not None
            else stack.store
        )
        if state is None:
            raise ConfigurationError("the stack has no state to keep incidents in")
        automation = cls(
            stack.settings,
            state=cast(DocumentStore, state),
            audit_logger=stack.audit_logger,
            _stack=stack,
        )
        automation.counters = tenancy.store if tenancy is not None else stack.store
        return automation

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Open the state this object built (an app's is its lifespan's)."""
        if self._registry is None:
            # Given state (an app's stack): its connections belong to the loop that runs
            # it, so sync callers (a sync endpoint's thread) run there, as the monitor's.
            self._portal.adopt()
        if self._started:
            return
        self._started = True
        if self._registry is not None:
            await self._registry.start()
        start = getattr(self.state, "start", None)
        if start is not None:
            await start()
        if self._registry is not None and self.counters is not None:
            await self.counters.start()
        if self._registry is not None and self.decisions is not None:
            await self.decisions.start()

    async def aclose(self) -> None:
        if self._started and self._registry is not None:
            self._started = False
            if self.decisions is not None:
                await self.decisions.aclose()
            await self._registry.aclose()

    def close(self) -> None:
        """:meth:`aclose` from sync code, then the private loop."""
        if self._started and self._registry is not None:
            self._portal.run(self.aclose)
        self._portal.close()

    def _call(self, name: str, factory: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        """Run for a sync caller; inside a loop, hand back the awaitable (module doc).
        Either way for the caller's tenant (issue 21): a sync caller's call runs on the
        loop's thread, which does not have the caller's context; no scope: the platform."""
        tenant = current_tenant()

        async def started() -> Any:
            with acting_for(tenant):
                await self.start()
                return await factory()

        if in_running_loop():
            return Deferred(name, started)
        return self._portal.run(started)

    # -- the timeline ----------------------------------------------------------------------
    async def _record(
        self, incident: Incident, action: str, actor: str, details: Mapping[str, Any]
    ) -> None:
        """Commit the change's audit record and append its number to the timeline."""
        if self.audit_logger is None:
            return
        from pynomaly_security.audit import AuditLevel, SecurityEventType

        event = (
            SecurityEventType.INCIDENT_CREATED
            if action == "created"
            else SecurityEventType.INCIDENT_UPDATED
        )
        level = (
            AuditLevel.WARNING
            if incident.severity.value in ("high", "critical")
            else AuditLevel.INFO
        )
        seq = await self.audit_logger.log_audit_event(
            action,
            f"incident:{incident.incident_id}",
            user_id=actor,
            details={"incident_id": incident.incident_id, "action": action, **details},
            event_type=event,
            level=level,
        )

        def append(inc: Incident) -> None:
            if len(inc.timeline) < MAX_TIMELINE:
                inc.timeline.append(seq)
            else:
                inc.timeline_dropped += 1

        await self.store.change(incident.incident_id, append)

    # -- creating ----------------------------------------------------------------------------
    def create_incident(
        self,
        title: str,
        description: str = "",
        severity: IncidentSeverity | str = IncidentSeverity.HIGH,
        affected_assets: Iterable[str] = (),
        *,
        dedup_key: str | None = None,
        alert_ids: Iterable[str] = (),
        observables: Mapping[str, Iterable[object]] | None = None,
        first_seen: float | None = None,
        actor: str | None = None,
        source: str = "api",
    ) -> str:
        """Open an incident (or, with a ``dedup_key`` whose incident is open, add to it);
        its id. ``observables``: ``{"ips": [...], "users": [...], "sessions": [...],
        "routes": [...]}`` (session ids, never tokens); ``first_seen``: when its first
        event happened (default now).

        Raises:
            ValueError: an empty title, an unknown severity or observable kind.
        """
        sev = IncidentSeverity(severity)
        if not title or not title.strip():
            raise ValueError("an incident needs a title")
        seen = clean_observables(observables)
        assets = bounded_names(affected_assets)
        alerts = bounded_names(alert_ids, MAX_ALERTS)
        who = _actor(actor)

        async def run() -> str:
            now = self._clock()
            tenant = current_tenant()
            digest = dedup_digest(dedup_key, tenant) if dedup_key else None
            for _ in range(16):
                gen = 0
                if digest is not None:
                    latest = await self.store.latest_for(digest)
                    if latest is not None and latest.status.is_open:
                        await self._recur(latest, sev, assets, alerts, seen, now, who)
                        return latest.incident_id
                    gen = latest.dedup_gen + 1 if latest is not None else 1
                    incident_id = f"inc-{digest[:16]}-{gen}"
                else:
                    incident_id = f"inc-{secrets.token_hex(8)}"
                incident = Incident(
                    incident_id=incident_id,
                    title=cut(title.strip(), MAX_TEXT),
                    description=cut(description, MAX_TEXT),
                    severity=sev,
                    status=IncidentStatus.NEW,
                    created_at=now,
                    updated_at=now,
                    first_seen=min(now, first_seen) if first_seen is not None else now,
                    last_seen=now,
                    dedup_key=cut(dedup_key, MAX_NAME) if dedup_key else None,
                    dedup=digest,
                    dedup_gen=gen,
                    alert_ids=alerts,
                    observables=seen,
                    affected_assets=assets,
                    status_times={IncidentStatus.NEW.value: now},
                    source=cut(source, MAX_NAME),
                    created_by=who,
                    intel_lists=self._intel(seen),
                    tenant=tenant,
                )
                if await self.store.add(incident):
                    await self._record(
                        incident,
                        "created",
                        who,
                        {
                            "title": incident.title,
                            "severity": sev.value,
                            "status": IncidentStatus.NEW.value,
                            "source": incident.source,
                            "affected_assets": assets,
                            "alert_ids": alerts,
                            "observables": {k: len(v) for k, v in seen.items()},
                        },
                    )
                    return incident_id
                # Another worker created this generation first: join it (next pass).
            raise IncidentConflict(f"could not create an incident for {dedup_key!r}; try again")

        return cast(str, self._call("create_incident", run))

    async def _recur(
        self,
        incident: Incident,
        severity: IncidentSeverity,
        assets: Sequence[str],
        alerts: Sequence[str],
        seen: Mapping[str, Sequence[str]],
        now: float,
        actor: str,
    ) -> None:
        """The pattern repeated: one more occurrence, new alerts, observables, assets."""
        intel = self._intel(seen)

        def apply(inc: Incident) -> None:
            inc.occurrences += 1
            inc.last_seen = max(inc.last_seen, now)
            inc.updated_at = now
            if _SEVERITY_RANK[severity] > _SEVERITY_RANK[inc.severity]:
                inc.severity = severity
            inc.alert_ids = merge_names(inc.alert_ids, alerts, MAX_ALERTS)
            inc.affected_assets = merge_names(inc.affected_assets, assets, MAX_OBSERVABLES)
            for kind, values in seen.items():
                inc.observables[kind] = merge_names(
                    inc.observables.get(kind, []), values, MAX_OBSERVABLES
                )
            inc.intel_lists = merge_names(inc.intel_lists, intel, MAX_OBSERVABLES)

        after = await self.store.change(incident.incident_id, apply)
        await self._record(
            after,
            "recurred",
            actor,
            {
                "occurrences": after.occurrences,
                "severity": after.severity.value,
                "alert_ids": list(alerts),
            },
        )

    # -- reading -------------------------------------------------------------------------------
    def get_incident(self, incident_id: str) -> dict[str, Any] | None:
        """The incident (with ``metrics``), or None for an unknown id."""

        async def run() -> dict[str, Any] | None:
            found = await self.store.get(incident_id)
            return found.public() if found is not None else None

        return cast("dict[str, Any] | None", self._call("get_incident", run))

    def list_incidents(
        self,
        *,
        status: IncidentStatus | str | None = None,
        severity: IncidentSeverity | str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Incidents newest first, filtered by status and severity."""
        st = None if status is None else IncidentStatus(status)
        sev = None if severity is None else IncidentSeverity(severity)
        if not 1 <= limit <= 1000 or not 0 <= offset <= 10_000:
            raise ValueError("limit must be in 1..1000 and offset in 0..10000")

        async def run() -> list[dict[str, Any]]:
            found = await self.store.list(status=st, severity=sev, limit=limit, offset=offset)
            return [i.public() for i in found]

        return cast("list[dict[str, Any]]", self._call("list_incidents", run))

    # -- changing ------------------------------------------------------------------------------
    def update_status(
        self,
        incident_id: str,
        status: IncidentStatus | str,
        *,
        actor: str | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Move the incident to ``status``.

        Raises:
            InvalidTransition: the lifecycle does not allow it (names both states).
            IncidentNotFound: unknown id.
        """
        wanted = IncidentStatus(status)
        who = _actor(actor)

        async def run() -> dict[str, Any]:
            now = self._clock()
            before: list[IncidentStatus] = []

            def apply(inc: Incident) -> None:
                check_transition(inc.incident_id, inc.status, wanted)
                before[:] = [inc.status]
                inc.status = wanted
                inc.updated_at = now
                inc.status_times.setdefault(wanted.value, now)

            after = await self.store.change(incident_id, apply)
            details: dict[str, Any] = {"from": before[0].value, "to": wanted.value}
            if reason:
                details["reason"] = cut(reason, MAX_TEXT)
            await self._record(after, "status", who, details)
            return await self._public(incident_id)

        return cast("dict[str, Any]", self._call("update_status", run))

    def add_note(self, incident_id: str, text: str, *, actor: str | None = None) -> dict[str, Any]:
        """Append a note (kept on the incident, bounded; its text on the timeline)."""
        if not text or not text.strip():
            raise ValueError("a note needs text")
        note_text = cut(text.strip(), MAX_TEXT)
        who = _actor(actor)

        async def run() -> dict[str, Any]:
            now = self._clock()

            def apply(inc: Incident) -> None:
                inc.notes.append({"at": now, "author": who, "text": note_text})
                del inc.notes[:-MAX_NOTES]  # the newest kept: the trail has them all
                inc.updated_at = now

            after = await self.store.change(incident_id, apply)
            await self._record(after, "note", who, {"note": note_text})
            return await self._public(incident_id)

        return cast("dict[str, Any]", self._call("add_note", run))

    def assign(
        self, incident_id: str, assignee: str | None, *, actor: str | None = None
    ) -> dict[str, Any]:
        """Set (or, with None, clear) who handles the incident."""
        name = cut(assignee.strip(), MAX_NAME) if assignee and assignee.strip() else None
        who = _actor(actor)

        async def run() -> dict[str, Any]:
            now = self._clock()
            before: list[str | None] = []

            def apply(inc: Incident) -> None:
                before[:] = [inc.assignee]
                inc.assignee = name
                inc.updated_at = now

            after = await self.store.change(incident_id, apply)
            await self._record(after, "assign", who, {"from": before[0], "to": name})
            return await self._public(incident_id)

        return cast("dict[str, Any]", self._call("assign", run))

    def link_alert(
        self, incident_id: str, alert_id: str, *, actor: str | None = None
    ) -> dict[str, Any]:
        """Link a monitor alert to the incident (once; at most ``MAX_ALERTS``)."""
        alert = cut(alert_id.strip(), MAX_NAME)
        who = _actor(actor)

        async def run() -> dict[str, Any]:
            def apply(inc: Incident) -> None:
                inc.alert_ids = merge_names(inc.alert_ids, [alert], MAX_ALERTS)
                inc.updated_at = self._clock()

            after = await self.store.change(incident_id, apply)
            await self._record(after, "alert_linked", who, {"alert_id": alert})
            return await self._public(incident_id)

        return cast("dict[str, Any]", self._call("link_alert", run))

    async def _public(self, incident_id: str) -> dict[str, Any]:
        found = await self.store.get(incident_id)
        if found is None:  # evicted in between: as good as unknown
            raise IncidentNotFound(incident_id)
        return found.public()

    # -- playbooks ------------------------------------------------------------------------
    def execute_containment_playbook(
        self,
        incident_id: str,
        name: str,
        *,
        dry_run: bool = False,
        actor: str | None = None,
        actor_ip: str | None = None,
        params: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Run playbook ``name`` against the incident (``runner.py``); the run's outcome:
        ``status`` (``completed``, ``failed``, ``awaiting_approval``, ``dry_run``) and
        per step its ``status`` (``done``, ``already_done``, ``in_progress``, ``planned``,
        ``skipped``, ``refused``, ``failed``, ``awaiting_approval``, ``pending``), plan and
        results.
        ``params``: ``{step id: {parameter: value}}`` over the playbook's.

        Raises:
            IncidentNotFound: unknown incident. PlaybookNotFound: unknown playbook.
            ValueError: bad ``params``.
        """
        who = _actor(actor)

        async def run() -> dict[str, Any]:
            return await self.runner.run(
                incident_id, name, dry_run=dry_run, actor=who, actor_ip=actor_ip, params=params
            )

        return cast("dict[str, Any]", self._call("execute_containment_playbook", run))

    def revert_containment_playbook(
        self, incident_id: str, name: str, *, actor: str | None = None, actor_ip: str | None = None
    ) -> dict[str, Any]:
        """Revert the decisions playbook ``name`` made for the incident."""
        who = _actor(actor)

        async def run() -> dict[str, Any]:
            return await self.runner.revert(incident_id, name, actor=who, actor_ip=actor_ip)

        return cast("dict[str, Any]", self._call("revert_containment_playbook", run))

    def decide_approval(
        self, approval_id: str, *, approve: bool, actor: str, actor_ip: str | None = None
    ) -> dict[str, Any]:
        """Approve (running the playbook on from the approved step) or reject an
        approval; raises :class:`~pynomaly_security.incidents.runner.ApprovalRefused`."""

        async def run() -> dict[str, Any]:
            return await self.runner.decide(
                approval_id, approve=approve, actor=actor, actor_ip=actor_ip
            )

        return cast("dict[str, Any]", self._call("decide_approval", run))

    def list_playbooks(self) -> list[dict[str, Any]]:
        """The playbooks this object runs: name, version, description, steps."""
        return [p.model_dump() for p in self.playbooks.all()]

    # -- the timeline, read back -------------------------------------------------------------
    def get_timeline(self, incident_id: str, *, verify: bool = True) -> dict[str, Any]:
        """The incident's audit records, read back from the trail, oldest first, and
        (with ``verify``) whether they verify: the whole trail passes the audit
        verifier and every entry is present, readable and about this incident.

        Raises:
            IncidentNotFound: unknown id.
        """

        async def run() -> dict[str, Any]:
            incident = await self.store.get(incident_id)
            if incident is None:
                raise IncidentNotFound(incident_id)
            out: dict[str, Any] = {
                "incident_id": incident_id,
                "entries": [],
                "dropped": incident.timeline_dropped,
                "verified": None,
                "verification": None,
            }
            if self.audit_logger is None:
                out["verification"] = {"ok": False, "message": "audit logging is off"}
                out["verified"] = False
                return out
            records = await self.audit_logger.records_at(incident.timeline)
            result = await self.audit_logger.verify() if verify else None
            bad_from = None if result is None else result.first_bad_seq
            entries_ok = True
            for seq in incident.timeline:
                rec = records.get(seq)
                entry = _entry(seq, rec, incident_id, bad_from)
                entries_ok = entries_ok and entry["intact"]
                out["entries"].append(entry)
            if result is not None:
                out["verified"] = result.ok and entries_ok
                out["verification"] = {
                    "ok": result.ok,
                    "problem": result.problem,
                    "first_bad_seq": result.first_bad_seq,
                    "message": result.message,
                    "records": result.count,
                }
            return out

        return cast("dict[str, Any]", self._call("get_timeline", run))


def _entry(
    seq: int, rec: Mapping[str, Any] | None, incident_id: str, bad_from: int | None
) -> dict[str, Any]:
    """One timeline entry as the API shows it; ``intact`` when the record is there,
    decrypts, names this incident and lies before any fault the verifier found."""
    if rec is None:
        return {"seq": seq, "intact": False, "problem": "missing from the audit trail"}
    found = rec.get("details")
    details: dict[str, Any] = found if isinstance(found, dict) else {}
    readable = "payload" not in rec or isinstance(found, dict)
    ours = details.get("incident_id") == incident_id
    before_fault = bad_from is None or seq < bad_from
    problem = None
    if not readable:
        problem = "the record does not decrypt (edited or forged)"
    elif not ours:
        problem = "the record is not about this incident"
    elif not before_fault:
        problem = "at or after the first fault the audit verifier found"
    return {
        "seq": seq,
        "timestamp": rec.get("timestamp"),
        "ts": rec.get("ts"),
        "event_type": rec.get("event_type"),
        "action": details.get("action"),
        "actor": rec.get("user_id"),
        "details": {k: v for k, v in details.items() if k not in ("incident_id", "action")},
        "intact": problem is None,
        "problem": problem,
    }
