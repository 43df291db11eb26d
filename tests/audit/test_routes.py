"""The audit query router, mounted as the main router mounts it."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import ASGIApp

from pynomaly_security.api.audit_routes import build_audit_router
from pynomaly_security.audit import AuditLogger, SecurityEventType

pytestmark = pytest.mark.anyio
MakeClient = Callable[[ASGIApp], httpx.AsyncClient]


def _app(audit: AuditLogger) -> FastAPI:
    app = FastAPI()
    app.include_router(build_audit_router(audit), prefix="/api/security")
    return app


async def test_query_pages_and_filters(audit: AuditLogger, make_client: MakeClient) -> None:
    """Filters apply and next_offset walks the pages; reading is itself audited."""
    for i in range(3):
        await audit.log_security_event(SecurityEventType.LOGIN_FAILURE, f"f{i}", user_id="ann")
    await audit.log_security_event(SecurityEventType.LOGIN_SUCCESS, "ok", user_id="bob")
    async with make_client(_app(audit)) as client:
        first = (
            await client.get("/api/security/audit", params={"user_id": "ann", "limit": 2})
        ).json()
        second = (
            await client.get(
                "/api/security/audit", params={"user_id": "ann", "limit": 2, "offset": 2}
            )
        ).json()
        by_type = (
            await client.get("/api/security/audit", params={"event_type": "data_access"})
        ).json()
    assert [r["message"] for r in first["items"]] == ["f0", "f1"]
    assert first["next_offset"] == 2
    assert [r["message"] for r in second["items"]] == ["f2"]
    assert second["next_offset"] is None
    assert first["items"][0]["controls"]["PCI_DSS"]
    assert [r["details"]["filters"] for r in by_type["items"]] == [["user_id"], ["user_id"]]


async def test_time_filters_accept_iso_and_unix(
    audit: AuditLogger, make_client: MakeClient
) -> None:
    """since/until take ISO 8601 or Unix seconds."""
    await audit.log_security_event(SecurityEventType.CONFIG_CHANGE, "now")
    async with make_client(_app(audit)) as client:
        url = "/api/security/audit"
        future = await client.get(url, params={"since": "2999-01-01T00:00:00Z"})
        past = await client.get(
            url, params={"since": 0, "until": 4102444800, "event_type": "config_change"}
        )
    assert future.json()["items"] == []
    assert [r["message"] for r in past.json()["items"]] == ["now"]


async def test_verify_endpoint(audit: AuditLogger, make_client: MakeClient) -> None:
    """GET /audit/verify returns the verifier's result."""
    await audit.log_security_event(SecurityEventType.ADMIN_ACTION, "x")
    async with make_client(_app(audit)) as client:
        body = (await client.get("/api/security/audit/verify")).json()
    assert body["ok"] is True
    assert body["count"] == 1
    assert body["pinned_keys"] is True


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"limit": 0}, id="limit-zero"),
        pytest.param({"limit": 100000}, id="limit-huge"),
        pytest.param({"offset": -1}, id="offset-negative"),
        pytest.param({"standard": "FOO"}, id="unknown-standard"),
        pytest.param({"since": "yesterday"}, id="bad-time"),
        pytest.param({"event_type": "x' OR 1=1"}, id="bad-event-type"),
    ],
)
async def test_bad_parameters_are_422(
    audit: AuditLogger, make_client: MakeClient, params: dict[str, str | int]
) -> None:
    """Invalid query parameters are a clear 422, never a 500."""
    async with make_client(_app(audit)) as client:
        response = await client.get("/api/security/audit", params=params)
    assert response.status_code == 422


async def test_models_in_openapi(audit: AuditLogger) -> None:
    """The response models appear in the OpenAPI schema."""
    schemas = _app(audit).openapi()["components"]["schemas"]
    assert {"AuditPageOut", "AuditRecordOut", "AuditVerifyOut"} <= set(schemas)


async def test_access_rows_are_expanded_and_paged(
    audit: AuditLogger, make_client: MakeClient
) -> None:
    """Access records sealed in one batch come back one item per request, paged."""
    for i in range(5):
        audit.log_request(
            method="GET", path=f"/a{i}", status_code=200, duration_ms=0.1, user_id="ann",
            client_ip="192.0.2.1", timestamp=1_000.0 + i,
        )  # fmt: skip
    await audit.log_security_event(SecurityEventType.LOGIN_FAILURE, "f", user_id="ann")
    params = {"user_id": "ann", "event_type": "http_request", "limit": 3}
    async with make_client(_app(audit)) as client:
        first = (await client.get("/api/security/audit", params=params)).json()
        rest = (await client.get("/api/security/audit", params={**params, "offset": 3})).json()
    assert [r["path"] for r in first["items"]] == ["/a0", "/a1", "/a2"]
    assert first["next_offset"] == 3
    assert [r["path"] for r in rest["items"]] == ["/a3", "/a4"]
    assert [r["batch_index"] for r in rest["items"]] == [3, 4]
    assert {(r["kind"], r["user_id"], r["source_ip"]) for r in first["items"]} == {
        ("request", "ann", "192.0.2.1")
    }
