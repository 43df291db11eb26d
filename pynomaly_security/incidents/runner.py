"""Running a playbook against an incident: guardrails, idempotency, approvals, timeline.

Per step, in order:

1. **Targets** from the incident's observables (``actions.targets``); more than the
   playbook's ``max_targets`` refuses the step whole (``max_targets``).
2. **Plan**: what would change; an allow-listed value or the acting admin (their user
   id, their address) is marked refused and never touched. A dry run stops here.
3. **Approval** (a step with ``approval``): the run pauses and an approval is
   requested, bound to a digest of the incident, playbook, step, parameters and
   targets; approving it (an approver named by the step, before its time-to-live,
   once) runs the playbook again with that digest, and the step runs only if its
   digest is still the same.
4. **Idempotency**: the same digest runs once (an insert-if-absent key in the
   store, across workers); running it again answers ``already_done`` with the first
   run's result, so running a step twice makes one decision.
5. **Rate**: the changes all runs of a playbook make count per minute in the store;
   beyond ``max_actions_per_minute`` the step is refused (``rate_limited``).
6. **Execute** and **verify**, then one ``playbook_step`` timeline entry (an audit
   record: step, status, counts and decision ids, never a target's value).

A run that made a change moves a ``new`` or ``triaged`` incident to ``contained``.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pynomaly_security._log import get_logger
from pynomaly_security.incidents import actions
from pynomaly_security.incidents.model import Incident, IncidentStatus, check_transition
from pynomaly_security.incidents.notify import Notifier
from pynomaly_security.incidents.playbooks import Playbook, PlaybookLibrary, PlaybookStep
from pynomaly_security.incidents.store import IncidentNotFound

if TYPE_CHECKING:
    from pynomaly_security.incidents.automation import IncidentResponseAutomation

__all__ = ["ApprovalRefused", "PlaybookNotFound", "PlaybookRunner"]

log = get_logger(__name__)

_DONE = "pb:done:"
_RATE = "pb:rate:"
_DONE_TTL = 30 * 86_400.0
"""How long a step's digest is remembered: the longest a decision lasts by default."""
_RUNNING_TTL = 120.0
MAX_APPROVALS = 1000


class PlaybookNotFound(LookupError):
    """No playbook has this name (the API answers 404)."""


class ApprovalRefused(ValueError):
    """An approval that may not be given: unknown, used, expired, not an approver."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class PlaybookRunner:
    """Runs :class:`Playbook`\\ s for one :class:`IncidentResponseAutomation`.

    Args:
        automation: the incidents (store, timeline, clock).
        library: the playbooks by name.
        notifier: where messages go.
    """

    def __init__(
        self,
        automation: IncidentResponseAutomation,
        library: PlaybookLibrary,
        notifier: Notifier,
    ) -> None:
        self.automation = automation
        self.library = library
        self.notifier = notifier
        self._approvals = automation.state.documents(
            "approvals", indexed=("incident_id", "status"), keep=MAX_APPROVALS
        )

    @property
    def _kv(self) -> Any:
        # Marks in the shared state when the counters are per process (marks.py).
        marks = self.automation.playbook_marks
        return marks if marks is not None else self.automation.counters

    def _verify_args(self) -> dict[str, Any]:
        """Where ``verify`` sends its synthetic request (``actions.verify``): the app,
        ``PLAYBOOK_VERIFY_PATH`` and a Host the app's trusted hosts accept."""
        settings = self.automation.settings
        hosts = [h for h in settings.allowed_hosts if "*" not in h]
        return {
            "app": self.automation.app,
            "verify_path": settings.playbook_verify_path,
            "verify_host": hosts[0] if hosts else "localhost",
        }

    # -- running -----------------------------------------------------------------------
    async def run(
        self,
        incident_id: str,
        name: str,
        *,
        dry_run: bool,
        actor: str,
        actor_ip: str | None = None,
        params: Mapping[str, Mapping[str, Any]] | None = None,
        approved: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        playbook = self.library.get(name)
        if playbook is None:
            raise PlaybookNotFound(name)
        steps = _with_params(playbook, params or {})
        incident = await self.automation.store.get(incident_id)
        if incident is None:
            raise IncidentNotFound(incident_id)
        results: list[dict[str, Any]] = []
        paused = False
        for step in steps:
            if paused:
                results.append({"step": step.id, "action": step.action, "status": "pending"})
                continue
            ctx = actions.StepContext(
                incident,
                playbook,
                step,
                actor,
                actor_ip,
                self.automation.decisions,
                self.automation.session_revoker,
                self.notifier,
                **self._verify_args(),
            )
            result = await self._step(ctx, dry_run, (approved or {}).get(step.id))
            results.append(result)
            await self._timeline(incident, playbook, result, dry_run, actor)
            paused = result["status"] == "awaiting_approval"
        changed = any(
            r["status"] == "done" and any(c.get("done") for c in r.get("results", []))
            for r in results
        )
        if changed:
            await self._contained(incident_id, playbook, actor)
        statuses = {r["status"] for r in results}
        overall = (
            "dry_run"
            if dry_run
            else "awaiting_approval"
            if paused
            else "failed"
            if "failed" in statuses
            else "completed"
        )
        return {
            "incident_id": incident_id,
            "playbook": playbook.name,
            "version": playbook.version,
            "dry_run": dry_run,
            "status": overall,
            "steps": results,
        }

    async def _step(
        self, ctx: actions.StepContext, dry_run: bool, approved: str | None
    ) -> dict[str, Any]:
        step = ctx.step
        out: dict[str, Any] = {"step": step.id, "action": step.action, "params": step.params}
        found = actions.targets(step, ctx.incident)
        if len(found) > ctx.playbook.max_targets:
            return {
                **out,
                "status": "refused",
                "code": "max_targets",
                "detail": f"{len(found)} targets, more than the playbook's "
                f"max_targets ({ctx.playbook.max_targets})",
            }
        try:
            planned = actions.plan(ctx, found)
        except actions.StepSkipped as exc:
            return {**out, "status": "skipped", "detail": str(exc)}
        out["plan"] = planned
        if dry_run:
            return {**out, "status": "planned"}
        key = _digest(
            ctx.incident.incident_id, ctx.playbook.name, step.id, step.action, step.params, found
        )
        if step.approval is not None and approved != key:
            approval = await self._request_approval(ctx, key, stale=approved is not None)
            return {**out, "status": "awaiting_approval", **approval}
        # "running" expires soon: a worker that dies mid-step does not block it for good.
        if not await self._kv.add(_DONE + key, "running", _RUNNING_TTL):
            earlier = await self._kv.get(_DONE + key)
            if earlier is None or earlier == "running":
                return {**out, "status": "in_progress", "detail": "another run is executing it"}
            done = json.loads(earlier)
            return {**out, "status": "already_done", "results": done.get("results", [])}
        changes = sum(1 for p in planned if not p.get("refused"))
        minute = math.floor(self.automation.clock() / 60)
        used = await self._kv.incr(f"{_RATE}{ctx.playbook.name}:{minute}", 120, changes)
        if used > ctx.playbook.max_actions_per_minute:
            await self._kv.delete(_DONE + key)
            return {
                **out,
                "status": "refused",
                "code": "rate_limited",
                "detail": f"more than {ctx.playbook.max_actions_per_minute} actions a minute "
                "(max_actions_per_minute)",
            }
        try:
            results = await actions.execute(ctx, planned)
        except Exception as exc:  # a webhook down, the store failing: said, not raised
            await self._kv.delete(_DONE + key)
            log.warning("playbook_step_failed", step=step.id, error=type(exc).__name__)
            return {**out, "status": "failed", "detail": type(exc).__name__}
        verified = await actions.verify(ctx, results)
        await self._kv.put(_DONE + key, json.dumps({"results": results}), _DONE_TTL)
        return {**out, "status": "done", "results": results, "verified": verified}

    async def _timeline(
        self,
        incident: Incident,
        playbook: Playbook,
        result: Mapping[str, Any],
        dry_run: bool,
        actor: str,
    ) -> None:
        """The step's audit record: what, how it went, counts and ids; no values."""
        outcomes = result.get("results") or result.get("plan") or []
        details: dict[str, Any] = {
            "playbook": playbook.name,
            "version": playbook.version,
            "step": result["step"],
            "step_action": result["action"],
            "status": result["status"],
            "dry_run": dry_run,
            "targets": len([o for o in outcomes if "target" in o]),
            "refused": sorted({str(o["refused"]) for o in outcomes if o.get("refused")}),
            "decision_ids": [o["decision_id"] for o in outcomes if o.get("decision_id")],
        }
        for name in ("code", "detail", "verified", "approval_id"):
            if result.get(name) is not None:
                details[name] = result[name]
        await self.automation._record(incident, "playbook_step", actor, details)

    async def _contained(self, incident_id: str, playbook: Playbook, actor: str) -> None:
        """Mark the incident contained when the lifecycle allows it from where it is."""
        current = await self.automation.store.get(incident_id)
        if current is None or current.status not in (IncidentStatus.NEW, IncidentStatus.TRIAGED):
            return
        try:
            check_transition(incident_id, current.status, IncidentStatus.CONTAINED)
        except ValueError:
            return
        await self.automation.update_status(  # type: ignore[misc]  # awaited: see _dual
            incident_id, IncidentStatus.CONTAINED, actor=actor, reason=f"playbook {playbook.name}"
        )

    # -- approvals ---------------------------------------------------------------------
    async def _request_approval(
        self, ctx: actions.StepContext, key: str, *, stale: bool
    ) -> dict[str, Any]:
        spec = ctx.step.approval
        assert spec is not None
        now = self.automation.clock()
        approval_id = "apr-" + secrets.token_hex(12)
        await self._approvals.put(
            approval_id,
            {
                "approval_id": approval_id,
                "incident_id": ctx.incident.incident_id,
                "playbook": ctx.playbook.name,
                "version": ctx.playbook.version,
                "step": ctx.step.id,
                "digest": key,
                "approvers": list(spec.approvers),
                "requested_by": ctx.actor,
                "created_at": now,
                "expires_at": now + spec.ttl,
                "status": "pending",
            },
        )
        detail = "waiting for one of the step's approvers"
        if stale:
            detail = "the approval was for other parameters or targets: a new one is needed"
        return {"approval_id": approval_id, "approvers": list(spec.approvers), "detail": detail}

    async def get_approval(self, approval_id: str) -> dict[str, Any] | None:
        return await self._approvals.get(approval_id)

    async def decide(
        self, approval_id: str, *, approve: bool, actor: str, actor_ip: str | None = None
    ) -> dict[str, Any]:
        """Approve (and run the playbook from that step) or reject an approval.

        Raises:
            ApprovalRefused: unknown (``not_found``), already decided (``used``),
                expired (``expired``), or ``actor`` not an approver (``not_an_approver``).
        """
        found = await self._approvals.get(approval_id)
        if found is None:
            raise ApprovalRefused("not_found", "approval not found")
        if found["status"] != "pending":
            raise ApprovalRefused("used", f"the approval is already {found['status']}")
        if self.automation.clock() >= float(found["expires_at"]):
            await self._approvals.update(
                approval_id, {"status": "expired"}, only_if={"status": "pending"}
            )
            raise ApprovalRefused("expired", "the approval expired: run the playbook again")
        if actor not in found["approvers"]:
            raise ApprovalRefused("not_an_approver", f"{actor!r} may not decide this approval")
        token = secrets.token_hex(8)
        status = "approved" if approve else "rejected"
        after = await self._approvals.update(
            approval_id,
            {
                "status": status,
                "decided_by": actor,
                "decided_at": self.automation.clock(),
                "token": token,
            },
            only_if={"status": "pending"},
        )
        if after is None or after.get("token") != token:  # single use: another got it first
            raise ApprovalRefused("used", "the approval was decided by someone else")
        incident = await self.automation.store.get(found["incident_id"])
        if incident is not None:
            await self.automation._record(
                incident,
                "approval",
                actor,
                {"approval_id": approval_id, "step": found["step"], "decision": status},
            )
        out: dict[str, Any] = {"approval_id": approval_id, "status": status, "run": None}
        if approve:
            out["run"] = await self.run(
                found["incident_id"],
                found["playbook"],
                dry_run=False,
                actor=actor,
                actor_ip=actor_ip,
                approved={found["step"]: found["digest"]},
            )
        return out

    # -- reverting -----------------------------------------------------------------------
    async def revert(
        self, incident_id: str, name: str, *, actor: str, actor_ip: str | None = None
    ) -> dict[str, Any]:
        """Revert the decisions every done step of the playbook made for the incident."""
        playbook = self.library.get(name)
        if playbook is None:
            raise PlaybookNotFound(name)
        incident = await self.automation.store.get(incident_id)
        if incident is None:
            raise IncidentNotFound(incident_id)
        reverted: list[dict[str, Any]] = []
        for step in playbook.steps:
            ctx = actions.StepContext(
                incident, playbook, step, actor, actor_ip, self.automation.decisions,
                self.automation.session_revoker, self.notifier,
            )  # fmt: skip
            found = actions.targets(step, incident)
            key = _digest(incident_id, playbook.name, step.id, step.action, step.params, found)
            raw = await self._kv.get(_DONE + key)
            if not raw or raw == "running":
                continue
            undone = await actions.revert(ctx, json.loads(raw).get("results", []))
            await self._kv.delete(_DONE + key)
            if undone:
                reverted.append({"step": step.id, "reverted": undone})
                await self.automation._record(
                    incident,
                    "playbook_revert",
                    actor,
                    {
                        "playbook": name,
                        "step": step.id,
                        "decision_ids": [u["decision_id"] for u in undone],
                    },
                )
        return {"incident_id": incident_id, "playbook": name, "steps": reverted}


def _with_params(playbook: Playbook, params: Mapping[str, Mapping[str, Any]]) -> list[PlaybookStep]:
    """The steps with the caller's parameters merged (``{step id: {name: value}}``),
    validated as the playbook's own are."""
    unknown = set(params) - {s.id for s in playbook.steps}
    if unknown:
        raise ValueError(f"params for unknown steps {sorted(unknown)} of {playbook.name}")
    out = []
    for step in playbook.steps:
        given = params.get(step.id)
        if given:
            data = step.model_dump()
            data["params"] = {**step.params, **given}
            step = PlaybookStep.model_validate(data)
        out.append(step)
    return out
