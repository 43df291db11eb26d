"""Device fingerprint and risk scoring from the user's history."""

from __future__ import annotations

import pytest

from pynomaly_security.auth.risk import (
    GeoPoint,
    RiskEngine,
    RiskLevel,
    device_fingerprint,
    user_agent_family,
)
from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.storage import create_store
from pynomaly_security.storage.memory import MemoryStore

from .conftest import Clock

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)
EDGE = CHROME + " Edg/126.0.0.0"
SAFARI_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


@pytest.mark.parametrize(
    ("ua", "family"),
    [
        pytest.param(FIREFOX, "Firefox 128 / Linux", id="firefox"),
        pytest.param(CHROME, "Chrome 126 / Windows", id="chrome"),
        pytest.param(EDGE, "Edge 126 / Windows", id="edge-not-chrome"),
        pytest.param(SAFARI_IOS, "Safari 17 / iOS", id="safari-ios"),
        pytest.param("curl/8.5.0", "curl 8 / other", id="curl"),
        pytest.param(None, "other / other", id="missing"),
    ],
)
def test_user_agent_family(ua: str | None, family: str) -> None:
    """The family keeps browser, major version and OS only."""
    assert user_agent_family(ua) == family


def test_fingerprint_stable_across_patch_versions() -> None:
    """A browser patch update keeps the fingerprint; another browser or cookie changes it."""
    base = {"user-agent": CHROME, "accept-language": "en-GB"}
    patched = {**base, "user-agent": CHROME.replace("126.0.0.0", "126.0.6478.127")}
    assert device_fingerprint(base) == device_fingerprint(patched)
    assert device_fingerprint(base) != device_fingerprint({**base, "user-agent": FIREFOX})
    assert device_fingerprint(base) != device_fingerprint(base, device_cookie="abc")


def engine(clock: Clock, **kwargs: object) -> RiskEngine:
    return RiskEngine(MemoryStore(clock=clock), clock=clock, **kwargs)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_first_sign_in_is_low(clock: Clock) -> None:
    """Without history there is nothing to compare: low risk."""
    risk = await engine(clock).assess("u1", "203.0.113.1", "dev-a")
    assert (risk.score, risk.level, risk.reasons) == (0, RiskLevel.LOW, ())


@pytest.mark.anyio
async def test_known_device_and_network_is_low(clock: Clock) -> None:
    """The same device from the same /24 scores nothing."""
    risk_engine = engine(clock)
    await risk_engine.remember("u1", "203.0.113.1", "dev-a")
    risk = await risk_engine.assess("u1", "203.0.113.77", "dev-a")
    assert risk.level is RiskLevel.LOW and risk.reasons == ()


@pytest.mark.anyio
async def test_new_device_and_network_is_medium(clock: Clock) -> None:
    """A new device on a new network needs a second factor; both reasons are given."""
    risk_engine = engine(clock)
    await risk_engine.remember("u1", "203.0.113.1", "dev-a")
    risk = await risk_engine.assess("u1", "198.51.100.9", "dev-b")
    assert risk.level is RiskLevel.MEDIUM
    assert risk.reasons == ("new_device", "new_network")


@pytest.mark.anyio
async def test_recent_failures_add_up(clock: Clock) -> None:
    """Failed attempts before a right password raise the score (capped at 30)."""
    risk = await engine(clock).assess("u1", "203.0.113.1", "dev-a", recent_failures=5)
    assert (risk.score, risk.reasons) == (30, ("recent_failures",))


@pytest.mark.anyio
async def test_unusual_hour(clock: Clock) -> None:
    """After five sign-ins at office hours, a 3 a.m. sign-in is unusual."""
    clock.now = 1_700_000_000.0 - (1_700_000_000 % 86_400) + 10 * 3600  # 10:00 UTC
    risk_engine = engine(clock)
    for _ in range(5):
        await risk_engine.remember("u1", "203.0.113.1", "dev-a")
    clock.now += 17 * 3600  # 03:00 UTC next day
    risk = await risk_engine.assess("u1", "203.0.113.1", "dev-a")
    assert risk.reasons == ("unusual_hour",)


@pytest.mark.anyio
async def test_impossible_travel_is_high(clock: Clock) -> None:
    """Paris then Sydney an hour later is refused-level risk (GeoIP lookup faked)."""
    places = {"203.0.113.1": GeoPoint(48.85, 2.35), "198.51.100.1": GeoPoint(-33.87, 151.21)}
    risk_engine = engine(clock, geo_lookup=places.get)
    await risk_engine.remember("u1", "203.0.113.1", "dev-a")
    clock.now += 3600
    risk = await risk_engine.assess("u1", "198.51.100.1", "dev-a")
    assert risk.level is RiskLevel.HIGH
    assert "impossible_travel" in risk.reasons
    clock.now += 30 * 3600  # a day and a half later the flight is possible
    assert (
        "impossible_travel" not in (await risk_engine.assess("u1", "198.51.100.1", "dev-a")).reasons
    )


@pytest.mark.anyio
async def test_store_down_policy(clock: Clock) -> None:
    """Store down: fail_open scores without history; fail_closed treats it as high risk."""
    store = create_store("redis://127.0.0.1:1/0", socket_timeout=0.5)
    try:
        open_risk = await RiskEngine(store, clock=clock).assess("u1", "203.0.113.1", "d")
        closed = await RiskEngine(store, clock=clock, failure_policy="fail_closed").assess(
            "u1", "203.0.113.1", "d"
        )
    finally:
        await store.aclose()
    assert open_risk.level is RiskLevel.LOW
    assert closed.level is RiskLevel.HIGH and closed.reasons == ("risk_unavailable",)


def test_thresholds_validated(clock: Clock) -> None:
    """Medium must be below high."""
    with pytest.raises(ConfigurationError, match="medium"):
        engine(clock, medium=80, high=70)


def test_geoip_path_without_database(tmp_path: object) -> None:
    """A GeoIP path that cannot be opened (or a missing extra) fails at construction."""
    from pynomaly_security.auth.risk import maxmind_lookup

    with pytest.raises(ConfigurationError, match=r"GeoIP|maxminddb"):
        maxmind_lookup("/nonexistent/GeoLite2-City.mmdb")
