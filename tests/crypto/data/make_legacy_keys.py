"""Write ``legacy_keys.db`` and ``legacy_keys.json`` with the code of ``main`` before the
one key ring (issue 13, item 2): run once against that checkout, e.g.

    git worktree add /tmp/old <commit before the key ring>
    cd /tmp/old && python <this file> <output dir>

The committed files are what ``test_legacy_keys.py`` reads with today's code. Every
value is fixed (the master keys are test keys, never secrets), except nonces and the
random subject keys, which the test does not need to predict.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import importlib
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, MultiFernet

from pynomaly_security.audit import AuditLogger
from pynomaly_security.audit.records import SecurityEventType
from pynomaly_security.audit.stores.sqlite import SQLiteAuditStore
from pynomaly_security.crypto import DataEncryption, EncryptionContext, FieldEncryption, KeyRing
from pynomaly_security.crypto.fields import normalize_casefold

# Only the code before the one key ring has this module (run against that checkout).
AuditKeys: Any = importlib.import_module("pynomaly_security.audit._keys").AuditKeys

OLD = base64.urlsafe_b64encode(bytes(range(32))).decode()
NEW = base64.urlsafe_b64encode(bytes(range(32, 64))).decode()
OLD_TOTP, NEW_TOTP = "JBSWY3DPEHPK3PXP" * 2, "KRSXG5CTMVRXEZLU" * 2
CLOCK = [1_700_000_000.0]


def _tick() -> float:
    CLOCK[0] += 1.0
    return CLOCK[0]


async def _audit(db: Path, anchors: Path) -> dict[str, Any]:
    url = f"sqlite:///{db}"
    old = AuditKeys.from_secret(OLD, development_mode=False)
    async with AuditLogger(
        SQLiteAuditStore(url), old, clock=_tick, anchor_file=anchors, flush_interval_ms=20
    ) as audit:
        await audit.log_security_event(
            SecurityEventType.LOGIN_FAILURE, "bad password", user_id="alice",
            source_ip="192.0.2.1", details={"email": "alice@example.com", "attempt": 1},
        )  # fmt: skip
        await audit.log_audit_event("read", "invoice:7", user_id="bob", details={"n": 2})
        for n in range(4):
            audit.log_request(
                method="GET", path=f"/r/{n}", status_code=200, duration_ms=1.5,
                request_id=f"rid-{n}", client_ip="192.0.2.9",
                user_id=("carol" if n % 2 else None), timestamp=_tick(),
            )  # fmt: skip
        await audit.log_security_event(SecurityEventType.ACCESS_DENIED, "denied", user_id="dave")
        await audit.erase_subject("dave")
    # The master key changes: the new one writes, the old one (retired) reads history.
    rotated = AuditKeys.from_secret(NEW, development_mode=False, retired=(OLD,))
    async with AuditLogger(
        SQLiteAuditStore(url), rotated, clock=_tick, anchor_file=anchors, flush_interval_ms=20
    ) as audit:
        await audit.log_security_event(
            SecurityEventType.KEY_ROTATION, "master key replaced", user_id="alice",
            details={"ip": "192.0.2.1"},
        )  # fmt: skip
        audit.log_request(
            method="POST", path="/after", status_code=201, duration_ms=2.0,
            request_id="rid-after", client_ip="192.0.2.10", user_id="alice", timestamp=_tick(),
        )  # fmt: skip
        pem = audit.public_key_pem().decode()
        old_pem = AuditKeys.from_secret(OLD, development_mode=False).public_key_pem().decode()
    # Read once everything is flushed and signed, as the test reads it.
    async with AuditLogger(SQLiteAuditStore(url), rotated, clock=_tick) as audit:
        rows = await audit.query(limit=100)
    return {
        "public_keys_pem": old_pem + pem,
        "key_ids": sorted({r["key_id"] for r in rows}),
        "rows": [
            {k: r.get(k) for k in ("seq", "message", "user_id", "source_ip", "path", "details")}
            for r in rows
        ],
    }


def _data() -> dict[str, Any]:
    raw = base64.urlsafe_b64decode(OLD)
    out: dict[str, Any] = {"fields": [], "records": [], "vault": [], "purpose_keys": {}}
    ring2 = KeyRing(raw, current_version=2)
    for version in (1, 2):
        ring = KeyRing(raw, current_version=version)
        for alg in ("fernet", "aes_gcm"):
            enc = DataEncryption(keyring=ring, algorithm=alg)  # type: ignore[arg-type]
            ctx = EncryptionContext("users", "ssn", f"u{version}")
            out["fields"].append(
                {"token": enc.encrypt_sensitive_data(f"123-45-000{version}", context=ctx),
                 "context": [ctx.table, ctx.field, ctx.record_id],
                 "plain": f"123-45-000{version}"}
            )  # fmt: skip
        fields = FieldEncryption(DataEncryption(keyring=ring))
        fields.register_encrypted_field("users", "ssn")
        fields.register_encrypted_field(
            "users", "email", blind_index=True, normalize=normalize_casefold
        )
        plain = {"id": f"u{version}", "ssn": f"999-00-000{version}", "email": f"P{version}@Ex.org"}
        out["records"].append({"plain": plain, "stored": fields.encrypt_record("users", plain)})
        tokens = DataEncryption(keyring=ring, algorithm="aes_gcm", purpose="tokens")
        token = f"tok_{version}"
        fp = hmac.new(ring.key("token-fingerprint"), b"4111", hashlib.sha256).hexdigest()
        vault_ctx = EncryptionContext("token_vault", "value", token)
        out["vault"].append(
            {"token": token, "plain": "4111", "fingerprint": f"{version}:{fp}",
             "ciphertext": tokens.encrypt(b"4111", context=vault_ctx)}
        )  # fmt: skip
    # TOTP secrets: the MultiFernet auth/factory.py built by hand (newest version first).
    cipher = MultiFernet([Fernet(base64.urlsafe_b64encode(ring2.key("totp", v))) for v in (2, 1)])
    old_cipher = Fernet(base64.urlsafe_b64encode(KeyRing(raw).key("totp", 1)))
    out["totp"] = [
        {"plain": OLD_TOTP, "token": old_cipher.encrypt(OLD_TOTP.encode()).decode()},
        {"plain": NEW_TOTP, "token": cipher.encrypt(NEW_TOTP.encode()).decode()},
    ]
    # Digests of every purpose key: the derivations the labels must keep giving.
    for purpose in ("fields", "tokens", "token-fingerprint", "totp", "totp-recovery", "jwt",
                    "jwt-2", "blind-index:users.email"):  # fmt: skip
        for version in (1, 2):
            key = ring2.key(purpose, version)
            out["purpose_keys"][f"{purpose}@{version}"] = hashlib.sha256(key).hexdigest()
    out["purpose_keys"]["fields@1/tenant=acme"] = hashlib.sha256(
        ring2.key("fields", 1, tenant="acme")
    ).hexdigest()
    return out


def main(target: Path) -> None:
    db, anchors = target / "legacy_keys.db", target / "legacy_keys.anchors.jsonl"
    for path in (db, anchors):
        path.unlink(missing_ok=True)
    conn = sqlite3.connect(db)  # small pages: the fixture stays a few KB
    conn.execute("PRAGMA page_size=512")
    conn.execute("CREATE TABLE _init (x)")
    conn.execute("DROP TABLE _init")
    conn.commit()
    conn.close()
    doc = {"master_key_old": OLD, "master_key_new": NEW, "audit": asyncio.run(_audit(db, anchors))}
    doc.update(_data())
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("VACUUM")
    conn.close()
    (target / "legacy_keys.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
