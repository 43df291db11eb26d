"""Key ring, HKDF purpose keys, ``DataEncryption`` and field-level encryption."""

from __future__ import annotations

from pynomaly_security.crypto.encryption import Algorithm, DataEncryption, EncryptionContext
from pynomaly_security.crypto.fields import EncryptedField, FieldEncryption, normalize_casefold
from pynomaly_security.crypto.keys import KeyRing, generate_master_key, load_master_key
from pynomaly_security.crypto.rotation import RotationReport, rotate_sqlite_table

__all__ = [
    "Algorithm",
    "DataEncryption",
    "EncryptedField",
    "EncryptionContext",
    "FieldEncryption",
    "KeyRing",
    "RotationReport",
    "generate_master_key",
    "load_master_key",
    "normalize_casefold",
    "rotate_sqlite_table",
]
