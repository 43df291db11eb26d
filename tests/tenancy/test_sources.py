"""Where a request's tenant comes from (issue 21, item 1): subdomain, path (served
under its root path), header, their agreement, and a tenant's IP allow list."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from pynomaly_security import SecuritySettings, setup_security_middleware
from pynomaly_security.tenancy.context import current_tenant
from pynomaly_security.tenancy.model import Tenant, TenantOverrides


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()

    @app.get("/whoami")
    async def whoami(request: Request) -> dict[str, Any]:
        return {"tenant": current_tenant(), "path": request.url.path}

    settings = SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        admin_api_key="test-admin-key-0123456789abcdef-src",
        development_mode=True,
        audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
        allowed_hosts=["*"],
        tenancy_enabled=True,
        tenancy_sources=["subdomain", "path", "header"],
        tenancy_base_domain="example.test",
        tenancy_plans={"free": {}},
    )
    stack = setup_security_middleware(app, settings=settings)
    async with app.router.lifespan_context(app):
        assert stack.tenancy is not None
        await stack.tenancy.registry.create(Tenant(id="acme"))
        await stack.tenancy.registry.create(Tenant(id="globex"))
        walled = TenantOverrides(allowed_ip_ranges=["10.0.0.0/8"])
        await stack.tenancy.registry.create(Tenant(id="walled", overrides=walled))
        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


@pytest.mark.anyio
async def test_subdomain_path_and_header(client: httpx.AsyncClient) -> None:
    by_host = await client.get("http://acme.example.test/whoami")
    assert by_host.json() == {"tenant": "acme", "path": "/whoami"}
    by_path = await client.get("/t/globex/whoami")
    assert by_path.json()["tenant"] == "globex"
    assert by_path.json()["path"].endswith("/whoami")
    by_header = await client.get("/whoami", headers={"X-Tenant": "ACME"})
    assert by_header.json()["tenant"] == "acme"


@pytest.mark.anyio
async def test_sources_must_agree(client: httpx.AsyncClient) -> None:
    crossed = await client.get("http://acme.example.test/t/globex/whoami")
    assert crossed.status_code == 403
    crossed = await client.get("http://acme.example.test/whoami", headers={"X-Tenant": "globex"})
    assert crossed.status_code == 403
    deeper = await client.get("http://a.acme.example.test/whoami")
    assert deeper.status_code == 404


@pytest.mark.anyio
async def test_a_tenants_ip_allow_list(client: httpx.AsyncClient) -> None:
    refused = await client.get("/whoami", headers={"X-Tenant": "walled"})
    assert refused.status_code == 403
    assert (await client.get("/whoami", headers={"X-Tenant": "acme"})).status_code == 200


@pytest.mark.anyio
async def test_an_unreachable_registry_is_a_503_never_a_500() -> None:
    """Fail closed, and say so: the tenant could not be checked (Redis is down)."""
    from pynomaly_security.storage import create_store
    from pynomaly_security.tenancy.middleware import TenancyMiddleware
    from pynomaly_security.tenancy.registry import TenantRegistry
    from pynomaly_security.tenancy.settings import TenancySection

    down = create_store("redis://127.0.0.1:1/0", socket_timeout=0.5)
    app = FastAPI()
    app.add_middleware(
        TenancyMiddleware,
        registry=TenantRegistry(down),  # type: ignore[arg-type]
        section=TenancySection(sources=["header"], exempt_paths=["/api/security"]),
    )
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            for path in ("/whoami", "/api/security/alerts"):  # a tenant's; the platform's
                answer = await c.get(path, headers={"X-Tenant": "acme"})
                assert answer.status_code == 503, (path, answer.text)
                assert answer.headers["Retry-After"] == "5"
    finally:
        await down.aclose()
