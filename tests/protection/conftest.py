"""Fixtures for the crypto tests: settings with a real random master key."""

from __future__ import annotations

import pytest

from pynomaly_security.crypto import generate_master_key
from pynomaly_security.settings import SecuritySettings


@pytest.fixture
def master_key() -> str:
    return generate_master_key()


@pytest.fixture
def settings(master_key: str) -> SecuritySettings:
    return SecuritySettings(_env_file=None, master_key=master_key)  # type: ignore[call-arg]
