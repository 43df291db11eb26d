"""The public surface: __all__ sorted and complete; .env.example complete."""

from __future__ import annotations

from pathlib import Path

import pynomaly_security
from pynomaly_security._env_example import render_env_example
from pynomaly_security.settings import SecuritySettings

ROOT = Path(__file__).resolve().parent.parent


def test_all_is_sorted_and_importable() -> None:
    """Everything in __all__ exists, and __all__ is sorted (httpx's check)."""
    names = pynomaly_security.__all__
    assert names == sorted(names)
    for name in names:
        assert hasattr(pynomaly_security, name), name


def test_env_example_lists_every_setting() -> None:
    """.env.example is generated from the settings and names every variable."""
    text = (ROOT / ".env.example").read_text()
    assert text == render_env_example(), "run `make env-example`"
    for name in SecuritySettings.model_fields:
        env = (
            "PYNOMALY_MASTER_KEY" if name == "master_key" else f"PYNOMALY_SECURITY__{name.upper()}"
        )
        assert f"# {env}=" in text


def test_what_the_stack_installs_can_be_wired_by_hand() -> None:
    """The middlewares setup_security_middleware installs, and the audit logger, are
    importable from the package (a user wiring the layers by hand needs them)."""
    for name in (
        "AuditLogger",
        "AuditMiddleware",
        "LoginLockoutMiddleware",
        "ResponseMaskingMiddleware",
        "SecurityMiddleware",
    ):
        assert name in pynomaly_security.__all__, name
