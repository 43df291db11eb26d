"""Settings from the environment, with errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from pynomaly_security import ConfigurationError, Inspector, SecuritySettings, load_settings
from pynomaly_security.settings import InspectionSection, SanitizationLevel


def test_defaults_are_secure() -> None:
    """Out of the box: moderate sanitizing (text only: HTML is off), block mode, headers on,
    brute force 5 in 300 s."""
    s = load_settings(_env_file=None)
    assert s.sanitization_level is SanitizationLevel.MODERATE and not s.allow_html
    assert s.detection_mode == "block" and s.detection_level == 2
    assert s.security_headers_enabled and s.csp_enabled and s.hsts_enabled
    assert (s.brute_force_max_attempts, s.brute_force_time_window) == (5, 300)
    assert s.trusted_proxies == [] and s.admin_api_key is None


def test_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every documented variable is read under its exact name."""
    env = {
        "PYNOMALY_SECURITY__SANITIZATION_LEVEL": "moderate",
        "PYNOMALY_SECURITY__MAX_INPUT_LENGTH": "2048",
        "PYNOMALY_SECURITY__ALLOW_HTML": "true",
        "PYNOMALY_SECURITY__ENCRYPTION_ALGORITHM": "aes_gcm",
        "PYNOMALY_SECURITY__ENABLE_KEY_ROTATION": "false",
        "PYNOMALY_SECURITY__KEY_ROTATION_DAYS": "30",
        "PYNOMALY_SECURITY__ENABLE_AUDIT_LOGGING": "false",
        "PYNOMALY_SECURITY__ENABLE_COMPLIANCE_LOGGING": "false",
        "PYNOMALY_SECURITY__AUDIT_RETENTION_DAYS": "90",
        "PYNOMALY_SECURITY__ENABLE_SECURITY_MONITORING": "false",
        "PYNOMALY_SECURITY__THREAT_DETECTION_ENABLED": "false",
        "PYNOMALY_SECURITY__BRUTE_FORCE_MAX_ATTEMPTS": "3",
        "PYNOMALY_SECURITY__BRUTE_FORCE_TIME_WINDOW": "60",
        "PYNOMALY_SECURITY__SECURITY_HEADERS_ENABLED": "false",
        "PYNOMALY_SECURITY__CSP_ENABLED": "false",
        "PYNOMALY_SECURITY__HSTS_ENABLED": "false",
        "PYNOMALY_SECURITY__ADMIN_API_KEY": "a-long-enough-admin-key",
        "PYNOMALY_SECURITY__TRUSTED_PROXIES": "10.0.0.0/8, 2001:db8::/32",
        "PYNOMALY_SECURITY__DETECTION_MODE_OVERRIDES__XSS": "detect",
        "PYNOMALY_MASTER_KEY": "bWFzdGVyLWtleS1tYXN0ZXIta2V5LW1hc3Rlci1rZXk=",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = load_settings(_env_file=None)
    assert s.sanitization_level is SanitizationLevel.MODERATE and s.max_input_length == 2048
    assert s.allow_html and s.encryption_algorithm == "aes_gcm" and not s.enable_key_rotation
    assert (
        s.key_rotation_days == 30 and not s.enable_audit_logging and not s.enable_compliance_logging
    )
    assert s.audit_retention_days == 90 and not s.enable_security_monitoring
    assert not s.threat_detection_enabled and s.brute_force_max_attempts == 3
    assert s.brute_force_time_window == 60 and not s.security_headers_enabled
    assert not s.csp_enabled and not s.hsts_enabled
    assert (
        s.admin_api_key is not None
        and s.admin_api_key.get_secret_value() == "a-long-enough-admin-key"
    )
    assert s.trusted_proxies == ["10.0.0.0/8", "2001:db8::/32"]
    assert s.detection_mode_overrides == {"xss": "detect"}
    assert s.master_key is not None
    assert "a-long-enough" not in repr(s)  # secrets never print


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "PYNOMALY_SECURITY__SANITIZATION_LEVEL",
            "extreme",
            "'strict', 'moderate' or 'permissive'",
        ),
        ("PYNOMALY_SECURITY__ENCRYPTION_ALGORITHM", "rot13", "'fernet' or 'aes_gcm'"),
        ("PYNOMALY_SECURITY__BRUTE_FORCE_MAX_ATTEMPTS", "zero", "valid integer"),
        ("PYNOMALY_SECURITY__DETECTION_LEVEL", "7", "less than or equal to 4"),
        ("PYNOMALY_SECURITY__TRUSTED_PROXIES", "10.0.0.0/33", "10.0.0.0/33"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    """A bad value stops start-up with the variable's name and what it accepts."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as info:
        load_settings(_env_file=None)
    assert name in str(info.value) and message in str(info.value)


def test_a_section_keeps_flat_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The inspection limits are one section (``settings.inspection.max_fields``), read
    under the flat names they always had: keyword arguments, environment, ``.env``."""
    env_file = tmp_path / ".env"
    env_file.write_text(
        "PYNOMALY_SECURITY__INSPECTION_MAX_PARTS=321\nPYNOMALY_SECURITY__INSPECTION_MAX_FIELDS=1\n"
    )
    monkeypatch.setenv("PYNOMALY_SECURITY__INSPECTION_MAX_FIELDS", "77")
    monkeypatch.setenv("PYNOMALY_SECURITY__INSPECTION_BUDGET_MS", "12.5")
    from_env = load_settings(_env_file=env_file).inspection
    # The environment has priority over the .env file, as for every other setting.
    assert (from_env.max_fields, from_env.max_parts, from_env.budget_ms) == (77, 321, 12.5)
    assert from_env.max_headers == 100  # the default
    flat = load_settings(_env_file=None, inspection_max_fields=5).inspection
    nested = load_settings(_env_file=None, inspection={"max_fields": 3}).inspection
    # Keyword arguments have priority over the environment, in either form.
    assert (flat.max_fields, flat.budget_ms, nested.max_fields) == (5, 12.5, 3)
    assert SecuritySettings(_env_file=None).inspection == InspectionSection(  # type: ignore[call-arg]
        max_fields=77, budget_ms=12.5
    )


def test_a_section_error_names_the_flat_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYNOMALY_SECURITY__INSPECTION_MAX_HEADERS", "0")
    with pytest.raises(ConfigurationError) as raised:
        load_settings(_env_file=None)
    assert str(raised.value) == (
        "invalid security settings:\n"
        "  PYNOMALY_SECURITY__INSPECTION_MAX_HEADERS: Input should be greater than or equal to 1"
    )


def test_the_inspector_takes_the_section() -> None:
    """Inspector.from_settings reads the section's bounds into its InspectionLimits."""
    settings = load_settings(
        _env_file=None, inspection_max_fields=7, inspection_max_parts=9, inspection_budget_ms=5.0
    )
    limits = Inspector.from_settings(settings).limits
    assert (limits.max_fields, limits.max_parts, limits.budget_ms) == (7, 9, 5.0)
