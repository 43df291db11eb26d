"""A request refused by inspection (over a limit, ambiguous, unusable) is a
security record in the audit trail of the assembled stack, like a blocked
injection, and a 4xx with the request id, never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from examples.app import create_app
from pynomaly_security import SecuritySettings

KEY = "test-admin-key-0123456789abcdef"


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        admin_api_key=KEY,
        development_mode=True,
        audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
        inspection_max_fields=50,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.mark.anyio
async def test_refusals_are_audited_and_never_500(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app, client=("198.51.100.23", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        item = b'{"name": "Lamp", "description": "x", "price": NaN}'
        nan = await client.post(
            "/items", content=item, headers={"content-type": "application/json"}
        )
        assert (nan.status_code, nan.json()["error"]) == (400, "json_non_finite")
        assert nan.json()["request_id"] == nan.headers["x-request-id"]
        many = await client.get("/search?" + "&".join(f"p{i}=v" for i in range(60)))
        assert (many.status_code, many.json()["error"]) == (413, "too_many_fields")
        two = await client.post(
            "/items",
            content=b'{"name": "<script>alert(1)</script>", "price": 1}',
            headers=[("content-type", "application/json"), ("content-type", "text/plain")],
        )
        assert (two.status_code, two.json()["error"]) == (400, "ambiguous_content_type")
        huge = await client.get("/search?q=x", headers={"user-agent": "a" * 70_000})
        assert (huge.status_code, huge.json()["error"]) == (431, "headers_too_large")
    audit = app.state.pynomaly_security.audit_logger
    records = await audit.query(event_type="injection_attempt", limit=50)
    refused = {r["details"]["refused"] for r in records if "refused" in r.get("details", {})}
    assert refused == {
        "json_non_finite",
        "too_many_fields",
        "ambiguous_content_type",
        "headers_too_large",
    }
    assert all(r["details"]["blocked"] for r in records)
