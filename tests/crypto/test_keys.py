"""Master key loading, HKDF purpose keys and the versioned key ring."""

from __future__ import annotations

import base64

import pytest
from structlog.testing import capture_logs

from pynomaly_security.crypto import KeyRing, generate_master_key, load_master_key
from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.settings import SecuritySettings


def _settings(**kwargs: object) -> SecuritySettings:
    return SecuritySettings(_env_file=None, **kwargs)  # type: ignore[arg-type]


def test_generated_key_is_32_bytes_urlsafe_base64() -> None:
    """`keys generate` output decodes to exactly 32 random bytes, different each time."""
    key = generate_master_key()
    assert len(base64.urlsafe_b64decode(key)) == 32
    assert key != generate_master_key()


def test_missing_master_key_fails_outside_development_with_how_to() -> None:
    """Without PYNOMALY_MASTER_KEY construction fails and says how to generate one."""
    with pytest.raises(ConfigurationError, match="keys generate"):
        load_master_key(_settings())


def test_missing_master_key_in_development_warns_and_uses_ephemeral_key() -> None:
    """Development mode gets a random throw-away key, and a warning is logged (no key in it)."""
    with capture_logs() as logs:
        key = load_master_key(_settings(development_mode=True))
    assert len(key) == 32
    assert [entry["event"] for entry in logs] == ["master_key_missing_using_ephemeral_key"]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("not base64 !!", id="garbage"),
        pytest.param(base64.b64encode(b"x" * 16).decode(), id="16-bytes"),
        pytest.param(base64.b64encode(b"x" * 33).decode(), id="33-bytes"),
    ],
)
def test_invalid_master_key_is_rejected_without_echoing_it(value: str) -> None:
    """A malformed key is a ConfigurationError whose message does not contain the key."""
    with pytest.raises(ConfigurationError) as info:
        load_master_key(_settings(master_key=value))
    assert value not in str(info.value)


def test_standard_and_urlsafe_base64_are_both_accepted() -> None:
    """The 32 bytes may be given in standard or URL-safe base64, with or without padding."""
    raw = bytes(range(200, 232))  # contains bytes that differ between the alphabets
    for text in (base64.b64encode(raw), base64.urlsafe_b64encode(raw).rstrip(b"=")):
        assert load_master_key(_settings(master_key=text.decode())) == raw


def test_master_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """PYNOMALY_MASTER_KEY is read from the environment."""
    key = generate_master_key()
    monkeypatch.setenv("PYNOMALY_MASTER_KEY", key)
    assert load_master_key(_settings()) == base64.urlsafe_b64decode(key)


def test_purpose_version_and_tenant_keys_are_independent() -> None:
    """Different purposes, versions and tenants derive different keys; derivation is stable."""
    ring = KeyRing(b"k" * 32, current_version=2)
    keys = {
        ring.key("fields", 1),
        ring.key("fields", 2),
        ring.key("tokens", 2),
        ring.key("fields", 2, tenant="acme"),
    }
    assert len(keys) == 4
    assert KeyRing(b"k" * 32, current_version=2).key("fields") == ring.key("fields", 2)


def test_versions_outside_the_ring_are_unknown() -> None:
    """Only versions between key_min_version and key_version are readable."""
    ring = KeyRing(b"k" * 32, current_version=3, min_version=2)
    assert list(ring.versions) == [2, 3]
    for version in (1, 4):
        with pytest.raises(KeyError):
            ring.key("fields", version)


def test_rotation_disabled_reads_only_the_current_version() -> None:
    """With enable_key_rotation false the ring is the single current key."""
    settings = _settings(master_key=generate_master_key(), key_version=3, enable_key_rotation=False)
    assert list(KeyRing.from_settings(settings).versions) == [3]


def test_min_version_above_current_is_a_configuration_error() -> None:
    """key_min_version > key_version fails at construction with both values named."""
    settings = _settings(master_key=generate_master_key(), key_version=2, key_min_version=3)
    with pytest.raises(ConfigurationError, match=r"key_min_version \(3\).*\(2\)"):
        KeyRing.from_settings(settings)


def test_repr_shows_no_key_material() -> None:
    """repr() names versions only."""
    assert repr(KeyRing(b"k" * 32)) == "KeyRing(current_version=1, min_version=1)"
