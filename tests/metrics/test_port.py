"""``METRICS_PORT``: the exposition on a port of its own, started in the lifespan.

Under ``uvicorn --workers 2`` (Redis shared): a known number of requests is scraped back
exactly on the port, which asks for the key like ``/metrics``; with
``METRICS_PORT_AUTH=false`` (in process) it answers without one, and only its path."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests._uvicorn import example_app_workers, example_env, send
from tests.metrics.test_metrics import _app
from tests.storage._redis_server import free_port

REQUESTS = 40


def _count(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "pynomaly_security_requests_inspected_total"
                and sample.labels.get("route") == "/"
            ):
                return sample.value
    return 0.0


@pytest.mark.slow
def test_two_workers_serve_the_exact_count_on_the_port(tmp_path: Path, redis_db: str) -> None:
    key = secrets.token_urlsafe(24)
    port = free_port()
    env = example_env(key, redis_db, tmp_path, metrics_flush_seconds="0.2", metrics_port=str(port))
    with example_app_workers(env, tmp_path, workers=2) as base:
        for _ in range(REQUESTS):
            assert send("GET", base, "/").status_code == 200
        scrape_url = f"http://127.0.0.1:{port}"
        assert send("GET", scrape_url, "/metrics").status_code == 401
        seen: list[float] = []
        for _ in range(150):  # a deadline, not a speed check
            scrape = send("GET", scrape_url, "/metrics", headers={"X-API-Key": key})
            assert scrape.status_code == 200, scrape.text
            assert scrape.headers["content-type"].startswith("text/plain")
            seen.append(_count(scrape.text))
            if len(seen) >= 3 and seen[-1] == seen[-2] == seen[-3] == REQUESTS:
                break
            time.sleep(0.1)
        assert seen[-1] == REQUESTS, seen
        assert max(seen) == REQUESTS
        # The app's own route gives the same count.
        assert _count(send("GET", base, "/metrics", headers={"X-API-Key": key}).text) == REQUESTS


@pytest.mark.anyio
async def test_the_port_without_auth_when_explicitly_off() -> None:
    port = free_port()
    app, stack = _app(metrics_port=port, metrics_port_auth=False)
    async with app.router.lifespan_context(app):
        assert stack.metrics is not None and stack.metrics.port is not None
        assert stack.metrics.port.serving
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            open_scrape = await client.get("/metrics")
            assert open_scrape.status_code == 200
            assert "pynomaly_security_requests_inspected_total" in open_scrape.text
            openmetrics = await client.get(
                "/metrics", headers={"Accept": "application/openmetrics-text"}
            )
            assert openmetrics.text.rstrip().endswith("# EOF")
            assert (await client.get("/other")).status_code == 404
            assert (await client.post("/metrics")).status_code == 405
    assert not stack.metrics.port.serving  # closed with the lifespan


def test_the_port_with_auth_needs_a_credential() -> None:
    from pynomaly_security import ConfigurationError

    with pytest.raises(ConfigurationError, match="credential"):
        _app(metrics_port=free_port(), admin_api_key=None)
