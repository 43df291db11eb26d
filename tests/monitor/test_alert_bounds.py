"""Alerts never copy attacker text unbounded: every string of an alert is cut
with a marker and has its control characters escaped, the same text is kept
once, and the details have a size cap, whoever raised the alert."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from examples.app import create_app
from pynomaly_security import SecuritySettings
from pynomaly_security.monitor import SecurityAlert, SecurityMonitor, ThreatLevel

KEY = "test-admin-key-0123456789abcdef"


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


@pytest.mark.anyio
async def test_an_injection_alert_is_small_whatever_the_path(tmp_path: Path) -> None:
    """A 60 KB path carrying a payload and terminal escapes raises an alert whose
    JSON on /api/security/alerts is about a kilobyte: the path cut with a marker and
    escaped, the matched excerpts kept."""
    settings = SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        admin_api_key=KEY,
        development_mode=True,
        audit_db_url=f"sqlite:///{tmp_path / 'audit.db'}",
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, client=("198.51.100.23", 40000))
    path = "/%1b[31m%0aforged-line" + "a" * 60_000 + "/<script>alert(1)</script>"
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        assert (await client.get(path)).status_code == 403
        answer = await client.get("/api/security/alerts", headers={"X-API-Key": KEY})
    assert answer.status_code == 200
    assert len(answer.content) < 4096
    (alert,) = answer.json()["alerts"]
    details = alert["details"]
    assert details["path"].startswith("/\\x1b[31m\\nforged-line")
    assert details["path"].endswith(" chars]") and "…[+" in details["path"]
    assert {f["excerpt"] for f in details["findings"]} >= {"</script>", "alert(1)"}
    assert not any("\x1b" in text or "\n" in text for text in _strings(alert))  # escaped, not raw


@pytest.mark.anyio
async def test_every_alert_is_bounded_whoever_raises_it() -> None:
    """An alert raised by app code with a huge message, user id and details is
    bounded before it is stored and before any handler sees it."""
    monitor = SecurityMonitor(detectors=[])
    seen: list[SecurityAlert] = []
    monitor.register_alert_handler(seen.append)
    long_text = "\x1b]0;pwned\x07" + "x" * 100_000
    await monitor.raise_alert(
        SecurityAlert(
            "custom",
            ThreatLevel.LOW,
            "message " + long_text,
            source_ip="203.0.113.9",
            user_id="user\n" + "u" * 10_000,
            details={
                "copy1": long_text,
                "copy2": long_text,  # the same text twice: kept once
                "many": [str(i) for i in range(5_000)],
                "deep": {"a": {"b": {"c": {"d": {"e": {"f": {"g": "deep"}}}}}}},
                "key\nwith\x1bcontrols": 1,
            },
        )
    )
    (stored,) = await monitor.get_active_alerts()
    assert seen == [stored]
    limit = 256  # monitor.ALERT_BOUNDS: characters per string
    assert len(stored.message) < limit + 32 and stored.message.endswith(" chars]")
    assert stored.user_id is not None and stored.user_id.startswith("user\\n")
    assert len(stored.user_id) < limit + 32
    assert stored.details["copy2"] == "[= details.copy1]"
    assert len(stored.details["many"]) == 101  # 100 kept and a marker
    assert "[too deep]" in json.dumps(stored.details)
    assert len(json.dumps(stored.to_dict())) <= 8192 + 1024  # the details' cap, and the rest
    assert not any(
        "\x1b" in text or "\n" in text or "\x07" in text for text in _strings(stored.to_dict())
    )
