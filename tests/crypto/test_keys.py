"""Master key loading, HKDF purpose keys and the versioned key ring."""

from __future__ import annotations

import base64

import pytest
from structlog.testing import capture_logs

from pynomaly_security.crypto import KeyRing, generate_master_key, load_master_key
from pynomaly_security.crypto.keys import EPHEMERAL_KEY_EVENT
from pynomaly_security.crypto.purposes import PURPOSES
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


# -- the label table (issue 13: one ring for every purpose) -----------------------------


@pytest.mark.parametrize(
    "purpose",
    [
        pytest.param("field", id="typo"),
        pytest.param("blind-index", id="qualifier-missing"),
        pytest.param("blind-index:", id="qualifier-empty"),
        pytest.param("fields:users", id="qualifier-not-taken"),
    ],
)
def test_purposes_outside_the_table_are_refused(purpose: str) -> None:
    """A purpose not in PURPOSES (or a qualifier where none is taken) is a ConfigurationError."""
    with pytest.raises(ConfigurationError, match="unknown key purpose"):
        KeyRing(b"k" * 32).key(purpose)


def test_every_purpose_of_the_table_derives_a_distinct_key() -> None:
    """Each purpose in the table gives its own key; qualified ones one per qualifier."""
    ring = KeyRing(b"k" * 32)
    names = [f"{p.name}:x" if p.qualified else p.name for p in PURPOSES.values()]
    keys = {ring.key(name) for name in names} | {ring.key("blind-index:y"), ring.key("app:y")}
    assert len(keys) == len(names) + 2


def test_master_scoped_purposes_ignore_the_version() -> None:
    """Audit keys change with the master key only: a version bump keeps them (and the pin)."""
    v1, v3 = KeyRing(b"k" * 32), KeyRing(b"k" * 32, current_version=3, min_version=3)
    for name, spec in PURPOSES.items():
        if spec.rotates == "master":
            assert v1.key(name) == v3.key(name, 1) == v3.key(name)
    assert v1.master_ids == v3.master_ids
    with pytest.raises(ConfigurationError, match="no per-tenant keys"):
        v1.key("audit-records", tenant="acme")


def test_retired_master_keys_read_and_never_write() -> None:
    """Retired master keys come after the current one; new keys use the current one."""
    old, new = b"o" * 32, b"n" * 32
    ring = KeyRing(new, retired=[old])
    assert list(ring.masters) == [0, 1]
    assert ring.key("fields") == KeyRing(new).key("fields")
    assert ring.reading_keys("fields") == [KeyRing(new).key("fields"), KeyRing(old).key("fields")]
    assert ring.master_ids == (KeyRing(new).master_ids[0], KeyRing(old).master_ids[0])
    assert ring.master_index(KeyRing(old).master_ids[0]) == 1
    assert ring.master_index("0" * 16) is None
    assert repr(ring) == "KeyRing(current_version=1, min_version=1, retired=1)"


def test_retired_master_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """PYNOMALY_SECURITY__RETIRED_MASTER_KEYS (comma-separated) feeds the ring; a bad one
    is refused by its name, without echoing it."""
    old = [generate_master_key(), generate_master_key()]
    monkeypatch.setenv("PYNOMALY_MASTER_KEY", generate_master_key())
    monkeypatch.setenv("PYNOMALY_SECURITY__RETIRED_MASTER_KEYS", ",".join(old))
    ring = KeyRing.from_settings(_settings())
    assert ring.reading_keys("tokens")[1:] == [
        KeyRing(base64.urlsafe_b64decode(k)).key("tokens") for k in old
    ]
    monkeypatch.setenv("PYNOMALY_SECURITY__RETIRED_MASTER_KEYS", "short")
    with pytest.raises(ConfigurationError, match="RETIRED_MASTER_KEYS must be base64") as info:
        KeyRing.from_settings(_settings())
    assert "short" not in str(info.value)


def test_fernet_reads_every_version_and_master_and_writes_the_newest() -> None:
    """ring.fernet(purpose) (the TOTP cipher) decrypts what any readable key wrote and
    encrypts with the current master key's current version."""
    old, new = b"o" * 32, b"n" * 32
    written = [
        KeyRing(old).fernet("totp").encrypt(b"a"),
        KeyRing(new).fernet("totp").encrypt(b"b"),
        KeyRing(new, current_version=2).fernet("totp").encrypt(b"c"),
    ]
    ring = KeyRing(new, current_version=2, retired=[old])
    assert [ring.fernet("totp").decrypt(t) for t in written] == [b"a", b"b", b"c"]
    only_current = KeyRing(new, current_version=2, min_version=2).fernet("totp")
    assert only_current.decrypt(ring.fernet("totp").encrypt(b"d")) == b"d"


def test_one_ephemeral_key_path_for_every_component() -> None:
    """In development mode without a master key the ring is ephemeral and warns once."""
    with capture_logs() as logs:
        ring = KeyRing.from_settings(_settings(development_mode=True))
    assert ring.ephemeral and not KeyRing(b"k" * 32).ephemeral
    assert [entry["event"] for entry in logs] == [EPHEMERAL_KEY_EVENT]
