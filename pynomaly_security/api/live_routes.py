"""``GET`` and ``PATCH /settings/live``: the live settings over HTTP.

No admin-key check here on purpose: the main router includes this router under
``/api/security`` behind the admin-key dependency. A change is sensitive (it can
switch blocking off on every worker), so besides the admin key it needs the
project's step-up rule for sensitive changes: a signed-in session (its access
token as ``Authorization: Bearer``, the admin key then as ``X-API-Key``) that
re-authenticated (``POST /reauth``) within ``REAUTH_MAX_AGE`` seconds, exactly as
a credential change does. The session's user is who the audit trail names.

Optimistic concurrency: ``GET`` answers the version as a strong ``ETag``; a
``PATCH`` (a JSON merge patch of live fields, RFC 7396: ``null`` drops an
override) must send it back as ``If-Match`` (428 without it) and answers 409 when
another change was made since.
"""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Body, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from pynomaly_security._context import RequestContext, get_request_context
from pynomaly_security.api.reauth import UNAVAILABLE, reauthenticated_user
from pynomaly_security.exceptions import StorageError
from pynomaly_security.live import (
    LIVE_FIELDS,
    InvalidLiveValue,
    LiveSettings,
    LiveVersion,
    NotLiveError,
    VersionConflict,
)

__all__ = ["LiveSettingsOut", "build_live_settings_router"]

log = structlog.get_logger(__name__)


class LiveSettingsOut(BaseModel):
    version: int = Field(description="Send it back as If-Match to change the settings.")
    values: dict[str, Any] = Field(description="Every live setting's value in effect.")
    overridden: list[str] = Field(description="Settings changed live (others: start-up values).")
    changed_at: float | None = None
    changed_by: str | None = None
    live_fields: dict[str, str] = Field(description="What each live setting changes.")
    changes: dict[str, dict[str, Any]] | None = Field(
        default=None, description="After a PATCH: old and new value of each changed setting."
    )


def _out(version: LiveVersion, changes: dict[str, dict[str, Any]] | None = None) -> JSONResponse:
    body = LiveSettingsOut(
        version=version.version,
        values=version.values(),
        overridden=sorted(version.overrides),
        changed_at=version.changed_at,
        changed_by=version.changed_by,
        live_fields=dict(LIVE_FIELDS),
        changes=changes,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True), headers={"ETag": f'"{version.version}"'}
    )


def _expected_version(if_match: str | None) -> int | None:
    """The version an ``If-Match`` names (``"3"``, ``W/"3"`` or ``3``), None if none."""
    if if_match is None:
        return None
    text = if_match.strip().removeprefix("W/").strip('"')
    return int(text) if text.isdigit() and len(text) <= 18 else -1


async def _audit(
    audit_logger: Any,
    version: LiveVersion,
    diff: dict[str, dict[str, Any]],
    user_id: str,
    source_ip: str | None,
    ctx: RequestContext | None,
) -> None:
    """Commit the change (who, each field's old and new value: live fields hold no
    secret) to the audit trail. The change is already in effect on every worker, so
    an audit trail that fails is logged loudly rather than answered as a failure."""
    from pynomaly_security.audit import SecurityEventType

    try:
        await audit_logger.log_audit_event(
            "live_settings_change",
            "settings:live",
            user_id=user_id,
            details={"version": version.version, "changes": diff},
            event_type=SecurityEventType.CONFIG_CHANGE,
            source_ip=source_ip,
            request_id=ctx.request_id if ctx is not None else None,
        )
    except Exception as exc:
        log.error(
            "live_settings_audit_failed",
            version=version.version,
            fields=sorted(diff),
            error=type(exc).__name__,
        )


def build_live_settings_router(live: LiveSettings, audit_logger: Any = None) -> APIRouter:
    """The live settings router bound to one stack's :class:`LiveSettings` (include it
    behind admin auth); with an ``audit_logger`` every change is committed to the
    audit trail before it is answered."""
    router = APIRouter(tags=["security"])

    @router.get("/settings/live", response_model=LiveSettingsOut)
    async def get_live_settings() -> Any:
        try:
            await live.refresh()  # this worker may be up to a poll behind
        except StorageError:
            return UNAVAILABLE
        return _out(live.current)

    @router.patch("/settings/live", response_model=LiveSettingsOut)
    async def patch_live_settings(
        request: Request,
        changes: Annotated[dict[str, Any], Body(description="Live field -> value (null: reset)")],
        if_match: Annotated[str | None, Header()] = None,
    ) -> Any:
        expected = _expected_version(if_match)
        if expected is None:
            return JSONResponse(
                {"detail": "If-Match with the version from GET /settings/live is required"}, 428
            )
        if not changes:
            return JSONResponse({"detail": "no settings to change"}, 400)
        ctx = get_request_context(request.scope)
        source_ip = ctx.client_ip if ctx is not None else None
        actor = await reauthenticated_user(request, "live_settings", "a live settings change")
        if not isinstance(actor, str):
            return actor

        try:
            version, diff = await live.update(changes, expected_version=expected, actor=actor)
        except NotLiveError as exc:
            return JSONResponse({"detail": "not changeable live", "fields": exc.fields}, 400)
        except InvalidLiveValue as exc:
            return JSONResponse({"detail": "invalid live settings", "errors": exc.errors}, 422)
        except VersionConflict as exc:
            return JSONResponse(
                {"detail": "the live settings changed since that version", "version": exc.current},
                409,
                headers={"ETag": f'"{exc.current}"'},
            )
        except StorageError:
            return UNAVAILABLE
        if audit_logger is not None:
            await _audit(audit_logger, version, diff, actor, source_ip, ctx)
        return _out(version, diff)

    return router
