"""``python -m pynomaly_security audit <verify|export|public-key>``.

``audit verify [--db URL] [--public-key FILE]`` walks the chain and the
signed checkpoints. Exit 0 prints ``OK: <count> records verified ..., head
seq=<n> hash=<hex>``; a fault exits 1 and prints ``FAIL seq=<n> <problem>:
<what is wrong>``. Checkpoint signatures are checked against, in order of
trust: the PEM file given with ``--public-key``, else the keys derived from
``PYNOMALY_MASTER_KEY``, else (with a warning) the public keys published in
the store itself.

What the auditor holds besides the public key decides the rest:

* ``--anchor FILE`` (repeatable; ``--anchors`` is the old spelling): checkpoints
  kept outside the database (the file anchor, syslog lines exported to a
  file, a handler's JSON Lines); ``--anchor-redis URL`` reads the Redis anchor.
  Without either, the default file anchor of the settings is used if it
  exists. A trail whose checkpoints were anchored fails without its anchor.
* ``--min-records N``: the chain must reach seq N (a length noted earlier).
* ``--expect-head [SEQ:]HASH``: the chain must contain this head (the
  ``head`` of an earlier ``OK`` line).
* ``--retention-days D`` (default ``PYNOMALY_SECURITY__AUDIT_RETENTION_DAYS``):
  records missing from the start must be older than this.
* ``--tenant ID``: also check that tenant's records (issue 21): numbered 1, 2, 3,
  ... in chain order, none missing (``audit/tenants.py``); the OK line says how many.

``audit export`` prints JSON Lines of decrypted records (needs the master
key), one line per request of an access batch, in time order, filtered by
``--since/--until`` (ISO 8601 or Unix seconds), ``--user-id``,
``--event-type`` and ``--standard``.

``audit public-key`` prints the checkpoint public key(s) as PEM, to pin.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from pynomaly_security.audit import AuditTrail, ComplianceStandard, verify_store
from pynomaly_security.audit.anchor import (
    default_anchor_path,
    load_anchor_file,
    load_redis_anchors,
)
from pynomaly_security.audit.sealing import AuditKeys, signing_key_id
from pynomaly_security.audit.stores import AuditStore, Checkpoint
from pynomaly_security.audit.verify import Expectations
from pynomaly_security.crypto.keys import KeyRing
from pynomaly_security.exceptions import SecurityError
from pynomaly_security.settings import load_settings
from pynomaly_security.storage import StorageRegistry

__all__ = ["load_anchors", "load_public_keys", "register"]

EXIT_OK, EXIT_FAULT, EXIT_USAGE = 0, 1, 2


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("audit", help="Verify or export the audit trail.")
    sub = parser.add_subparsers(dest="audit_command", metavar="ACTION", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--db", help="audit store URL (default: PYNOMALY_SECURITY__AUDIT_DB_URL)")
        p.add_argument("--prefix", default="audit", help="table prefix (default: audit)")

    verify = sub.add_parser("verify", help="Verify the hash chain and signed checkpoints.")
    common(verify)
    verify.add_argument("--public-key", type=Path, help="PEM file of trusted public key(s)")
    verify.add_argument(
        "--anchor",
        "--anchors",
        dest="anchors",
        type=Path,
        action="append",
        help="JSON Lines of checkpoints kept outside the store (repeatable)",
    )
    verify.add_argument("--anchor-redis", metavar="URL", help="read the Redis list anchor")
    verify.add_argument(
        "--min-records", type=int, metavar="N", help="the chain must reach at least seq N"
    )
    verify.add_argument(
        "--expect-head",
        type=_head,
        metavar="[SEQ:]HASH",
        help="a head (from an earlier OK line) the chain must contain",
    )
    verify.add_argument(
        "--retention-days",
        type=float,
        help="records pruned from the start must be older than this (default: the setting)",
    )
    verify.add_argument("--tenant", metavar="ID", help="also check this tenant's records")
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    verify.set_defaults(func=_verify)

    export = sub.add_parser("export", help="Export decrypted records as JSON Lines.")
    common(export)
    export.add_argument("--since", type=_time, help="ISO 8601 or Unix seconds (inclusive)")
    export.add_argument("--until", type=_time, help="ISO 8601 or Unix seconds (exclusive)")
    export.add_argument("--user-id")
    export.add_argument("--event-type")
    export.add_argument("--standard", choices=[s.value for s in ComplianceStandard])
    export.set_defaults(func=_export)

    pub = sub.add_parser("public-key", help="Print the checkpoint public key(s) as PEM.")
    pub.set_defaults(func=_public_key)


def _time(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is neither ISO 8601 nor Unix seconds") from exc
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()


def load_public_keys(path: Path) -> dict[str, bytes]:
    """Every Ed25519 public key in a PEM file, by key id."""
    keys: dict[str, bytes] = {}
    text = path.read_text()
    for block in text.split("-----END PUBLIC KEY-----"):
        if "-----BEGIN PUBLIC KEY-----" not in block:
            continue
        pem = (block.strip() + "\n-----END PUBLIC KEY-----\n").encode()
        key = serialization.load_pem_public_key(pem)
        if not isinstance(key, Ed25519PublicKey):
            raise SecurityError(f"{path}: not an Ed25519 public key")
        raw = key.public_bytes_raw()
        keys[signing_key_id(raw)] = raw
    if not keys:
        raise SecurityError(f"{path}: no PEM public key found")
    return keys


def load_anchors(path: Path) -> list[Checkpoint]:
    """Checkpoints from a JSON Lines file (as a checkpoint handler received them)."""
    return load_anchor_file(path)


def _head(text: str) -> tuple[int | None, bytes]:
    seq_text, _, hex_text = text.rpartition(":")
    try:
        digest = bytes.fromhex(hex_text)
        seq = int(seq_text) if seq_text else None
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not [SEQ:]HEX") from exc
    if len(digest) != 32:
        raise argparse.ArgumentTypeError(f"{text!r}: a head hash is 64 hex digits")
    return seq, digest


def _keys_from_env() -> AuditKeys | None:
    settings = load_settings()
    if settings.master_key is None:
        return None
    # The retired master keys read history written before the master key changed.
    return AuditKeys(
        KeyRing.from_secret(
            settings.master_key.get_secret_value(),
            retired=[r.get_secret_value() for r in settings.retired_master_keys],
        )
    )


def _db(args: argparse.Namespace) -> str:
    return str(args.db) if args.db else load_settings().audit_db_url


def _reader(url: str, prefix: str) -> AuditStore:
    # create=False: a reader must neither write to the evidence nor report an
    # empty new database as a valid trail.
    return StorageRegistry(create=False).audit_log(url, prefix=prefix)


def _verify(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
        keys = _keys_from_env()
        pinned = load_public_keys(args.public_key) if args.public_key else None
        if pinned is None and keys is not None:
            pinned = keys.public_keys
        if pinned is None:
            print(
                "warning: no --public-key and no PYNOMALY_MASTER_KEY: checkpoint signatures are"
                " checked against keys stored in the database itself (not pinned)",
                file=sys.stderr,
            )
        url = _db(args)
        paths: list[Path] = list(args.anchors or [])
        if not paths and not args.anchor_redis:
            default = default_anchor_path(settings.model_copy(update={"audit_db_url": url}))
            if default is not None and default.exists():
                print(f"using the anchor file {default}", file=sys.stderr)
                paths.append(default)
        anchors = [cp for path in paths for cp in load_anchor_file(path)]
        if args.anchor_redis:
            anchors += asyncio.run(
                load_redis_anchors(args.anchor_redis, settings.audit_anchor_redis_key)
            )
        retention = (
            args.retention_days
            if args.retention_days is not None
            else float(settings.audit_retention_days)
        )
        expect = Expectations(
            anchors=anchors,
            anchor_given=bool(paths) or bool(args.anchor_redis),
            min_records=args.min_records,
            expect_head=args.expect_head,
            retention_days=retention,
            tenant=args.tenant,
        )
        result = asyncio.run(_run_verify(url, args.prefix, pinned, keys, expect))
    except (SecurityError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(result.to_dict()))
    elif result.ok:
        print(f"OK: {result.message}")
    else:
        print(f"FAIL seq={result.first_bad_seq} {result.problem}: {result.message}")
    return EXIT_OK if result.ok else EXIT_FAULT


async def _run_verify(
    url: str,
    prefix: str,
    pinned: dict[str, bytes] | None,
    keys: AuditKeys | None,
    expect: Expectations,
) -> Any:
    store = _reader(url, prefix)
    await store.open()
    try:
        return await verify_store(store, public_keys=pinned, keys=keys, expect=expect)
    finally:
        await store.aclose()


def _export(args: argparse.Namespace) -> int:
    try:
        keys = _keys_from_env()
        if keys is None:
            print("error: export decrypts records: set PYNOMALY_MASTER_KEY", file=sys.stderr)
            return EXIT_USAGE
        count = asyncio.run(_run_export(_db(args), args, keys))
    except SecurityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"exported {count} records", file=sys.stderr)
    return EXIT_OK


async def _run_export(url: str, args: argparse.Namespace, keys: AuditKeys) -> int:
    # The read side only: nothing is written, no writer task is started.
    logger = AuditTrail(_reader(url, args.prefix), keys)
    await logger.store.open()
    count = 0
    try:
        # Streamed in time order, access batches expanded (no offset paging).
        async for row in logger.iter_entries(
            since=args.since,
            until=args.until,
            user_id=args.user_id,
            event_type=args.event_type,
            standard=args.standard,
        ):
            sys.stdout.write(json.dumps(row, sort_keys=True, default=str) + "\n")
            count += 1
    finally:
        await logger.store.aclose()
    return count


def _public_key(args: argparse.Namespace) -> int:
    try:
        keys = _keys_from_env()
    except SecurityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if keys is None:
        print("error: set PYNOMALY_MASTER_KEY to derive the public key", file=sys.stderr)
        return EXIT_USAGE
    for raw in keys.public_keys.values():
        pem = Ed25519PublicKey.from_public_bytes(raw).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        sys.stdout.write(pem.decode())
    return EXIT_OK
