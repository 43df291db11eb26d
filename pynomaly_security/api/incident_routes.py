"""``/incidents``: list, open, read, change and show the timeline of incidents.

Included by the main router under ``/api/security`` behind the admin key (no check
here). Closing an incident or calling it a false positive ends its response, so
it also needs the step-up rule of sensitive changes (``api/reauth.py``): a
session that re-authenticated recently; its user is the actor the timeline
names (``admin`` for changes made with the key alone).

Errors: an unknown id is 404; a status change the lifecycle does not allow is 409
naming both states; another writer winning every retry is 409; invalid input 422
with the reason; a state or audit store that fails 503.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from pynomaly_security.api.reauth import UNAVAILABLE, reauthenticated_user
from pynomaly_security.exceptions import StorageError
from pynomaly_security.incidents.automation import IncidentResponseAutomation
from pynomaly_security.incidents.model import (
    MAX_NAME,
    MAX_OBSERVABLES,
    MAX_TEXT,
    IncidentSeverity,
    IncidentStatus,
    InvalidTransition,
)
from pynomaly_security.incidents.store import IncidentConflict, IncidentNotFound

if TYPE_CHECKING:
    from pynomaly_security.tenancy.parts import Tenancy

__all__ = ["IncidentCreate", "IncidentOut", "IncidentPatch", "build_incident_router"]

_ID = re.compile(r"inc-[0-9a-f]{1,32}(-[0-9]{1,12})?")
_SENSITIVE = frozenset({IncidentStatus.CLOSED, IncidentStatus.FALSE_POSITIVE})
_ADMIN = "admin"
IncidentId = Annotated[str, Path(max_length=64)]


class IncidentCreate(BaseModel):
    title: str = Field(min_length=1, max_length=MAX_TEXT)
    description: str = Field("", max_length=MAX_TEXT)
    severity: IncidentSeverity = IncidentSeverity.HIGH
    affected_assets: list[Annotated[str, Field(max_length=MAX_NAME)]] = Field(
        default_factory=list, max_length=MAX_OBSERVABLES
    )
    dedup_key: str | None = Field(
        None,
        max_length=MAX_NAME,
        description="A repeating pattern's key: while its incident is open, it is updated.",
    )
    alert_ids: list[Annotated[str, Field(max_length=MAX_NAME)]] = Field(
        default_factory=list, max_length=MAX_OBSERVABLES
    )
    observables: dict[str, list[Annotated[str, Field(max_length=MAX_NAME)]]] = Field(
        default_factory=dict,
        description="ips, users, sessions (ids, never tokens), routes",
        max_length=4,
    )


class IncidentPatch(BaseModel):
    status: IncidentStatus | None = Field(
        None, description="closed and false_positive need a re-authenticated session."
    )
    reason: str | None = Field(None, max_length=MAX_TEXT, description="Why (with status).")
    assignee: str | None = Field(None, max_length=MAX_NAME, description='"" unassigns.')
    note: str | None = Field(None, min_length=1, max_length=MAX_TEXT)
    alert_id: str | None = Field(
        None, min_length=1, max_length=MAX_NAME, description="A monitor alert to link."
    )


class NoteOut(BaseModel):
    at: float
    author: str
    text: str


class MetricsOut(BaseModel):
    time_to_detect: float | None
    time_to_contain: float | None
    time_to_resolve: float | None


class IncidentOut(BaseModel):
    incident_id: str
    title: str
    description: str
    severity: IncidentSeverity
    status: IncidentStatus
    created_at: float
    updated_at: float
    first_seen: float
    last_seen: float
    occurrences: int
    dedup_key: str | None
    dedup_gen: int
    alert_ids: list[str]
    observables: dict[str, list[str]]
    affected_assets: list[str]
    assignee: str | None
    notes: list[NoteOut]
    status_times: dict[str, float]
    timeline: list[int] = Field(description="Audit sequence numbers of its timeline.")
    timeline_dropped: int
    source: str
    created_by: str | None
    intel_lists: list[str] = Field(
        default_factory=list, description="Imported reputation lists its addresses are on."
    )
    tenant: str | None = Field(
        None, description="The tenant it belongs to (tenancy on); null: the platform's."
    )
    metrics: MetricsOut


class IncidentsOut(BaseModel):
    count: int
    offset: int
    incidents: list[IncidentOut]


class TimelineEntryOut(BaseModel):
    seq: int
    timestamp: str | None = None
    ts: float | None = None
    event_type: str | None = None
    action: str | None = None
    actor: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    intact: bool
    problem: str | None = None


class TimelineOut(BaseModel):
    incident_id: str
    entries: list[TimelineEntryOut]
    dropped: int = Field(description="Entries beyond the incident's bound (still in the trail).")
    verified: bool | None = Field(
        description="The trail passes the audit verifier and every entry is intact "
        "(None when not verified)."
    )
    verification: dict[str, Any] | None


def _check_id(incident_id: str) -> None:
    if not _ID.fullmatch(incident_id):
        raise HTTPException(404, "incident not found")


def _created(incident: dict[str, Any]) -> float:
    return float(incident["created_at"])


async def _answer(call: Callable[[], Any]) -> Any:
    """The awaited result of ``call()`` (an automation method: it validates when called,
    runs when awaited), its failures as the module says."""
    try:
        return await call()
    except IncidentNotFound:
        raise HTTPException(404, "incident not found") from None
    except InvalidTransition as exc:
        raise HTTPException(
            409, {"detail": str(exc), "from": exc.current.value, "to": exc.wanted.value}
        ) from None
    except IncidentConflict as exc:
        raise HTTPException(409, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


def build_incident_router(
    incidents: IncidentResponseAutomation, tenancy: Tenancy | None = None
) -> APIRouter:
    """The incident routes on one stack's automation (include behind admin auth); with
    ``tenancy``, the platform admin's list without ``X-Tenant`` spans every tenant."""
    router = APIRouter(tags=["security"])

    @router.get("/incidents", response_model=IncidentsOut)
    async def list_incidents(
        status: IncidentStatus | None = None,
        severity: IncidentSeverity | None = None,
        limit: int = Query(100, ge=1, le=1000),
        offset: int = Query(0, ge=0, le=10_000),
    ) -> Any:
        async def read(start: int, count: int) -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = await _answer(
                lambda: incidents.list_incidents(
                    status=status, severity=severity, limit=count, offset=start
                )
            )
            return found

        async def newest() -> list[dict[str, Any]]:  # each scope's, merged, then the page
            return await read(0, offset + limit)

        try:
            if tenancy is None:
                found = await read(offset, limit)
            else:
                merged = await tenancy.visible(newest, newest=_created, limit=offset + limit)
                found = merged[offset:]
        except StorageError:
            return UNAVAILABLE
        return {"count": len(found), "offset": offset, "incidents": found}

    @router.post("/incidents", response_model=IncidentOut, status_code=201)
    async def create_incident(body: IncidentCreate) -> Any:
        try:
            incident_id = await _answer(
                lambda: incidents.create_incident(
                    body.title,
                    body.description,
                    body.severity,
                    body.affected_assets,
                    dedup_key=body.dedup_key,
                    alert_ids=body.alert_ids,
                    observables=body.observables,
                    actor=_ADMIN,
                )
            )
            found = await _answer(lambda: incidents.get_incident(incident_id))
        except StorageError:
            return UNAVAILABLE
        if found is None:  # evicted in between: as good as unknown
            raise HTTPException(404, "incident not found")
        return found

    @router.get("/incidents/{incident_id}", response_model=IncidentOut)
    async def get_incident(incident_id: IncidentId) -> Any:
        _check_id(incident_id)
        try:
            found = await _answer(lambda: incidents.get_incident(incident_id))
        except StorageError:
            return UNAVAILABLE
        if found is None:
            raise HTTPException(404, "incident not found")
        return found

    @router.patch("/incidents/{incident_id}", response_model=IncidentOut)
    async def patch_incident(
        request: Request, incident_id: IncidentId, body: Annotated[IncidentPatch, Body()]
    ) -> Any:
        _check_id(incident_id)
        given = body.model_fields_set - {"reason"}
        if not given:
            return JSONResponse(
                {"detail": "nothing to change: status, assignee, note or alert_id"}, 400
            )
        actor = _ADMIN
        if body.status in _SENSITIVE:
            user = await reauthenticated_user(
                request, "incident_close", f"setting an incident to {body.status.value}"
            )
            if not isinstance(user, str):
                return user
            actor = user
        note, status, alert_id = body.note, body.status, body.alert_id
        try:
            # Existence first: a change to an unknown id is 404 whatever the body says.
            found = await _answer(lambda: incidents.get_incident(incident_id))
            if found is None:
                raise HTTPException(404, "incident not found")
            # The status first: a refused transition changes nothing else.
            if status is not None:
                found = await _answer(
                    lambda: incidents.update_status(
                        incident_id, status, actor=actor, reason=body.reason
                    )
                )
            if "assignee" in given:
                found = await _answer(
                    lambda: incidents.assign(incident_id, body.assignee, actor=actor)
                )
            if alert_id is not None:
                found = await _answer(
                    lambda: incidents.link_alert(incident_id, alert_id, actor=actor)
                )
            if note is not None:
                found = await _answer(lambda: incidents.add_note(incident_id, note, actor=actor))
        except StorageError:
            return UNAVAILABLE
        return found

    @router.get("/incidents/{incident_id}/timeline", response_model=TimelineOut)
    async def incident_timeline(
        incident_id: IncidentId,
        verify: bool = Query(True, description="Run the audit verifier over the trail."),
    ) -> Any:
        _check_id(incident_id)
        try:
            return await _answer(lambda: incidents.get_timeline(incident_id, verify=verify))
        except StorageError:
            return UNAVAILABLE

    return router
