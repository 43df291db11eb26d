"""Field-level encryption of records, with an optional keyed blind index.

A registered field is encrypted with :class:`DataEncryption` bound to
``(table, field, record id)``, so a ciphertext copied into another column or row
does not decrypt. A field registered with ``blind_index=True`` also gets a
``<field>_bidx`` column: ``HMAC-SHA256(key(blind-index, table, field), value)``,
truncated to 128 bits, so equality look-ups work without decrypting.

The blind index is deterministic by design: it reveals which rows share a value
(never the value). Use it only for fields that need look-up.

References:
    Paragon IE, "CipherSweet: Searchable encryption" (blind indexes);
    OWASP Cryptographic Storage Cheat Sheet.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pynomaly_security.crypto.encryption import DataEncryption, EncryptionContext
from pynomaly_security.exceptions import ConfigurationError

__all__ = ["BLIND_INDEX_SUFFIX", "EncryptedField", "FieldEncryption", "normalize_casefold"]

BLIND_INDEX_SUFFIX = "_bidx"
_BIDX_BYTES = 16


def normalize_casefold(value: str) -> str:
    """Blind-index normaliser for case-insensitive values such as e-mail addresses."""
    return value.strip().casefold()


@dataclass(frozen=True, slots=True)
class EncryptedField:
    """How one field of one table is protected."""

    table: str
    field: str
    blind_index: bool = False
    record_id_field: str | None = "id"
    normalize: Callable[[str], str] | None = None

    @property
    def index_column(self) -> str:
        return self.field + BLIND_INDEX_SUFFIX


class FieldEncryption:
    """Encrypt and decrypt registered fields of records (plain mappings).

    Args:
        encryption: the :class:`DataEncryption` used for every field.

    Example::

        fields = FieldEncryption(DataEncryption(settings))
        fields.register_encrypted_field("users", "ssn")
        fields.register_encrypted_field("users", "email", blind_index=True)
        row = fields.encrypt_record("users", {"id": "u1", "ssn": "123-45-6789", ...})
    """

    def __init__(self, encryption: DataEncryption) -> None:
        self.encryption = encryption
        self._fields: dict[str, dict[str, EncryptedField]] = {}

    def register_encrypted_field(
        self,
        table: str,
        field: str,
        *,
        blind_index: bool = False,
        record_id_field: str | None = "id",
        normalize: Callable[[str], str] | None = None,
    ) -> EncryptedField:
        """Register ``table.field`` for encryption.

        Args:
            blind_index: also write ``<field>_bidx`` for equality look-ups.
            record_id_field: the record's id column, bound to the ciphertext;
                ``None`` binds to table and field only (ids assigned by the
                database after insert cannot be bound).
            normalize: applied to the value before indexing (e.g.
                :func:`normalize_casefold`).
        """
        if not table or not field:
            raise ConfigurationError("table and field must be non-empty")
        if field == record_id_field:
            raise ConfigurationError(f"{table}.{field} is the record id and cannot be encrypted")
        spec = EncryptedField(table, field, blind_index, record_id_field, normalize)
        self._fields.setdefault(table, {})[field] = spec
        return spec

    def tables(self) -> list[str]:
        """Tables with registered fields, in registration order."""
        return list(self._fields)

    def fields(self, table: str) -> list[EncryptedField]:
        """Registered fields of ``table``."""
        return list(self._fields.get(table, {}).values())

    def _spec(self, table: str, field: str) -> EncryptedField:
        try:
            return self._fields[table][field]
        except KeyError:
            raise ConfigurationError(
                f"{table}.{field} is not a registered encrypted field"
            ) from None

    @staticmethod
    def context(spec: EncryptedField, record: Mapping[str, Any]) -> EncryptionContext:
        """The context bound to ``spec``'s value in ``record``."""
        if spec.record_id_field is None:
            return EncryptionContext(spec.table, spec.field)
        record_id = record.get(spec.record_id_field)
        if record_id is None:
            raise ValueError(
                f"{spec.table}.{spec.field} is bound to the record id but the record has no "
                f"{spec.record_id_field!r}: assign ids before writing (e.g. uuid4) or register "
                "the field with record_id_field=None"
            )
        return EncryptionContext(spec.table, spec.field, str(record_id))

    def encrypt_record(self, table: str, record: Mapping[str, Any]) -> dict[str, Any]:
        """Return a copy of ``record`` with registered fields encrypted (``None`` is kept)."""
        out = dict(record)
        for spec in self.fields(table):
            if spec.field not in record:
                continue
            value = record[spec.field]
            if spec.blind_index:
                out[spec.index_column] = (
                    None if value is None else self.blind_index(table, spec.field, value)
                )
            if value is not None:
                out[spec.field] = self.encryption.encrypt_sensitive_data(
                    value, context=self.context(spec, record)
                )
        return out

    def decrypt_record(self, table: str, record: Mapping[str, Any]) -> dict[str, Any]:
        """Return a copy of ``record`` with registered fields decrypted and index columns dropped.

        Raises:
            InvalidToken: a field does not decrypt (tampered, moved, or unknown key id).
        """
        out = dict(record)
        for spec in self.fields(table):
            out.pop(spec.index_column, None)
            value = record.get(spec.field)
            if value is not None:
                out[spec.field] = self.encryption.decrypt_sensitive_data(
                    value, context=self.context(spec, record)
                )
        return out

    def rotate_record(self, table: str, record: Mapping[str, Any]) -> dict[str, Any] | None:
        """Re-encrypt fields written with an old key (an older version, another
        algorithm, a retired master key); ``None`` when nothing changed."""
        plain = self.decrypt_record(table, record)
        stale = any(
            isinstance(record.get(spec.field), str)
            and self.encryption.open(record[spec.field], context=self.context(spec, record))[1]
            for spec in self.fields(table)
        )
        stale = stale or any(
            spec.blind_index
            and plain.get(spec.field) is not None
            and record.get(spec.index_column)
            != self.blind_index(table, spec.field, plain[spec.field])
            for spec in self.fields(table)
        )
        return self.encrypt_record(table, plain) if stale else None

    def blind_index(
        self, table: str, field: str, value: Any, *, version: int | None = None, master: int = 0
    ) -> str:
        """The blind index of ``value`` for ``table.field`` (current key version and
        master key by default).

        The key version prefixes the digest (``"3:..."``), so indexes written
        before a rotation stay distinguishable; look up with
        :meth:`blind_index_candidates` until ``keys rotate`` has rewritten them.
        """
        spec = self._spec(table, field)
        if not spec.blind_index:
            raise ConfigurationError(f"{table}.{field} was registered without blind_index=True")
        text = value if isinstance(value, str) else str(value)
        if spec.normalize is not None:
            text = spec.normalize(text)
        ring = self.encryption.keyring
        version = ring.current_version if version is None else version
        # One key per column: equal values in different columns get unrelated indexes.
        key = ring.key(f"blind-index:{table}.{field}", version, master=master)
        digest = hmac.new(key, text.encode(), hashlib.sha256).digest()[:_BIDX_BYTES]
        return f"{version}:{digest.hex()}"

    def blind_index_candidates(self, table: str, field: str, value: Any) -> list[str]:
        """Indexes of ``value`` under every readable key version (and master key),
        newest first.

        Use in ``WHERE <field>_bidx IN (...)``; after rotation and raising
        ``key_min_version`` (and dropping retired master keys) this is a single
        value again.
        """
        ring = self.encryption.keyring
        return [
            self.blind_index(table, field, value, version=v, master=m)
            for v in reversed(ring.versions)
            for m in ring.masters
        ]
