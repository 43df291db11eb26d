"""Fixtures of the audit tests: settings with a fixed master key, a started logger."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from pynomaly_security.audit import AuditLogger
from pynomaly_security.settings import SecuritySettings

MASTER_KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()


def make_settings(db_url: str, **overrides: object) -> SecuritySettings:
    values: dict[str, object] = {
        "master_key": MASTER_KEY,
        "audit_db_url": db_url,
        "development_mode": False,
        "audit_flush_interval_ms": 20,
    }
    values.update(overrides)
    return SecuritySettings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def master_key() -> str:
    """The fixed test master key (base64 of bytes 0..31)."""
    return MASTER_KEY


@pytest.fixture
def settings_for() -> Callable[..., SecuritySettings]:
    """``settings_for(db_url, **overrides)``: settings with the test master key."""
    return make_settings


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'audit.db'}"


@pytest.fixture
async def audit(db_url: str) -> AsyncIterator[AuditLogger]:
    """A started logger on a fresh SQLite file, closed (flushed) after the test."""
    logger = AuditLogger.from_settings(make_settings(db_url))
    await logger.start()
    yield logger
    await logger.aclose()


@pytest.fixture
def prefix() -> str:
    """A table prefix of its own, so tests sharing a database never collide."""
    return "t_" + uuid.uuid4().hex[:12]
