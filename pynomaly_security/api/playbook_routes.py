"""``/playbooks``, ``/incidents/{id}/playbooks/{name}`` (and ``.../revert``),
``/approvals/{id}/approve|reject``.

Included by the main router under ``/api/security`` behind the admin key (no check
here). Running a playbook (other than a dry run), reverting one and deciding an
approval change who the app serves, so they also need the step-up rule of sensitive
changes (``api/reauth.py``): a session that re-authenticated recently, whose user is
the actor the timeline names (by user name, as incidents and approvers name users),
never a target (their name, their address). Every
step run is on the incident's timeline, so on the audit trail.

Errors: an unknown incident, playbook or approval is 404; bad ``params`` 422; an
approval already decided, expired (``expired``) or for someone else 409/403 with
its ``code``; a state store that fails 503.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from pynomaly_security._context import get_request_context
from pynomaly_security.api.reauth import UNAVAILABLE, reauthenticated_user
from pynomaly_security.auth.deps import APP_STATE_KEY
from pynomaly_security.exceptions import StorageError
from pynomaly_security.incidents.automation import IncidentResponseAutomation
from pynomaly_security.incidents.runner import ApprovalRefused, PlaybookNotFound
from pynomaly_security.incidents.store import IncidentNotFound

__all__ = ["PlaybookRevertOut", "PlaybookRunOut", "build_playbook_router"]

_INCIDENT = re.compile(r"inc-[0-9a-f]{1,32}(-[0-9]{1,12})?")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_APPROVAL = re.compile(r"apr-[0-9a-f]{24}")
Ident = Annotated[str, Path(max_length=64)]


class StepOut(BaseModel):
    step: str
    action: str
    status: str = Field(
        description="done, already_done, in_progress, planned, skipped, refused, failed, "
        "awaiting_approval, pending"
    )
    params: dict[str, Any] = Field(default_factory=dict)
    plan: list[dict[str, Any]] = Field(default_factory=list, description="What would change.")
    results: list[dict[str, Any]] = Field(default_factory=list)
    verified: bool | None = None
    code: str | None = None
    detail: str | None = None
    approval_id: str | None = None
    approvers: list[str] | None = None


class PlaybookRunOut(BaseModel):
    incident_id: str
    playbook: str
    version: int
    dry_run: bool
    status: str = Field(description="completed, failed, awaiting_approval, dry_run")
    steps: list[StepOut]


class PlaybookRunIn(BaseModel):
    params: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        max_length=20,
        description="Per step id, parameters over the playbook's (e.g. a ttl).",
    )


class PlaybookStepOut(BaseModel):
    id: str
    action: str
    params: dict[str, Any]
    approval: dict[str, Any] | None
    description: str


class PlaybookOut(BaseModel):
    name: str
    version: int
    description: str
    max_targets: int
    max_actions_per_minute: int
    steps: list[PlaybookStepOut]


class RevertedStepOut(BaseModel):
    step: str
    reverted: list[dict[str, Any]] = Field(
        description="Per decision the step made: its id and whether it was still in force."
    )


class PlaybookRevertOut(BaseModel):
    incident_id: str
    playbook: str
    steps: list[RevertedStepOut] = Field(
        description="The steps whose decisions were reverted (sessions ended and messages "
        "sent stay so)."
    )


class ApprovalOut(BaseModel):
    approval_id: str
    status: str
    run: PlaybookRunOut | None


async def _signed_in(request: Request, action: str, what: str) -> str | Response:
    """The re-authenticated user's *name* (or the refusal): playbooks target users by the
    name they sign in with, and approvers are named so, so the acting admin is too."""
    user_id = await reauthenticated_user(request, action, what)
    if not isinstance(user_id, str):
        return user_id
    authenticator = getattr(request.app.state, APP_STATE_KEY, None)
    record = await authenticator.users.get(user_id) if authenticator is not None else None
    return record.username if record is not None else user_id


def build_playbook_router(incidents: IncidentResponseAutomation) -> APIRouter:
    """The playbook and approval routes (include behind admin auth)."""
    router = APIRouter(tags=["security"])

    @router.get("/playbooks", response_model=list[PlaybookOut])
    async def list_playbooks() -> Any:
        return incidents.list_playbooks()

    @router.post("/incidents/{incident_id}/playbooks/{name}", response_model=PlaybookRunOut)
    async def run_playbook(
        request: Request,
        incident_id: Ident,
        name: Ident,
        dry_run: bool = Query(False, description="Plan only: what would change."),
        body: Annotated[PlaybookRunIn | None, Body()] = None,
    ) -> Any:
        if not _INCIDENT.fullmatch(incident_id):
            raise HTTPException(404, "incident not found")
        if not _NAME.fullmatch(name) or name not in incidents.playbooks:
            raise HTTPException(404, "playbook not found")
        actor = "admin"
        if not dry_run:
            user = await _signed_in(request, "playbook_run", "running a playbook")
            if not isinstance(user, str):
                return user
            actor = user
        ctx = get_request_context(request.scope)
        try:
            return await incidents.execute_containment_playbook(  # type: ignore[misc]
                incident_id,
                name,
                dry_run=dry_run,
                actor=actor,
                actor_ip=ctx.client_ip if ctx is not None else None,
                params=body.params if body is not None else None,
            )
        except IncidentNotFound:
            raise HTTPException(404, "incident not found") from None
        except PlaybookNotFound:
            raise HTTPException(404, "playbook not found") from None
        except StorageError:
            return UNAVAILABLE
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None

    @router.post(
        "/incidents/{incident_id}/playbooks/{name}/revert", response_model=PlaybookRevertOut
    )
    async def revert_playbook(request: Request, incident_id: Ident, name: Ident) -> Any:
        """Revert the decisions the playbook's done steps made for the incident (each
        revert audited by the decisions, one ``playbook_revert`` timeline entry per
        step); its steps can then run again."""
        if not _INCIDENT.fullmatch(incident_id):
            raise HTTPException(404, "incident not found")
        if not _NAME.fullmatch(name) or name not in incidents.playbooks:
            raise HTTPException(404, "playbook not found")
        user = await _signed_in(request, "playbook_revert", "reverting a playbook")
        if not isinstance(user, str):
            return user
        ctx = get_request_context(request.scope)
        try:
            return await incidents.revert_containment_playbook(  # type: ignore[misc]
                incident_id,
                name,
                actor=user,
                actor_ip=ctx.client_ip if ctx is not None else None,
            )
        except IncidentNotFound:
            raise HTTPException(404, "incident not found") from None
        except PlaybookNotFound:
            raise HTTPException(404, "playbook not found") from None
        except StorageError:
            return UNAVAILABLE

    async def decide(request: Request, approval_id: str, approve: bool) -> Any:
        if not _APPROVAL.fullmatch(approval_id):
            raise HTTPException(404, "approval not found")
        what = "approving a playbook step" if approve else "rejecting a playbook step"
        user = await _signed_in(request, "playbook_approval", what)
        if not isinstance(user, str):
            return user
        ctx = get_request_context(request.scope)
        try:
            return await incidents.decide_approval(  # type: ignore[misc]
                approval_id,
                approve=approve,
                actor=user,
                actor_ip=ctx.client_ip if ctx is not None else None,
            )
        except ApprovalRefused as exc:
            status = {"not_found": 404, "not_an_approver": 403}.get(exc.code, 409)
            raise HTTPException(status, {"code": exc.code, "detail": str(exc)}) from None
        except StorageError:
            return UNAVAILABLE

    @router.post("/approvals/{approval_id}/approve", response_model=ApprovalOut)
    async def approve(request: Request, approval_id: Ident) -> Any:
        """Approve a waiting step (an approver named by it, before it expires, once):
        the playbook runs on from that step, with exactly the approved parameters."""
        return await decide(request, approval_id, True)

    @router.post("/approvals/{approval_id}/reject", response_model=ApprovalOut)
    async def reject(request: Request, approval_id: Ident) -> Any:
        return await decide(request, approval_id, False)

    return router
