"""``GET /audit`` and ``GET /audit/verify``: the audit trail over HTTP.

No authentication here on purpose: the main router includes this router
under ``/api/security`` behind the admin-key dependency. Reading the trail is
itself recorded (PCI DSS 10.2.1.3: access to audit logs), with the names of
the filters used but not their values.

With tenancy (issue 21) the routes serve one tenant's records when the request
runs for one: the platform admin sends ``X-Tenant`` (the tenancy layer scopes the
request), a tenant admin uses ``/api/security/tenants/{id}/audit`` (the tenant
router mounts these routes there, for its own tenant only). ``/audit/verify`` then
verifies the whole chain *and* that tenant's records (``audit/tenants.py``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from pynomaly_security.audit import AuditLogger, ComplianceStandard, SecurityEventType
from pynomaly_security.tenancy.context import current_tenant

__all__ = ["AuditPageOut", "AuditRecordOut", "AuditVerifyOut", "build_audit_router"]


class AuditRecordOut(BaseModel):
    """One decrypted entry; erased personal fields read ``[erased]``.

    An access row of an ``access_batch`` record has kind ``request``, the
    batch's ``seq`` and its ``batch_index`` within it."""

    model_config = ConfigDict(extra="allow")

    seq: int
    batch_index: int | None = Field(
        default=None, description="Position in its access batch (kind request)."
    )
    timestamp: str = Field(description="ISO 8601, UTC")
    kind: str = Field(description="security | audit | request")
    event_type: str
    level: str
    standards: list[str]
    controls: dict[str, list[str]] = Field(description="Controls evidenced, per standard.")
    request_id: str | None = None
    tenant: str | None = Field(default=None, description="The tenant it was recorded for.")
    tenant_seq: int | None = Field(default=None, description="Its number in the tenant's.")
    user_id: str | None = None
    source_ip: str | None = None
    message: str | None = None
    details: dict[str, Any] | None = None


class AuditPageOut(BaseModel):
    items: list[AuditRecordOut]
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page; null on the last.")


class AuditVerifyOut(BaseModel):
    ok: bool
    count: int
    message: str
    first_bad_seq: int | None = None
    problem: str | None = Field(
        default=None,
        description="edited | deleted | reordered | inserted | rewritten | truncated"
        " | forged_checkpoint",
    )
    checkpoints: int
    last_checkpoint_seq: int | None = None
    unsigned_tail: int
    pruned_through: int | None = None
    pinned_keys: bool
    tenant: str | None = None
    tenant_records: int | None = Field(
        default=None, description="The tenant's records, all present and in number."
    )


def _seconds(value: dt.datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:  # a naive time is read as UTC, never local time
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


def _running_tenant(request: Request) -> str | None:
    return current_tenant()


def build_audit_router(
    audit_logger: AuditLogger,
    *,
    tenant_of: Callable[[Request], str | None] = _running_tenant,
) -> APIRouter:
    """The audit router bound to one logger (include it behind admin auth).

    Args:
        tenant_of: the tenant whose records a request may read (None: all); by
            default the tenant the request runs for.
    """
    router = APIRouter(tags=["audit"])

    @router.get("/audit", response_model=AuditPageOut, summary="Query the audit trail")
    async def list_audit(
        request: Request,
        since: Annotated[dt.datetime | None, Query(description="ISO 8601 or Unix time")] = None,
        until: Annotated[dt.datetime | None, Query(description="exclusive")] = None,
        user_id: Annotated[str | None, Query(max_length=256)] = None,
        event_type: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z0-9_]+$")] = None,
        standard: ComplianceStandard | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    ) -> AuditPageOut:
        rows = await audit_logger.query(
            since=_seconds(since),
            until=_seconds(until),
            user_id=user_id,
            event_type=event_type,
            standard=standard,
            limit=limit + 1,
            offset=offset,
            tenant=tenant_of(request),
        )
        used = {"since": since, "until": until, "user_id": user_id, "event_type": event_type}
        await audit_logger.log_audit_event(
            "query",
            "audit_trail",
            event_type=SecurityEventType.DATA_ACCESS,
            details={"filters": sorted(k for k, v in used.items() if v is not None)},
        )
        more = len(rows) > limit
        return AuditPageOut(
            items=[AuditRecordOut.model_validate(r) for r in rows[:limit]],
            limit=limit,
            offset=offset,
            next_offset=offset + limit if more else None,
        )

    @router.get("/audit/verify", response_model=AuditVerifyOut, summary="Verify the chain")
    async def verify_audit(request: Request) -> AuditVerifyOut:
        result = await audit_logger.verify(tenant=tenant_of(request))
        return AuditVerifyOut.model_validate(result.to_dict())

    return router
