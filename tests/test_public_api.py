"""The public surface: __all__ both ways (httpx's test_exported_members), keyword-only
setup options, the integration guide's call; .env.example complete."""

from __future__ import annotations
import __future__

import base64
import importlib
import inspect
import pkgutil
from pathlib import Path
from types import ModuleType

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

import pynomaly_security
from pynomaly_security import add_security_endpoints, setup_security_middleware
from pynomaly_security._env_example import render_env_example
from pynomaly_security.settings import SECTIONS, SecuritySettings

ROOT = Path(__file__).resolve().parent.parent


def test_env_example_lists_every_setting() -> None:
    """.env.example is generated from the settings and names every variable."""
    text = (ROOT / ".env.example").read_text()
    assert text == render_env_example(), "run `make env-example`"
    expected = []
    for name in SecuritySettings.model_fields:
        if name in SECTIONS:  # a section's fields keep flat names
            expected += [
                f"PYNOMALY_SECURITY__{name}_{inner}".upper()
                for inner in SECTIONS[name].model_fields
            ]
        elif name == "master_key":
            expected.append("PYNOMALY_MASTER_KEY")
        else:
            expected.append(f"PYNOMALY_SECURITY__{name.upper()}")
    assert [env for env in expected if f"# {env}=" not in text] == []
    assert "PYNOMALY_SECURITY__INSPECTION_MAX_FIELDS" in expected


def _modules(*, private: bool) -> list[ModuleType]:
    """The package's modules; without ``private``, those with no ``_`` part in their path."""
    found = [pynomaly_security]
    for info in pkgutil.walk_packages(pynomaly_security.__path__, "pynomaly_security."):
        if private or not any(part.startswith("_") for part in info.name.split(".")):
            found.append(importlib.import_module(info.name))
    return found


def _classes(module: ModuleType) -> dict[str, type]:
    """The public classes ``module`` defines itself (not those it imports)."""
    return {
        name: value
        for name, value in vars(module).items()
        if inspect.isclass(value) and value.__module__ == module.__name__ and name[0] != "_"
    }


def test_all_imports_are_exported() -> None:
    """httpx's test_exported_members: ``__all__`` is exactly, and sorted, the package's
    public names; its subpackages (public for advanced use) and ``from __future__``
    features aside."""
    public = [
        name
        for name, value in vars(pynomaly_security).items()
        if (not name.startswith("_") or name == "__version__")
        and not isinstance(value, ModuleType)
        and not isinstance(value, __future__._Feature)
    ]
    assert pynomaly_security.__all__ == sorted(public)


@pytest.mark.parametrize("name", pynomaly_security.__all__)
def test_every_export_is_public_and_importable(name: str) -> None:
    """Each export imports by name and is defined in a public module of the package
    (never a private one, never re-exported from a dependency)."""
    namespace: dict[str, object] = {}
    exec(f"from pynomaly_security import {name}", namespace)
    value = namespace[name]
    assert name == "__version__" or not name.startswith("_")
    module = getattr(value, "__module__", None)
    if inspect.isclass(value) or inspect.isfunction(value):
        assert module is not None and module.split(".")[0] == "pynomaly_security", module
        assert not any(part.startswith("_") for part in module.split(".")), module


# The integration guide's imports (../shared/seeds, which runs against the package
# with only the import path changed) that the package has.
GUIDE_IMPORTS = [
    *("AuditLevel", "AuditLogger", "ComplianceStandard", "DataEncryption", "InputSanitizer"),
    *("SecurityAlert", "SecurityEventType", "SecurityMonitor", "ThreatDetector", "ThreatLevel"),
    *("add_security_endpoints", "audit_context", "setup_security_middleware"),
    *("SanitizationConfig", "audit_action", "SQLInjectionProtector", "SafeQueryBuilder"),
]
# What setup_security_middleware installs besides middlewares, for those who wire by hand.
INSTALLERS = ["inspection_exempt", "install_validation_handler", "secure_server_errors"]
# The issues' named interfaces (issue 18: dependency vulnerability assessment).
INTERFACES = ["AutomatedVulnerabilityAssessment"]


def test_what_users_wire_by_hand_is_exported() -> None:
    """Every middleware class of a public module, every exception, the plugin, the
    sanitizer, the installers the plugin calls and the integration guide's imports
    are importable from the package itself."""
    middlewares = [
        name
        for module in _modules(private=False)
        for name in _classes(module)
        if name.endswith("Middleware")
    ]
    from pynomaly_security import exceptions, plugin, sanitize

    wanted = {
        *middlewares,
        *exceptions.__all__,
        *plugin.__all__,
        *sanitize.__all__,
        *GUIDE_IMPORTS,
        *INSTALLERS,
        *INTERFACES,
    }
    assert sorted(wanted - set(pynomaly_security.__all__)) == []
    assert "SecurityMiddleware" in middlewares  # the layer the stack installs


def test_no_two_classes_share_a_name() -> None:
    """A public class name means one thing across the package (there were two
    ``Finding`` classes: a rule's match is RuleFinding, a classified span of
    personal data is SensitiveSpan)."""
    where: dict[str, list[str]] = {}
    for module in _modules(private=True):
        for name in _classes(module):
            where.setdefault(name, []).append(module.__name__)
    assert {name: places for name, places in where.items() if len(places) > 1} == {}
    from pynomaly_security.detection import RuleFinding
    from pynomaly_security.protection import SensitiveSpan

    assert (RuleFinding.__module__, SensitiveSpan.__module__) == (
        "pynomaly_security.detection.types",
        "pynomaly_security.protection.classify",
    )


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
