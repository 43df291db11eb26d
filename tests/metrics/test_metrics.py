"""Metrics (issue 20) on a real FastAPI app under the full stack, in process.

Counts, labels, the exposition's names (prometheus-client's parser; promtool when
installed), content negotiation, the credential, a scanner's flood of unique paths,
the summary with and without the optional providers, and alert thresholds.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from pynomaly_security import (
    ConfigurationError,
    SecuritySettings,
    add_security_endpoints,
    setup_security_middleware,
)
from pynomaly_security.metrics.hub import SERIES_KEEP
from pynomaly_security.plugin import SecurityStack

KEY = "metrics-admin-key-" + "x" * 16
TOKEN = "scraper-token-" + "y" * 16
INJECTION = {"q": "1' UNION SELECT password FROM users--"}
_NAME = re.compile(r"^pynomaly_security_[a-z][a-z0-9_]*$")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _app(**settings: Any) -> tuple[FastAPI, SecurityStack]:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.get("/search")
    async def search(q: str = "") -> dict[str, str]:
        return {"q": q}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    options: dict[str, Any] = {
        "development_mode": True,
        "admin_api_key": KEY,
        "enable_audit_logging": False,
        **settings,
    }
    stack = setup_security_middleware(app, settings=SecuritySettings(_env_file=None, **options))  # type: ignore[call-arg]
    add_security_endpoints(app)
    return app, stack


@pytest.fixture
async def served() -> AsyncIterator[tuple[httpx.AsyncClient, SecurityStack]]:
    app, stack = _app(metrics_token=TOKEN)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            yield client, stack


async def _scrape(client: httpx.AsyncClient, accept: str | None = None) -> httpx.Response:
    headers = {"X-API-Key": KEY}
    if accept is not None:
        headers["Accept"] = accept
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    return response


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(text: str, name: str, **labels: str) -> float:
    return _samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.anyio
async def test_requests_are_counted_by_route_template_exactly(
    served: tuple[httpx.AsyncClient, SecurityStack],
) -> None:
    """Each request counts once under its route template, never its path."""
    client, _ = served
    for i in range(37):
        assert (await client.get(f"/items/{i}")).status_code == 200
    text = (await _scrape(client)).text
    assert (
        _value(text, "pynomaly_security_requests_inspected_total", route="/items/{item_id}") == 37
    )
    assert "/items/3" not in text


@pytest.mark.anyio
async def test_blocks_count_by_route_and_family_with_their_score(
    served: tuple[httpx.AsyncClient, SecurityStack],
) -> None:
    """A blocked injection counts under its route and rule family, with its score, and an
    unhandled error under its route."""
    client, _ = served
    assert (await client.get("/search", params=INJECTION)).status_code == 403
    assert (await client.get("/boom")).status_code == 500
    text = (await _scrape(client)).text
    assert (
        _value(text, "pynomaly_security_requests_blocked_total", route="/search", family="sqli")
        == 1
    )
    assert (
        _value(
            text,
            "pynomaly_security_injection_findings_total",
            family="sqli",
            action="blocked",
        )
        == 1
    )
    assert _value(text, "pynomaly_security_detection_score_count") == 1
    assert _value(text, "pynomaly_security_server_errors_total", route="/boom") == 1


@pytest.mark.anyio
async def test_names_follow_the_conventions(
    served: tuple[httpx.AsyncClient, SecurityStack],
) -> None:
    """Every family parses, is prefixed, counters end in _total, units are base units."""
    client, _ = served
    await client.get("/search", params=INJECTION)
    await client.get("/items/1")
    text = (await _scrape(client)).text
    families = list(text_string_to_metric_families(text))
    assert len(families) > 15
    for family in families:
        assert _NAME.match(family.name), family.name
        assert family.documentation, family.name
        for unit in ("_milliseconds", "_ms", "_microseconds", "_minutes", "_bytes_kb"):
            assert unit not in family.name
        if family.type == "counter":
            assert f"# TYPE {family.name}_total counter" in text
        for sample in family.samples:
            for label in sample.labels:
                assert label in {
                    "route",
                    "family",
                    "action",
                    "type",
                    "level",
                    "status",
                    "severity",
                    "effect",
                    "source",
                    "framework",
                    "le",
                }, label


def _promtool(promtool: str, text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )


@pytest.mark.anyio
async def test_promtool_accepts_the_exposition(
    served: tuple[httpx.AsyncClient, SecurityStack],
) -> None:
    """``promtool check metrics`` finds no problem (where promtool is installed: the
    issue asks for it only where available; the parser test above always runs)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed")
    from pynomaly_security import SecurityAlert, ThreatLevel

    client, stack = served
    await client.get("/search", params=INJECTION)
    await client.get("/boom")
    await client.get("/items/1")
    await stack.security_monitor.raise_alert(SecurityAlert("custom_check", ThreatLevel.LOW, "x"))
    text = (await _scrape(client)).text
    done = _promtool(promtool, text)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.anyio
async def test_openmetrics_by_content_negotiation(
    served: tuple[httpx.AsyncClient, SecurityStack],
) -> None:
    """A scraper asking for OpenMetrics gets it (with its # EOF); others the text format."""
    client, _ = served
    plain = await _scrape(client)
    assert plain.headers["content-type"].startswith("text/plain; version=0.0.4")
    om = await _scrape(client, "application/openmetrics-text; version=1.0.0")
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    assert om.text.rstrip().endswith("# EOF")


@pytest.mark.anyio
async def test_metrics_need_the_admin_key_or_the_token(
    served: tuple[httpx.AsyncClient, SecurityStack],
) -> None:
    """No credential or a wrong one is 401; the admin key and the metrics token both pass."""
    client, _ = served
    assert (await client.get("/metrics")).status_code == 401
    assert (await client.get("/metrics", headers={"X-API-Key": "wrong" * 5})).status_code == 401
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert (await client.get("/metrics", headers=bearer)).status_code == 200
    assert (await client.get("/metrics", headers={"X-API-Key": KEY})).status_code == 200


@pytest.mark.anyio
async def test_a_flood_of_unique_paths_adds_no_label(
    served: tuple[httpx.AsyncClient, SecurityStack],
) -> None:
    """10,000 unique random paths (a scanner) leave the set of series unchanged: an
    unmatched path is one ``__unmatched__`` label value, never itself."""
    client, _ = served
    await client.get("/no-such-page")
    await client.get("/items/1")
    await _scrape(client)  # the scrape's own route, counted once it ended

    def routed(text: str) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
        # The series with a route label (what a path could add to; the flood also
        # raises a scanner alert, a new series of its own bounded type).
        return {key for key in _samples(text) if any(k == "route" for k, _ in key[1])}

    before = routed((await _scrape(client)).text)
    for _ in range(10_000):
        await client.get("/" + secrets.token_hex(8))
    text = (await _scrape(client)).text
    assert routed(text) == before
    assert len(text) < 20_000
    assert (
        _value(text, "pynomaly_security_requests_inspected_total", route="__unmatched__") >= 10_001
    )


@pytest.mark.anyio
async def test_summary_has_posture_series_and_tops(
    served: tuple[httpx.AsyncClient, SecurityStack],
) -> None:
    """The summary: tiles (compliance and vulnerabilities null without a provider), 24 h
    of one-minute series holding this minute's counts, the top blocked routes."""
    client, _ = served
    for _ in range(3):
        await client.get("/search", params=INJECTION)
    await client.get("/items/1")
    assert (await client.get("/api/security/metrics/summary")).status_code == 401
    summary = (await client.get("/api/security/metrics/summary", headers={"X-API-Key": KEY})).json()
    posture = summary["posture"]
    assert posture["blocked_requests"] == 3
    assert posture["compliance"] is None and posture["vulnerabilities"] is None
    assert summary["top_blocked_routes"] == [{"route": "/search", "count": 3}]
    assert summary["top_families"] == [{"family": "sqli", "count": 3}]
    series = summary["series"]
    assert len(series["requests"]) == 1440 and series["step_seconds"] == 60
    assert series["blocked"][-1] == 3 and series["requests"][-1] >= 4


@pytest.mark.anyio
async def test_providers_fill_the_compliance_and_vulnerability_tiles(
    served: tuple[httpx.AsyncClient, SecurityStack],
) -> None:
    """With providers registered (issues 18, 19 wire theirs), the tiles and gauges appear."""
    client, stack = served
    assert stack.metrics is not None

    async def compliance() -> dict[str, float]:
        return {"soc2": 92.0, "pci_dss": 70.0}

    stack.metrics.register_provider("compliance", compliance)
    stack.metrics.register_provider("vulnerabilities", lambda: {"high": 2, "low": 1})
    summary = (await client.get("/api/security/metrics/summary", headers={"X-API-Key": KEY})).json()
    assert summary["posture"]["compliance"] == {
        "frameworks": {"soc2": 92.0, "pci_dss": 70.0},
        "score": 81.0,
    }
    assert summary["posture"]["vulnerabilities"]["total"] == 3
    text = (await _scrape(client)).text
    assert _value(text, "pynomaly_security_compliance_score_ratio", framework="soc2") == 0.92
    assert _value(text, "pynomaly_security_vulnerability_findings", severity="high") == 2


@pytest.mark.anyio
async def test_alerts_count_by_type_and_level(
    served: tuple[httpx.AsyncClient, SecurityStack],
) -> None:
    """A raised alert counts by its type and level, and shows as active."""
    from pynomaly_security import SecurityAlert, ThreatLevel

    client, stack = served
    await stack.security_monitor.raise_alert(SecurityAlert("custom_check", ThreatLevel.HIGH, "x"))
    text = (await _scrape(client)).text
    assert _value(text, "pynomaly_security_alerts_total", type="custom_check", level="high") == 1
    assert _value(text, "pynomaly_security_alerts_active", level="high") == 1


@pytest.mark.anyio
async def test_a_threshold_on_blocked_per_minute_raises_an_alert() -> None:
    """``blocked_per_minute>1``: once the minute is complete, a ``metric_threshold`` alert
    is raised through the monitor, once (a cool-down in the store)."""
    app, stack = _app(metrics_alert_thresholds=["blocked_per_minute>1"])
    hub = stack.metrics
    assert hub is not None
    now = [1_000_000 * 60.0 + 5]
    hub.clock = lambda: now[0]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            for _ in range(2):
                await client.get("/search", params=INJECTION)
            await hub.flush()
            now[0] += 60  # the next minute: the one above is complete
            await hub.evaluate()
            await hub.evaluate()
            alerts = await stack.security_monitor.get_active_alerts()
    raised = [a for a in alerts if a.alert_type == "metric_threshold"]
    assert len(raised) == 1
    assert raised[0].details["rule"] == "blocked_per_minute>1"
    assert raised[0].details["observed"] == 2


def test_a_malformed_threshold_fails_at_start_up() -> None:
    with pytest.raises(ConfigurationError, match="METRICS_ALERT_THRESHOLDS"):
        _app(metrics_alert_thresholds=["blocked_per_hour>1"])


def test_disabled_metrics_leave_nothing_in_the_request_path() -> None:
    """METRICS_ENABLED=false: no hub, no counts in the outer layer, no /metrics route."""
    app, stack = _app(metrics_enabled=False)
    assert stack.metrics is None
    assert not any(getattr(r, "path", "") == "/metrics" for r in app.routes)


@pytest.mark.anyio
async def test_each_worker_keeps_one_document_per_minute(
    served: tuple[httpx.AsyncClient, SecurityStack],
) -> None:
    """The series: one document per worker and minute, rewritten at each flush, in a
    collection bounded to SERIES_KEEP documents."""
    client, stack = served
    hub = stack.metrics
    assert hub is not None
    for _ in range(3):
        await client.get("/items/1")
        await hub.flush()
    docs = await hub._minutes.find(None, limit=SERIES_KEEP)
    assert len(docs) == 1
    assert docs[0]["c"]["requests"] == 3


@pytest.mark.anyio
async def test_the_orchestrator_dashboard_includes_the_metrics_summary(
    served: tuple[httpx.AsyncClient, SecurityStack],
) -> None:
    """``get_comprehensive_security_dashboard()`` awaited carries the page's summary."""
    from pynomaly_security import AdvancedSecurityOrchestrator

    client, stack = served
    await client.get("/search", params=INJECTION)
    orchestrator = AdvancedSecurityOrchestrator(stack=stack)
    dashboard = await orchestrator.get_comprehensive_security_dashboard()
    metrics = dashboard["metrics"]
    assert metrics["posture"]["blocked_requests"] == 1
    assert len(metrics["series"]["blocked"]) == 60


def test_the_grafana_dashboard_names_only_our_metrics() -> None:
    """Every metric examples/grafana_dashboard.json queries is one the exposition has."""
    import json
    from pathlib import Path

    import pynomaly_security.metrics.exposition as exposition

    root = Path(__file__).resolve().parents[2]
    source = Path(exposition.__file__).read_text()
    # The names the collector builds (``p + "..."`` and the names of its tables).
    families = set(re.findall(r'"([a-z][a-z_]+)"', source))
    dashboard = json.loads((root / "examples" / "grafana_dashboard.json").read_text())
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"pynomaly_security_([a-z_]+)", target["expr"])
    }
    assert queried
    for name in queried:
        base = re.sub(r"_(total|bucket|sum|count)$", "", name)
        assert base in families, name


@pytest.mark.anyio
async def test_audit_records_count_by_kind_exactly(tmp_path: Any) -> None:
    """Every record the writer commits counts once, under its event family (``custom``
    for a type of the app's own) or ``access`` for an access batch; together they are
    the trail's length."""
    app, stack = _app(enable_audit_logging=True, audit_db_url=f"sqlite:///{tmp_path}/audit.db")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            audit = stack.audit_logger
            assert audit is not None
            await audit.flush()
            for _ in range(3):
                await audit.log_audit_event("export", "report", event_type="data_export")
            for _ in range(2):
                await audit.log_audit_event("sync", "catalogue", event_type="app_sync")
            for i in range(5):
                assert (await client.get(f"/items/{i}")).status_code == 200
            await audit.flush()
            trail = await audit.store.records(0, 10_000)
            text = (await _scrape(client)).text
    assert _value(text, "pynomaly_security_audit_records_total", kind="data") == 3
    assert _value(text, "pynomaly_security_audit_records_total", kind="custom") == 2
    assert _value(text, "pynomaly_security_audit_records_total", kind="access") >= 1
    written = {
        labels: n
        for (name, labels), n in _samples(text).items()
        if name == "pynomaly_security_audit_records_total"
    }
    assert sum(written.values()) == len(trail)


@pytest.mark.anyio
async def test_without_an_authenticator_no_session_gauges(
    served: tuple[httpx.AsyncClient, SecurityStack],
) -> None:
    """No authenticator installed: the session gauges are absent, not zero."""
    client, _ = served
    text = (await _scrape(client)).text
    assert "sessions_active" not in text and "refresh_tokens_active" not in text


@pytest.mark.anyio
async def test_the_stack_added_time_leaves_the_app_out() -> None:
    """overhead_seconds: a sampled request's duration minus the app's own time (every
    request sampled here): the app's 20 ms sleeps are in request_duration_seconds and
    not in the stack's added time."""
    app, _ = _app(metrics_latency_sample=1)

    @app.get("/slow")
    async def slow() -> dict[str, bool]:
        import asyncio

        await asyncio.sleep(0.02)
        return {"ok": True}

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            for _ in range(5):
                assert (await client.get("/slow")).status_code == 200
            text = (await _scrape(client)).text
    assert _value(text, "pynomaly_security_overhead_seconds_count") == 5
    assert _value(text, "pynomaly_security_request_duration_seconds_count") == 5
    total = _value(text, "pynomaly_security_request_duration_seconds_sum")
    added = _value(text, "pynomaly_security_overhead_seconds_sum")
    assert added > 0 and total - added >= 5 * 0.02
