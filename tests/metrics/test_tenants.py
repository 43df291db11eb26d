"""The tenant label (issue 21, item 2) on the example app with tenancy on: requests
inspected and blocked per tenant, exactly, and past METRICS_TENANT_LABELS_MAX the
other tenants as one ``__other__``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from examples.app import create_app
from pynomaly_security.tenancy.model import Tenant
from tests.tenancy.test_app import KEY, settings

INJECTION = "1' UNION SELECT password FROM users--"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _scrape_after(tmp_path: Path, **extra: Any) -> dict[tuple[str, frozenset[Any]], float]:
    """acme 3 requests (and a blocked injection), globex 2, initech 1; the samples."""
    app = create_app(settings(tmp_path, **extra))  # the tenancy tests' settings
    async with app.router.lifespan_context(app):
        tenancy = app.state.pynomaly_security.tenancy
        await tenancy.registry.create(Tenant(id="initech", name="initech", plan="free"))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            for tid, n in (("acme", 3), ("globex", 2), ("initech", 1)):
                for _ in range(n):
                    answer = await client.get("/items", headers={"X-Tenant": tid})
                    assert answer.status_code == 200, answer.text
            blocked = await client.get(
                "/search", params={"q": INJECTION}, headers={"X-Tenant": "acme"}
            )
            assert blocked.status_code == 403
            # /metrics is served for the platform: a scraper names no tenant.
            text = (await client.get("/metrics", headers={"X-API-Key": KEY})).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _inspected(samples: dict[tuple[str, frozenset[Any]], float], tenant: str) -> float:
    key = frozenset({"route": "/items", "tenant": tenant}.items())
    return samples.get(("pynomaly_security_requests_inspected_total", key), 0.0)


@pytest.mark.anyio
async def test_requests_and_blocks_count_per_tenant(tmp_path: Path) -> None:
    samples = await _scrape_after(tmp_path)
    assert [_inspected(samples, t) for t in ("acme", "globex", "initech")] == [3, 2, 1]
    blocked = frozenset({"route": "/search", "tenant": "acme", "family": "sqli"}.items())
    assert samples[("pynomaly_security_requests_blocked_total", blocked)] == 1


@pytest.mark.anyio
async def test_tenants_past_the_cap_count_as_other(tmp_path: Path) -> None:
    samples = await _scrape_after(tmp_path, metrics_tenant_labels_max=2)
    assert [_inspected(samples, t) for t in ("acme", "globex", "__other__")] == [3, 2, 1]
    assert _inspected(samples, "initech") == 0
