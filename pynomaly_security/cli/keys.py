"""``python -m pynomaly_security keys <generate|rotate>``.

``keys generate`` prints a new master key (URL-safe base64 of 32 random
bytes) for ``PYNOMALY_MASTER_KEY``. Nothing else is printed on stdout, so
``export PYNOMALY_MASTER_KEY=$(python -m pynomaly_security keys generate)`` works.

``keys status`` (same target options) prints the key ring, how many stored
values use each key version (raise ``KEY_MIN_VERSION`` only when the old
versions are at zero) and whether rotation is due: the current version has
been in use longer than ``PYNOMALY_SECURITY__KEY_ROTATION_DAYS``. The age is
recorded per version in a ``pynomaly_key_versions`` table of ``--db`` the
first time ``status`` or ``rotate`` sees it. Exit status 3 means "due", for
cron jobs and alerts.

``keys rotate`` re-encrypts stored values with the key version in
``PYNOMALY_SECURITY__KEY_VERSION`` (see :mod:`pynomaly_security.crypto.keys`
for the procedure). Stored values are:

* encrypted columns of a SQLite database: ``--db app.db --field users.ssn
  --field users.email --blind-index users.email`` (the same registrations as
  the application: id column ``--id-column``, ``--unbound`` for fields not
  bound to a record id, ``--casefold`` for case-insensitive blind indexes), or
  ``--registry myapp.security:build_fields``, a callable taking the
  :class:`DataEncryption` and returning the application's ``FieldEncryption``;
* the token vault: ``--vault`` (``settings.token_vault_url``) or ``--vault URL``.

It prints one JSON line per target with the counts; never any value.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import sqlite3
import sys
from collections import Counter
from typing import Any

import anyio

from pynomaly_security.crypto import DataEncryption, FieldEncryption, KeyRing, normalize_casefold
from pynomaly_security.crypto.keys import generate_master_key
from pynomaly_security.crypto.rotation import (
    count_key_versions,
    key_version_first_used,
    rotate_sqlite_table,
)
from pynomaly_security.exceptions import SecurityError
from pynomaly_security.protection.tokenization import Tokenizer
from pynomaly_security.settings import SecuritySettings, load_settings
from pynomaly_security.storage import StorageRegistry

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("keys", help="Generate and rotate encryption keys.")
    sub = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    gen = sub.add_parser("generate", help="Print a new master key for PYNOMALY_MASTER_KEY.")
    gen.set_defaults(func=_generate)
    rot = sub.add_parser("rotate", help="Re-encrypt stored values with the newest key version.")
    _target_arguments(rot)
    rot.set_defaults(func=_rotate)
    status = sub.add_parser("status", help="Key versions in use and whether rotation is due.")
    _target_arguments(status)
    status.set_defaults(func=_status)


def _target_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="SQLite database holding encrypted fields")
    parser.add_argument("--field", action="append", default=[], metavar="TABLE.FIELD")
    parser.add_argument("--blind-index", action="append", default=[], metavar="TABLE.FIELD")
    parser.add_argument("--casefold", action="append", default=[], metavar="TABLE.FIELD")
    parser.add_argument("--unbound", action="append", default=[], metavar="TABLE.FIELD")
    parser.add_argument("--id-column", default="id")
    parser.add_argument("--registry", metavar="MODULE:CALLABLE")
    parser.add_argument("--vault", nargs="?", const="settings", metavar="URL")
    parser.add_argument("--batch-size", type=int, default=500)


def _generate(args: argparse.Namespace) -> int:
    print(generate_master_key())
    return 0


def _split(item: str) -> tuple[str, str]:
    table, sep, field = item.partition(".")
    if not sep or not table or not field:
        raise SecurityError(f"expected TABLE.FIELD, got {item!r}")
    return table, field


def build_field_encryption(args: argparse.Namespace, encryption: DataEncryption) -> FieldEncryption:
    """The registrations named on the command line (or by ``--registry``)."""
    if args.registry:
        module_name, _, attr = args.registry.partition(":")
        factory = getattr(importlib.import_module(module_name), attr)
        fields: FieldEncryption = factory(encryption)
        return fields
    fields = FieldEncryption(encryption)
    indexed, casefold, unbound = set(args.blind_index), set(args.casefold), set(args.unbound)
    for item in dict.fromkeys([*args.field, *args.blind_index]):
        table, field = _split(item)
        fields.register_encrypted_field(
            table,
            field,
            blind_index=item in indexed,
            record_id_field=None if item in unbound else args.id_column,
            normalize=normalize_casefold if item in casefold else None,
        )
    return fields


def rotate(args: argparse.Namespace, settings: SecuritySettings) -> list[dict[str, Any]]:
    """Run the rotation the arguments describe; one summary per target."""
    if not settings.enable_key_rotation:
        raise SecurityError("key rotation is disabled (PYNOMALY_SECURITY__ENABLE_KEY_ROTATION)")
    if settings.master_key is None:
        # Development mode would invent a throw-away key that decrypts nothing stored.
        raise SecurityError("keys rotate needs PYNOMALY_MASTER_KEY (the key the data uses)")
    ring = KeyRing.from_settings(settings)
    summaries: list[dict[str, Any]] = []
    if args.db:
        fields = build_field_encryption(args, DataEncryption(settings, keyring=ring))
        tables = fields.tables()
        if not tables:
            raise SecurityError("--db needs --field/--blind-index or --registry")
        conn = sqlite3.connect(args.db)
        try:
            key_version_first_used(conn, ring.current_version, now=dt.datetime.now(dt.UTC))
            for table in tables:
                report = rotate_sqlite_table(conn, fields, table, batch_size=args.batch_size)
                summaries.append({"target": f"sqlite:{table}", **_counts(report)})
        finally:
            conn.close()
    if args.vault:
        url = settings.token_vault_url if args.vault == "settings" else args.vault
        encryption = DataEncryption(settings, keyring=ring, purpose="tokens")

        async def run() -> dict[str, Any]:
            vault = StorageRegistry().token_vault(url)
            try:
                report = await Tokenizer(vault, encryption).rotate(batch_size=args.batch_size)
            finally:
                await vault.aclose()
            return {"target": "token_vault", **_counts(report)}

        summaries.append(anyio.run(run))
    if not summaries:
        raise SecurityError("nothing to rotate: give --db ... and/or --vault")
    for summary in summaries:
        summary["key_version"] = ring.current_version
    return summaries


def status(
    args: argparse.Namespace, settings: SecuritySettings, *, now: dt.datetime
) -> dict[str, Any]:
    """The key ring, values per key version per target, and whether rotation is due."""
    if settings.master_key is None:
        raise SecurityError("keys status needs PYNOMALY_MASTER_KEY")
    ring = KeyRing.from_settings(settings)
    result: dict[str, Any] = {
        "key_version": ring.current_version,
        "key_min_version": ring.min_version,
        # Public ids (digests of derived keys), so an operator sees which master
        # keys this instance loaded without any secret being printed.
        "master_key_id": ring.master_ids[0],
        "retired_master_key_ids": list(ring.master_ids[1:]),
        "rotation_enabled": settings.enable_key_rotation,
        "key_rotation_days": settings.key_rotation_days,
        "current_version_since": None,
        "rotation_due": False,
        "values_by_key_version": {},
    }
    by_target: dict[str, dict[str, int]] = result["values_by_key_version"]
    if args.db:
        fields = build_field_encryption(args, DataEncryption(settings, keyring=ring))
        conn = sqlite3.connect(args.db)
        try:
            since = key_version_first_used(conn, ring.current_version, now=now)
            for table in fields.tables():
                by_target[f"sqlite:{table}"] = _by_version(count_key_versions(conn, fields, table))
        finally:
            conn.close()
        result["current_version_since"] = since.isoformat()
        age = now - since
        due = age > dt.timedelta(days=settings.key_rotation_days)
        result["rotation_due"] = settings.enable_key_rotation and due
    if args.vault:
        url = settings.token_vault_url if args.vault == "settings" else args.vault
        encryption = DataEncryption(settings, keyring=ring, purpose="tokens")

        async def run() -> Counter[int]:
            vault = StorageRegistry().token_vault(url)
            try:
                return await Tokenizer(vault, encryption).key_versions(batch_size=args.batch_size)
            finally:
                await vault.aclose()

        by_target["token_vault"] = _by_version(anyio.run(run))
    return result


def _by_version(counts: Counter[int]) -> dict[str, int]:
    return {str(version): n for version, n in sorted(counts.items())}


def _status(args: argparse.Namespace) -> int:
    try:
        result = status(args, load_settings(), now=dt.datetime.now(dt.UTC))
    except SecurityError as exc:
        print(f"keys status: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, sort_keys=True))
    return 3 if result["rotation_due"] else 0


def _counts(report: Any) -> dict[str, int]:
    return {
        "scanned": report.scanned,
        "rotated": report.rotated,
        "conflicts": report.conflicts,
        "batches": report.batches,
    }


def _rotate(args: argparse.Namespace) -> int:
    try:
        summaries = rotate(args, load_settings())
    except SecurityError as exc:
        # InvalidToken carries no message; say what it means for an operator.
        print(f"keys rotate: {exc or 'a stored value did not decrypt'}", file=sys.stderr)
        return 1
    for summary in summaries:
        print(json.dumps(summary, sort_keys=True))
    return 0
