"""``GET /metrics`` across ``uvicorn --workers 4``: a known number of requests, spread
over the workers by the kernel, is scraped back exactly (every worker's counts added
up in Redis, each once), whichever worker answers the scrape."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests._uvicorn import example_app_workers, example_env, send

pytestmark = [pytest.mark.slow]

REQUESTS = 240


def _count(text: str, route: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "pynomaly_security_requests_inspected_total"
                and sample.labels.get("route") == route
            ):
                return sample.value
    return 0.0


def test_four_workers_scrape_the_exact_count(tmp_path: Path, redis_db: str) -> None:
    """240 GETs of ``/`` over four workers; every scrape (polled until two in a row agree,
    as each worker adds its counts within METRICS_FLUSH_SECONDS) reads exactly 240."""
    key = secrets.token_urlsafe(24)
    env = example_env(key, redis_db, tmp_path, metrics_flush_seconds="0.2")
    with example_app_workers(env, tmp_path, workers=4) as base:
        workers = set()
        for _ in range(REQUESTS):
            answer = send("GET", base, "/")
            assert answer.status_code == 200
            workers.add(answer.headers["x-test-worker"])
        assert len(workers) >= 2  # the kernel spread them (four, usually)
        seen: list[float] = []
        scrapers = set()
        for _ in range(150):  # a deadline, not a speed check
            scrape = send("GET", base, "/metrics", headers={"X-API-Key": key})
            assert scrape.status_code == 200, scrape.text
            scrapers.add(scrape.headers["x-test-worker"])
            seen.append(_count(scrape.text, "/"))
            if len(seen) >= 3 and seen[-1] == seen[-2] == seen[-3] == REQUESTS:
                break
            time.sleep(0.1)
        assert seen[-1] == REQUESTS, seen
        assert max(seen) == REQUESTS  # never doubled on the way
        assert len(scrapers) >= 2  # the same answer from different workers
