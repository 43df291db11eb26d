"""DataEncryption: round trips, context binding, key ids and one opaque InvalidToken."""

from __future__ import annotations

import base64
import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pynomaly_security.crypto import DataEncryption, EncryptionContext, KeyRing
from pynomaly_security.exceptions import ConfigurationError, InvalidToken
from pynomaly_security.settings import SecuritySettings

ALGORITHMS = [pytest.param("fernet", id="fernet"), pytest.param("aes_gcm", id="aes_gcm")]
CTX = EncryptionContext("users", "ssn", "42")


def _enc(algorithm: str, version: int = 1, min_version: int = 1) -> DataEncryption:
    ring = KeyRing(b"m" * 32, current_version=version, min_version=min_version)
    return DataEncryption(keyring=ring, algorithm=algorithm)  # type: ignore[arg-type]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize(
    ("value", "type_"),
    [
        pytest.param("123-45-6789", str, id="str"),
        pytest.param(b"\x00\xffraw", bytes, id="bytes"),
        pytest.param({"a": [1, 2.5, None]}, dict, id="dict"),
        pytest.param(42, int, id="int"),
        pytest.param(dt.date(1990, 5, 17), dt.date, id="date"),
        pytest.param(Decimal("12.30"), Decimal, id="decimal"),
    ],
)
def test_round_trip(algorithm: str, value: object, type_: type) -> None:
    """encrypt_sensitive_data / decrypt_sensitive_data return an equal value of the type."""
    enc = _enc(algorithm)
    token = enc.encrypt_sensitive_data(value, context=CTX)
    assert enc.decrypt_sensitive_data(token, type_, context=CTX) == value


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_settings_choose_the_algorithm(algorithm: str, settings: SecuritySettings) -> None:
    """encryption_algorithm selects the token format; the token carries the key id."""
    settings = settings.model_copy(update={"encryption_algorithm": algorithm})
    token = DataEncryption(settings).encrypt(b"x")
    assert token.startswith({"fernet": "pn1.f.1.", "aes_gcm": "pn1.a.1."}[algorithm])


def test_encryption_is_randomised() -> None:
    """The same value encrypts to different tokens (random nonce / IV)."""
    enc = _enc("aes_gcm")
    assert enc.encrypt(b"same") != enc.encrypt(b"same")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize(
    "other",
    [
        pytest.param(EncryptionContext("users", "email", "42"), id="other-field"),
        pytest.param(EncryptionContext("users", "ssn", "43"), id="other-record"),
        pytest.param(EncryptionContext("admins", "ssn", "42"), id="other-table"),
        pytest.param(None, id="no-context"),
    ],
)
def test_value_moved_to_another_context_does_not_decrypt(
    algorithm: str, other: EncryptionContext | None
) -> None:
    """A ciphertext copied into another field, record or table raises InvalidToken."""
    enc = _enc(algorithm)
    token = enc.encrypt(b"123-45-6789", context=CTX)
    with pytest.raises(InvalidToken):
        enc.decrypt(token, context=other)


def _flip(token: str, index: int) -> str:
    prefix, _, body = token.rpartition(".")
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[index] ^= 0x01
    return f"{prefix}.{base64.urlsafe_b64encode(bytes(raw)).rstrip(b'=').decode()}"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("index", [0, 20, -1], ids=["start", "middle", "last"])
def test_tampered_ciphertext_raises_invalid_token(algorithm: str, index: int) -> None:
    """Flipping any bit of the body is detected."""
    enc = _enc(algorithm)
    token = enc.encrypt(b"a secret value of some length", context=CTX)
    with pytest.raises(InvalidToken):
        enc.decrypt(_flip(token, index), context=CTX)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda t: t.replace("pn1.", "pn2.", 1), id="format-version"),
        pytest.param(lambda t: t.replace(".1.", ".7.", 1), id="unknown-key-id"),
        pytest.param(lambda t: t.replace(".1.", ".01.", 1), id="non-canonical-key-id"),
        pytest.param(lambda t: t.replace(".1.", ".x.", 1), id="non-numeric-key-id"),
        pytest.param(lambda t: t[:12], id="truncated"),
        pytest.param(lambda t: "", id="empty"),
        pytest.param(lambda t: t + "é", id="non-ascii"),
        pytest.param(lambda t: "pn1.a.1.AAAA", id="short-body"),
    ],
)
def test_malformed_tokens_raise_invalid_token(algorithm: str, mutate: object) -> None:
    """Every malformed token fails the same way, with no message and no cause."""
    enc = _enc(algorithm)
    token = enc.encrypt(b"v", context=CTX)
    with pytest.raises(InvalidToken) as info:
        enc.decrypt(mutate(token), context=CTX)  # type: ignore[operator]
    assert str(info.value) == ""
    exc = info.value
    assert exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__)


def test_non_string_values_raise_invalid_token() -> None:
    """A raw number or None left in an encrypted column is an InvalidToken, not a crash."""
    enc = _enc("aes_gcm")
    for value in (12345, None, 1.5):
        with pytest.raises(InvalidToken):
            enc.decrypt(value, context=CTX)  # type: ignore[arg-type]


def test_algorithm_swap_in_header_is_detected() -> None:
    """Relabelling a Fernet token as AES-GCM (or back) does not decrypt."""
    enc = _enc("fernet")
    token = enc.encrypt(b"v")
    with pytest.raises(InvalidToken):
        enc.decrypt(token.replace("pn1.f.", "pn1.a.", 1))


def test_other_master_key_cannot_decrypt() -> None:
    """A token from another deployment (another master key) is an InvalidToken."""
    token = _enc("aes_gcm").encrypt(b"v")
    other = DataEncryption(keyring=KeyRing(b"o" * 32), algorithm="aes_gcm")
    with pytest.raises(InvalidToken):
        other.decrypt(token)


def test_rotation_new_writes_use_newest_key_old_tokens_still_read() -> None:
    """After bumping the version, old tokens decrypt, new ones carry the new key id."""
    old = _enc("aes_gcm", version=1).encrypt(b"old", context=CTX)
    enc = _enc("aes_gcm", version=2)
    new = enc.encrypt(b"new", context=CTX)
    assert (enc.key_id(old), enc.key_id(new)) == (1, 2)
    assert enc.decrypt(old, context=CTX) == b"old"
    assert enc.needs_rotation(old) and not enc.needs_rotation(new)
    rotated = enc.rotate(old, context=CTX)
    assert enc.key_id(rotated) == 2 and enc.decrypt(rotated, context=CTX) == b"old"


def test_retired_version_is_unknown_key_id() -> None:
    """Once key_min_version passes a version, its tokens raise InvalidToken."""
    old = _enc("fernet", version=1).encrypt(b"old")
    with pytest.raises(InvalidToken):
        _enc("fernet", version=2, min_version=2).decrypt(old)


def test_algorithm_switch_needs_no_migration() -> None:
    """Tokens of either algorithm stay readable after switching the setting."""
    fernet_token = _enc("fernet").encrypt(b"v")
    assert _enc("aes_gcm").decrypt(fernet_token) == b"v"
    assert _enc("aes_gcm").needs_rotation(fernet_token)


def test_wrong_type_is_a_type_error_without_the_value() -> None:
    """Asking for the wrong type raises TypeError that does not quote the plaintext."""
    enc = _enc("aes_gcm")
    token = enc.encrypt_sensitive_data({"ssn": "123-45-6789"})
    with pytest.raises(TypeError) as info:
        enc.decrypt_sensitive_data(token, int)
    assert "123-45-6789" not in str(info.value) and info.value.__cause__ is None


def test_unknown_algorithm_and_missing_key_fail_at_construction() -> None:
    """Bad configuration is a ConfigurationError before any data is touched."""
    with pytest.raises(ConfigurationError):
        DataEncryption(keyring=KeyRing(b"m" * 32), algorithm="rot13")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="keys generate"):
        DataEncryption(SecuritySettings(_env_file=None))  # type: ignore[call-arg]


def test_multifernet_interop() -> None:
    """fernet_ring() reads the inner Fernet token of the newest key (cryptography's recipe)."""
    enc = _enc("fernet", version=2)
    ring = enc.fernet_ring()
    inner = enc.encrypt(b"x").split(".", 3)[3]
    assert ring.decrypt(inner.encode())[16:] == b"x"


@given(st.binary(max_size=256), st.text(max_size=20), st.sampled_from(["fernet", "aes_gcm"]))
def test_round_trip_property(data: bytes, record_id: str, algorithm: str) -> None:
    """Any bytes round-trip under any context."""
    ctx = EncryptionContext("t", "f", record_id)
    enc = _enc(algorithm)
    assert enc.decrypt(enc.encrypt(data, context=ctx), context=ctx) == data


# Known answers: stored data must stay readable across releases, so the derivation and
# token formats are pinned. A change here is a breaking change needing a migration.
KNOWN_TOKENS = [
    pytest.param("pn1.a.2.X0OIBtYzkcSXGmdj_L-tirUvhFzJbwaLHNyafAzQVxT0J0KAc_I-kA", id="aes_gcm"),
    pytest.param(
        "pn1.f.2.gAAAAABrBIvpKRljuOHvZVaJRRXvXXq02g5jXeLsspJuN_srT-fZynBzrQwHkDiO0Qh8wPsJ31MAf0"
        "tOUEv1dq7OXeGapHnqNwTk08ubKh6ciUrUaVPvZJ0=",
        id="fernet",
    ),
]


def test_known_answer_key_derivation() -> None:
    """HKDF info and parameters are stable (a changed derivation would orphan stored data)."""
    key = KeyRing(b"k" * 32, current_version=2).key("fields", 1)
    assert key.hex() == "a847ab19e37dcb9f46510fd53da7297397b8a793d7891fa802e27a4d8ad8eaba"


@pytest.mark.parametrize("token", KNOWN_TOKENS)
def test_known_tokens_still_decrypt(token: str) -> None:
    """Tokens written by this release decrypt in later ones (format pn1)."""
    enc = DataEncryption(keyring=KeyRing(b"k" * 32, current_version=2))
    assert enc.decrypt_sensitive_data(token, str, context=CTX) == "123-45-6789"
