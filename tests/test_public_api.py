"""The public surface: __all__ sorted and complete; .env.example complete."""

from __future__ import annotations

import base64
import inspect
from pathlib import Path

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

import pynomaly_security
from pynomaly_security import add_security_endpoints, setup_security_middleware
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


def test_setup_options_are_keyword_only() -> None:
    """Only ``app`` may be positional: a row of booleans says nothing at the call site."""
    parameters = inspect.signature(setup_security_middleware).parameters.values()
    positional = [p.name for p in parameters if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    assert positional == ["app"]
    with pytest.raises(TypeError, match="takes 1 positional argument but 2 were given"):
        setup_security_middleware(FastAPI(), True)  # type: ignore[misc]


def test_the_integration_guide_call_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The integration guide's example (../shared/seeds, section 2), with only the
    import path changed: ``app=app`` and every option by name, in production mode
    (the guide's environment gives the master key, the admin key and the audit URL)."""
    monkeypatch.setenv("PYNOMALY_MASTER_KEY", base64.urlsafe_b64encode(b"k" * 32).decode())
    monkeypatch.setenv("PYNOMALY_SECURITY__AUDIT_DB_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    monkeypatch.setenv("PYNOMALY_SECURITY__ADMIN_API_KEY", "guide-admin-key-0123456789abcdef")
    app = FastAPI()

    # Setup complete security middleware stack
    security_stack = setup_security_middleware(
        app=app,
        enable_security_headers=True,
        enable_user_tracking=True,
        enable_audit_logging=True,
        enable_security_monitoring=True,
        development_mode=False,  # Set to True for development
    )

    # Add security API endpoints
    add_security_endpoints(
        app=app,
        security_monitor=security_stack.security_monitor,
        user_tracker=security_stack.user_tracker,
    )
    with TestClient(app, base_url="http://localhost") as client:
        answer = client.get("/api/security/status")
    assert answer.status_code == 401
    assert answer.headers["x-frame-options"] == "DENY"
