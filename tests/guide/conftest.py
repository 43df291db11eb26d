"""The guide's examples run as a new user runs them: settings from the environment and
the process's default objects (``pynomaly_security.defaults``), reset around each test
so no test sees another's environment or key."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from pynomaly_security import defaults

MASTER_KEY = base64.urlsafe_b64encode(b"guide-master-key-32-bytes-long!!").decode()


@pytest.fixture
def guide_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The two variables the README's Quick start sets (the master key and the audit
    database, here in the test's own directory); yields the audit database's path."""
    db = tmp_path / "audit.db"
    monkeypatch.setenv("PYNOMALY_MASTER_KEY", MASTER_KEY)
    monkeypatch.setenv("PYNOMALY_SECURITY__AUDIT_DB_URL", f"sqlite:///{db}")
    defaults.reset()
    yield db
    defaults.reset()


@pytest.fixture(autouse=True)
def _no_leftover_defaults() -> Iterator[None]:
    """Every test starts and ends without default objects."""
    defaults.reset()
    yield
    defaults.reset()
