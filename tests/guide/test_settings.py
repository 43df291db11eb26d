"""The integration guide's settings (../shared/seeds, "Configuration Options"): its
names and defaults, the refusal of unauthenticated CBC, and the JSON configuration
file named by PYNOMALY_SECURITY_CONFIG (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pynomaly_security import ConfigurationError, load_settings
from pynomaly_security.settings import SanitizationLevel


def test_the_guide_defaults_and_the_documented_deviations() -> None:
    """The guide's defaults, except the two the README lists with their reasons
    (compliance logging stays on; the input bound stays 1 MiB)."""
    s = load_settings(_env_file=None)
    assert s.sanitization_level is SanitizationLevel.MODERATE and s.allow_html is False
    assert s.encryption_algorithm == "fernet" and s.encryption_key_length == 32
    assert s.enable_key_rotation and s.key_rotation_days == 90
    assert s.enable_audit_logging and s.audit_retention_days == 2555
    assert s.enable_security_monitoring and s.threat_detection_enabled
    assert (s.brute_force_max_attempts, s.brute_force_time_window) == (5, 300)
    assert s.security_headers_enabled and s.csp_enabled and s.hsts_enabled
    # Deviations (README, "Where we differ from the guide").
    assert s.enable_compliance_logging is True
    assert s.max_input_length == 1_048_576


def test_the_guide_environment_block_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guide's environment variables, as written, configure the settings."""
    for line in """\
PYNOMALY_SECURITY__SANITIZATION_LEVEL=moderate
PYNOMALY_SECURITY__MAX_INPUT_LENGTH=10000
PYNOMALY_SECURITY__ALLOW_HTML=false
PYNOMALY_SECURITY__ENCRYPTION_ALGORITHM=fernet
PYNOMALY_SECURITY__ENABLE_AUDIT_LOGGING=true
PYNOMALY_SECURITY__ENABLE_COMPLIANCE_LOGGING=false
PYNOMALY_SECURITY__ENABLE_SECURITY_MONITORING=true
PYNOMALY_SECURITY__BRUTE_FORCE_MAX_ATTEMPTS=5
PYNOMALY_SECURITY__SECURITY_HEADERS_ENABLED=true""".splitlines():
        name, value = line.split("=")
        monkeypatch.setenv(name, value)
    s = load_settings(_env_file=None)
    assert s.max_input_length == 10_000 and s.enable_compliance_logging is False


def test_aes_cbc_is_refused_naming_the_authenticated_alternatives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The guide offers aes_cbc; CBC without a MAC is malleable, so start-up stops and
    says which authenticated algorithms to use instead."""
    monkeypatch.setenv("PYNOMALY_SECURITY__ENCRYPTION_ALGORITHM", "aes_cbc")
    with pytest.raises(ConfigurationError) as info:
        load_settings(_env_file=None)
    message = str(info.value)
    assert "PYNOMALY_SECURITY__ENCRYPTION_ALGORITHM" in message
    assert "malleable" in message and "aes_gcm" in message and "fernet" in message


@pytest.mark.parametrize("length", ["16", "24", "64"])
def test_encryption_key_length_must_be_32(monkeypatch: pytest.MonkeyPatch, length: str) -> None:
    """Both offered algorithms take 32-byte keys; another length is refused, named."""
    monkeypatch.setenv("PYNOMALY_SECURITY__ENCRYPTION_KEY_LENGTH", length)
    with pytest.raises(ConfigurationError, match="ENCRYPTION_KEY_LENGTH: Value error, must be 32"):
        load_settings(_env_file=None)


def _config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, doc: object) -> None:
    path = tmp_path / "security.json"
    path.write_text(json.dumps(doc))
    monkeypatch.setenv("PYNOMALY_SECURITY_CONFIG", str(path))


def test_a_json_file_configures_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PYNOMALY_SECURITY_CONFIG names a JSON file of settings: names as fields, sections
    whole, groups by prefix; an environment variable wins over the file's value, a
    section's flat variable over the file's section."""
    _config(
        tmp_path,
        monkeypatch,
        {
            "detection_mode": "detect",
            "audit_retention_days": 400,
            "rate_limit": {"key": "user", "exempt_paths": ["/health"]},
            "audit": {"checkpoint": {"every": 50}},
            "inspection": {"max_fields": 500, "max_parts": 9},
            "route_rate_limits": {"/login": ["5/minute"]},
        },
    )
    monkeypatch.setenv("PYNOMALY_SECURITY__AUDIT_RETENTION_DAYS", "30")
    monkeypatch.setenv("PYNOMALY_SECURITY__INSPECTION_MAX_PARTS", "7")
    s = load_settings(_env_file=None)
    assert s.detection_mode == "detect" and s.audit_retention_days == 30
    assert s.rate_limit_key == "user" and s.rate_limit_exempt_paths == ["/health"]
    assert (s.inspection.max_fields, s.inspection.max_parts) == (500, 7)
    assert s.route_rate_limits == {"/login": ["5/minute"]}
    assert s.audit_checkpoint_every == 50
    # Keyword arguments (what code passes) win over both.
    assert load_settings(_env_file=None, detection_mode="block").detection_mode == "block"


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        pytest.param({"rate_limit": {"burts": 5}}, "rate_limit.burts", id="group"),
        pytest.param({"inspection": {"max_feilds": 5}}, "inspection.max_feilds", id="section"),
        pytest.param({"sanitisation_level": "strict"}, "sanitisation_level", id="top"),
        pytest.param({"audit": {"retention": {"dayz": 1}}}, "audit.retention.dayz", id="deep"),
    ],
)
def test_an_unknown_key_is_refused_with_its_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, doc: object, path: str
) -> None:
    """A mistyped key in the file stops start-up and names where it is; it is never
    silently ignored as an unknown environment variable is."""
    _config(tmp_path, monkeypatch, doc)
    message = rf"^PYNOMALY_SECURITY_CONFIG \(.*\): unknown key {path}$"
    with pytest.raises(ConfigurationError, match=message):
        load_settings(_env_file=None)


def test_a_bad_file_is_refused_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing file, invalid JSON, or JSON that is not an object: a clear error each,
    and a bad value in the file names the setting."""
    monkeypatch.setenv("PYNOMALY_SECURITY_CONFIG", str(tmp_path / "missing.json"))
    with pytest.raises(ConfigurationError, match="no such file"):
        load_settings(_env_file=None)
    (tmp_path / "bad.json").write_text("{not json")
    monkeypatch.setenv("PYNOMALY_SECURITY_CONFIG", str(tmp_path / "bad.json"))
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        load_settings(_env_file=None)
    _config(tmp_path, monkeypatch, ["detection_mode"])
    with pytest.raises(ConfigurationError, match="must hold one JSON object"):
        load_settings(_env_file=None)
    _config(tmp_path, monkeypatch, {"encryption_algorithm": "aes_cbc"})
    from_file = r"encryption_algorithm in PYNOMALY_SECURITY_CONFIG .*malleable"
    with pytest.raises(ConfigurationError, match=from_file):
        load_settings(_env_file=None)


def test_a_bad_value_names_where_it_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad value from the file is reported as the file's key (with the variable that
    would override it); the same value from the environment names the variable."""
    _config(tmp_path, monkeypatch, {"rate_limit_key": "bogus"})
    with pytest.raises(ConfigurationError) as from_file:
        load_settings(_env_file=None)
    [line] = [x.strip() for x in str(from_file.value).splitlines()[1:]]
    assert line.startswith("rate_limit_key in PYNOMALY_SECURITY_CONFIG (")
    assert "or PYNOMALY_SECURITY__RATE_LIMIT_KEY)" in line
    monkeypatch.setenv("PYNOMALY_SECURITY__RATE_LIMIT_KEY", "also-bogus")
    with pytest.raises(ConfigurationError) as from_env:
        load_settings(_env_file=None)
    [line] = [x.strip() for x in str(from_env.value).splitlines()[1:]]
    assert line.startswith("PYNOMALY_SECURITY__RATE_LIMIT_KEY: ")
