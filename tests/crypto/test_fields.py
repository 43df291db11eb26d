"""Field-level encryption of records and the keyed blind index."""

from __future__ import annotations

import pytest

from pynomaly_security.crypto import DataEncryption, FieldEncryption, KeyRing, normalize_casefold
from pynomaly_security.exceptions import ConfigurationError, InvalidToken


def _fields(version: int = 1, min_version: int = 1, algorithm: str = "aes_gcm") -> FieldEncryption:
    ring = KeyRing(b"m" * 32, current_version=version, min_version=min_version)
    fields = FieldEncryption(DataEncryption(keyring=ring, algorithm=algorithm))  # type: ignore[arg-type]
    fields.register_encrypted_field("users", "ssn")
    fields.register_encrypted_field(
        "users", "email", blind_index=True, normalize=normalize_casefold
    )
    return fields


USER = {"id": 7, "name": "Ada", "ssn": "123-45-6789", "email": "Ada@Example.com"}


@pytest.mark.parametrize("algorithm", ["fernet", "aes_gcm"])
def test_encrypt_and_decrypt_record(algorithm: str) -> None:
    """Registered fields are encrypted, others untouched; decrypt restores the record."""
    fields = _fields(algorithm=algorithm)
    row = fields.encrypt_record("users", USER)
    assert row["name"] == "Ada" and row["id"] == 7
    assert row["ssn"].startswith("pn1.") and "123" not in row["ssn"]
    assert row["email_bidx"].startswith("1:")
    assert fields.decrypt_record("users", row) == USER


def test_unregistered_table_passes_through() -> None:
    """Records of tables without registrations are copied unchanged."""
    assert _fields().encrypt_record("orders", {"id": 1, "ssn": "x"}) == {"id": 1, "ssn": "x"}


def test_none_stays_none() -> None:
    """A NULL field is not encrypted and its index is NULL too."""
    row = _fields().encrypt_record("users", {"id": 1, "ssn": None, "email": None})
    assert row == {"id": 1, "ssn": None, "email": None, "email_bidx": None}


def test_ciphertext_copied_to_another_record_does_not_decrypt() -> None:
    """Moving user 7's SSN ciphertext into user 8's row raises InvalidToken."""
    fields = _fields()
    row7 = fields.encrypt_record("users", USER)
    row8 = fields.encrypt_record("users", {**USER, "id": 8, "ssn": "234-56-7890"})
    row8["ssn"] = row7["ssn"]
    with pytest.raises(InvalidToken):
        fields.decrypt_record("users", row8)


def test_ciphertext_copied_to_another_field_does_not_decrypt() -> None:
    """Moving the SSN ciphertext into the e-mail column raises InvalidToken."""
    fields = _fields()
    row = fields.encrypt_record("users", USER)
    row["email"] = row["ssn"]
    with pytest.raises(InvalidToken):
        fields.decrypt_record("users", row)


def test_record_without_id_is_refused_with_advice() -> None:
    """A bound field needs the record id before writing; the message says what to do."""
    with pytest.raises(ValueError, match="assign ids before writing"):
        _fields().encrypt_record("users", {"ssn": "123-45-6789"})


def test_unbound_field_works_without_id() -> None:
    """record_id_field=None binds to table and field only."""
    fields = FieldEncryption(DataEncryption(keyring=KeyRing(b"m" * 32)))
    fields.register_encrypted_field("notes", "body", record_id_field=None)
    row = fields.encrypt_record("notes", {"body": "secret"})
    assert fields.decrypt_record("notes", row) == {"body": "secret"}


def test_blind_index_is_deterministic_keyed_and_normalised() -> None:
    """Equal (normalised) values share an index; other values, fields or keys do not."""
    fields = _fields()
    a = fields.blind_index("users", "email", "ada@example.com")
    assert a == fields.blind_index("users", "email", " ADA@example.COM ")
    assert a != fields.blind_index("users", "email", "bob@example.com")
    other_key = FieldEncryption(DataEncryption(keyring=KeyRing(b"o" * 32)))
    other_key.register_encrypted_field(
        "users", "email", blind_index=True, normalize=normalize_casefold
    )
    assert a != other_key.blind_index("users", "email", "ada@example.com")


def test_blind_index_requires_registration() -> None:
    """Asking for an index of a field registered without one is a ConfigurationError."""
    with pytest.raises(ConfigurationError, match="blind_index=True"):
        _fields().blind_index("users", "ssn", "123-45-6789")
    with pytest.raises(ConfigurationError, match="not a registered"):
        _fields().blind_index("users", "phone", "x")


def test_blind_index_candidates_cover_every_readable_version() -> None:
    """Lookups during a rotation find rows indexed under the old key too."""
    old = _fields(version=1).encrypt_record("users", USER)
    fields = _fields(version=2)
    candidates = fields.blind_index_candidates("users", "email", "ada@example.com")
    assert len(candidates) == 2 and old["email_bidx"] in candidates
    assert candidates[0].startswith("2:")


def test_rotate_record() -> None:
    """rotate_record rewrites old-key fields and indexes, and is a no-op afterwards."""
    old = _fields(version=1).encrypt_record("users", USER)
    fields = _fields(version=2)
    new = fields.rotate_record("users", old)
    assert new is not None
    assert fields.encryption.key_id(new["ssn"]) == 2 and new["email_bidx"].startswith("2:")
    assert fields.decrypt_record("users", new) == USER
    assert fields.rotate_record("users", new) is None


def test_registration_errors() -> None:
    """Empty names or encrypting the id column are refused at registration."""
    fields = FieldEncryption(DataEncryption(keyring=KeyRing(b"m" * 32)))
    with pytest.raises(ConfigurationError):
        fields.register_encrypted_field("", "ssn")
    with pytest.raises(ConfigurationError, match="record id"):
        fields.register_encrypted_field("users", "id")


def test_blind_indexes_differ_between_columns() -> None:
    """The same value in two indexed columns has unrelated indexes (one key per column)."""
    fields = _fields()
    fields.register_encrypted_field("customers", "email", blind_index=True)
    users = fields.blind_index("users", "email", "ada@example.com")
    customers = fields.blind_index("customers", "email", "ada@example.com")
    assert users != customers
