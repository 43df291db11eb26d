"""Fixtures for the auth tests: an injected clock and a fast, fully wired authenticator."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography.fernet import Fernet, MultiFernet

from pynomaly_security.auth import (
    InMemoryUserRepository,
    LockoutManager,
    PasswordHasher,
    RiskEngine,
    TokenService,
    TOTPManager,
    ZeroTrustAuthenticator,
)
from pynomaly_security.auth.risk import GeoLookup
from pynomaly_security.monitor.detectors import lockout_alert
from pynomaly_security.monitor.events import SecurityAlert, SecurityEvent
from pynomaly_security.storage.memory import MemoryStore

SECRET = b"k" * 32


class Clock:
    """The outside world's time, faked: tests move it by hand."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hasher() -> PasswordHasher:
    # Argon2id at the smallest cost: the tests are about behaviour, not strength.
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


class Sinks:
    """Collects what the authenticator reports (stands in for the monitor: a lockout
    event becomes the alert the monitor's brute-force detector makes of it)."""

    def __init__(self) -> None:
        self.alerts: list[SecurityAlert] = []
        self.events: list[SecurityEvent] = []

    async def alert(self, alert: SecurityAlert) -> None:
        self.alerts.append(alert)

    def event(self, event: SecurityEvent) -> None:
        self.events.append(event)
        alert = lockout_alert(event)
        if alert is not None:
            self.alerts.append(alert)


@pytest.fixture
def sinks() -> Sinks:
    return Sinks()


MakeAuthenticator = Callable[..., ZeroTrustAuthenticator]


@pytest.fixture
def make_authenticator(clock: Clock, hasher: PasswordHasher, sinks: Sinks) -> MakeAuthenticator:
    def make(
        store: MemoryStore | None = None,
        *,
        geo: GeoLookup | None = None,
        max_attempts: int = 3,
        **lockout: object,
    ) -> ZeroTrustAuthenticator:
        store = store if store is not None else MemoryStore(clock=clock)
        return ZeroTrustAuthenticator(
            users=InMemoryUserRepository(),
            passwords=hasher,
            totp=TOTPManager(
                store, MultiFernet([Fernet(Fernet.generate_key())]), b"r" * 32, clock=clock
            ),
            tokens=TokenService(store, secret=SECRET, issuer="iss", audience="aud", clock=clock),
            lockouts=LockoutManager(
                store,
                max_attempts=max_attempts,
                event_sink=sinks.event,
                clock=clock,
                **lockout,  # type: ignore[arg-type]
            ),
            risk=RiskEngine(store, geo_lookup=geo, clock=clock),
            event_sink=sinks.event,
            alert_sink=sinks.alert,
            recovery_codes=3,
        )

    return make
