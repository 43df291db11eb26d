"""``/decisions``: list, make and revert the decisions the middleware enforces;
``/intel``: the imported reputation lists.

Included by the main router under ``/api/security`` behind the admin key (no check
here). Making or reverting a decision changes who the app serves, so it also needs
the step-up rule of sensitive changes (``api/reauth.py``): a session that
re-authenticated recently; its user is the actor the audit trail names, and a
decision may not target that user nor the address the request came from.

Errors: an unknown id is 404; invalid input 422 with the reason; a decision the
rules refuse (allow-listed, the acting admin, a grace period, ``DECISION_MAX``)
409 with its ``code``; a state store that fails 503.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field

from pynomaly_security._context import get_request_context
from pynomaly_security.api.reauth import UNAVAILABLE, reauthenticated_user
from pynomaly_security.decisions.model import (
    MAX_REASON,
    MAX_VALUE,
    Decision,
    DecisionAction,
    DecisionScope,
    is_decision_id,
)
from pynomaly_security.decisions.service import DecisionService
from pynomaly_security.decisions.store import DecisionRefused
from pynomaly_security.exceptions import StorageError

__all__ = ["DecisionCreate", "DecisionOut", "build_decision_router"]

DecisionId = Annotated[str, Path(max_length=64)]


class DecisionCreate(BaseModel):
    scope: DecisionScope
    value: str = Field(
        min_length=1,
        max_length=MAX_VALUE,
        description="An address, a CIDR, a user id, a session id, the SHA-256 hex of an "
        "API key, a path, a tenant id.",
    )
    action: DecisionAction
    reason: str = Field("", max_length=MAX_REASON)
    ttl: float | None = Field(
        None, gt=0, description="Seconds it lasts (default DECISION_DEFAULT_TTL)."
    )


class DecisionOut(BaseModel):
    decision_id: str
    scope: DecisionScope
    value: str
    action: DecisionAction
    origin: str
    reason: str
    created_at: float
    expires_at: float
    repeats: int
    actor: str
    tenant: str | None = Field(
        None, description="The tenant it applies to (tenancy on); null: every tenant."
    )


class IntelListOut(BaseModel):
    name: str
    action: str = Field(description="ban, require_mfa, or flag (alerts name it, nothing enforced)")
    created_at: float
    expires_at: float
    entries: int
    ranges: int = Field(description="Ranges once overlapping and adjacent entries merged.")
    origin: str


class DecisionsOut(BaseModel):
    count: int
    offset: int
    decisions: list[DecisionOut]


def _out(decision: Decision) -> DecisionOut:
    return DecisionOut(**decision.to_dict())


def build_decision_router(decisions: DecisionService) -> APIRouter:
    """The decision routes on one stack's decisions (include behind admin auth)."""
    router = APIRouter(tags=["security"])

    @router.get("/decisions", response_model=DecisionsOut)
    async def list_decisions(
        scope: DecisionScope | None = None,
        value: str | None = Query(None, min_length=1, max_length=MAX_VALUE),
        limit: int = Query(100, ge=1, le=1000),
        offset: int = Query(0, ge=0, le=100_000),
    ) -> Any:
        try:
            found = await decisions.store.find(scope=scope, value=value, limit=limit, offset=offset)
        except StorageError:
            return UNAVAILABLE
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return DecisionsOut(count=len(found), offset=offset, decisions=[_out(d) for d in found])

    @router.get("/intel", response_model=list[IntelListOut])
    async def list_intel() -> Any:
        """The imported reputation lists (``python -m pynomaly_security intel import``)."""
        try:
            return await decisions.intel.summaries()
        except StorageError:
            return UNAVAILABLE

    @router.get("/decisions/{decision_id}", response_model=DecisionOut)
    async def get_decision(decision_id: DecisionId) -> Any:
        if not is_decision_id(decision_id):
            raise HTTPException(404, "decision not found")
        try:
            found = await decisions.store.get(decision_id)
        except StorageError:
            return UNAVAILABLE
        if found is None or not found.live(decisions.clock()):
            raise HTTPException(404, "decision not found")
        return _out(found)

    @router.post("/decisions", response_model=DecisionOut, status_code=201)
    async def create_decision(request: Request, body: DecisionCreate) -> Any:
        actor = await reauthenticated_user(request, "decision_create", "making a decision")
        if not isinstance(actor, str):
            return actor
        ctx = get_request_context(request.scope)
        try:
            made = await decisions.add(
                body.scope,
                body.value,
                body.action,
                origin="manual",
                reason=body.reason,
                ttl=body.ttl,
                actor=actor,
                actor_ip=ctx.client_ip if ctx is not None else None,
            )
        except StorageError:
            return UNAVAILABLE
        except DecisionRefused as exc:
            raise HTTPException(409, {"code": exc.code, "detail": str(exc)}) from None
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return _out(made)

    @router.delete("/decisions/{decision_id}", response_model=DecisionOut)
    async def revert_decision(request: Request, decision_id: DecisionId) -> Any:
        if not is_decision_id(decision_id):
            raise HTTPException(404, "decision not found")
        actor = await reauthenticated_user(request, "decision_revert", "reverting a decision")
        if not isinstance(actor, str):
            return actor
        ctx = get_request_context(request.scope)
        try:
            reverted = await decisions.revert(
                decision_id, actor=actor, actor_ip=ctx.client_ip if ctx is not None else None
            )
        except StorageError:
            return UNAVAILABLE
        if reverted is None:
            raise HTTPException(404, "decision not found")
        return _out(reverted)

    return router
