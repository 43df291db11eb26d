"""The integration guide's data encryption (../shared/seeds, "Data Encryption"),
verbatim with only the import path changed: ``DataEncryption()`` reads the master key
from the environment and its ``field_encryption`` uses the same key ring."""

from __future__ import annotations

from pathlib import Path

import pytest

from pynomaly_security import ConfigurationError, DataEncryption, InvalidToken, defaults


def test_the_guide_example_runs_as_written(guide_env: Path) -> None:
    """Values and records round-trip; registered fields are ciphertext at rest, other
    fields untouched; a ciphertext moved to another row does not decrypt."""
    # Initialize encryption service
    encryption = DataEncryption()

    # Encrypt sensitive data
    sensitive_data = {"ssn": "123-45-6789", "credit_card": "4111-1111-1111-1111"}
    encrypted = encryption.encrypt_sensitive_data(sensitive_data)

    # Decrypt data
    decrypted = encryption.decrypt_sensitive_data(encrypted, dict)

    # Field-level encryption for database records
    encryption.field_encryption.register_encrypted_field("users", "ssn")
    encryption.field_encryption.register_encrypted_field("users", "credit_card")

    # Encrypt record before saving
    record = {"id": 1, "name": "John", "ssn": "123-45-6789"}
    encrypted_record = encryption.field_encryption.encrypt_record("users", record)

    # Decrypt record after loading
    decrypted_record = encryption.field_encryption.decrypt_record("users", encrypted_record)

    assert isinstance(encrypted, str) and "123-45-6789" not in encrypted
    assert encrypted.startswith("pn1.f.1.")  # fernet, the default algorithm; key version 1
    assert decrypted == sensitive_data
    assert encrypted_record["name"] == "John" and encrypted_record["id"] == 1
    assert encrypted_record["ssn"].startswith("pn1.") and "6789" not in encrypted_record["ssn"]
    assert "credit_card" not in encrypted_record  # absent fields stay absent
    assert decrypted_record == record
    moved = {**encrypted_record, "id": 2}
    with pytest.raises(InvalidToken):
        encryption.field_encryption.decrypt_record("users", moved)


def test_instances_share_the_environment_key(guide_env: Path) -> None:
    """Two ``DataEncryption()`` read each other's tokens (one key ring per process), and
    a process with the same PYNOMALY_MASTER_KEY does too (the key is the environment's)."""
    token = DataEncryption().encrypt_sensitive_data("secret")
    assert DataEncryption().decrypt_sensitive_data(token, str) == "secret"
    assert DataEncryption().keyring is defaults.keyring()
    defaults.reset()  # as a new process would
    assert DataEncryption().decrypt_sensitive_data(token, str) == "secret"


def test_without_a_master_key_the_error_says_how_to_fix_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Outside development mode a missing PYNOMALY_MASTER_KEY is the existing clear
    error; in development mode one throw-away key serves the whole process."""
    monkeypatch.delenv("PYNOMALY_MASTER_KEY", raising=False)
    with pytest.raises(ConfigurationError, match=r"PYNOMALY_MASTER_KEY is required.*keys generate"):
        DataEncryption()
    monkeypatch.setenv("PYNOMALY_SECURITY__DEVELOPMENT_MODE", "true")
    defaults.reset()
    token = DataEncryption().encrypt_sensitive_data({"a": 1})
    assert DataEncryption().decrypt_sensitive_data(token, dict) == {"a": 1}
