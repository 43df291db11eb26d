"""Data written before the one key ring (issue 13) reads with today's code.

``data/legacy_keys.db`` (an audit trail) and ``data/legacy_keys.json`` (field,
vault and TOTP ciphertexts, digests of purpose keys) were written by the code
of ``main`` before ``audit/_keys.py`` was folded into ``crypto/keys.py``, with
``data/make_legacy_keys.py``. The trail was written under an old master key,
then under a new one with the old one retired, as an operator replacing the
master key would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
from pathlib import Path
from typing import Any

import pyotp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from pynomaly_security.__main__ import main as cli_main
from pynomaly_security.audit import AuditTrail
from pynomaly_security.audit.anchor import load_anchor_file
from pynomaly_security.audit.sealing import AuditKeys, signing_key_id
from pynomaly_security.auth.factory import auth_parts
from pynomaly_security.auth.totp import TOTPManager
from pynomaly_security.crypto import (
    DataEncryption,
    EncryptionContext,
    FieldEncryption,
    KeyRing,
    normalize_casefold,
)
from pynomaly_security.exceptions import InvalidToken
from pynomaly_security.settings import SecuritySettings
from pynomaly_security.storage import StorageRegistry
from pynomaly_security.storage.memory import MemoryStore

DATA = Path(__file__).parent / "data"
FIXTURE: dict[str, Any] = json.loads((DATA / "legacy_keys.json").read_text())
OLD, NEW = FIXTURE["master_key_old"], FIXTURE["master_key_new"]


def _pinned() -> dict[str, bytes]:
    pem = FIXTURE["audit"]["public_keys_pem"]
    out: dict[str, bytes] = {}
    for block in pem.split("-----END PUBLIC KEY-----")[:-1]:
        key = serialization.load_pem_public_key((block + "-----END PUBLIC KEY-----\n").encode())
        assert isinstance(key, Ed25519PublicKey)
        out[signing_key_id(key.public_bytes_raw())] = key.public_bytes_raw()
    return out


@pytest.fixture
def trail_db(tmp_path: Path) -> str:
    """A copy of the legacy trail (reading must not change the committed file)."""
    shutil.copy(DATA / "legacy_keys.db", tmp_path / "audit.db")
    return f"sqlite:///{tmp_path / 'audit.db'}"


async def _read(db_url: str, ring: KeyRing) -> tuple[Any, list[dict[str, Any]]]:
    trail = AuditTrail(StorageRegistry(create=False).audit_log(db_url), AuditKeys(ring))
    await trail.store.open()
    try:
        anchors = load_anchor_file(DATA / "legacy_keys.anchors.jsonl")
        result = await trail.verify(public_keys=_pinned(), anchors=anchors)
        rows = await trail.query(limit=100)
    finally:
        await trail.store.aclose()
    return result, rows


def _summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = ("seq", "message", "user_id", "source_ip", "path", "details")
    return [{k: r.get(k) for k in keys} for r in rows]


@pytest.mark.anyio
async def test_legacy_trail_verifies_and_decrypts_with_the_retired_master_key(
    trail_db: str,
) -> None:
    """The new master key with the old one retired verifies the chain, the checkpoint
    signatures of both keys (pinned) and the anchors, and decrypts every record and
    subject field, under both master key ids, exactly as the old code read them."""
    ring = KeyRing.from_secret(NEW, retired=[OLD])
    result, rows = await _read(trail_db, ring)
    assert result.ok, result.message
    assert result.pinned_keys and result.checkpoints >= 2
    assert _summary(rows) == FIXTURE["audit"]["rows"]
    assert sorted({r["key_id"] for r in rows}) == FIXTURE["audit"]["key_ids"]
    assert sorted(ring.master_ids) == FIXTURE["audit"]["key_ids"]
    assert set(AuditKeys(ring).public_keys) == set(_pinned())


@pytest.mark.anyio
async def test_without_the_retired_key_old_records_are_unreadable_but_verify(
    trail_db: str,
) -> None:
    """Dropping the retired key loses the old records' contents, never the chain's proof."""
    result, rows = await _read(trail_db, KeyRing.from_secret(NEW))
    assert result.ok, result.message
    readable = [r for r in rows if r.get("payload") != "[undecryptable]"]
    assert {r["key_id"] for r in readable} == {KeyRing.from_secret(NEW).master_ids[0]}
    assert any(r.get("payload") == "[undecryptable]" for r in rows)


def test_legacy_purpose_keys_derive_unchanged() -> None:
    """Every versioned purpose key (and a tenant's) is the one the old ring derived."""
    ring = KeyRing.from_secret(OLD, current_version=2)
    for name, digest in FIXTURE["purpose_keys"].items():
        purpose_version, _, tenant = name.partition("/tenant=")
        purpose, _, version = purpose_version.rpartition("@")
        key = ring.key(purpose, int(version), tenant=tenant or None)
        assert hashlib.sha256(key).hexdigest() == digest, name


@pytest.mark.parametrize("retired", [False, True], ids=["same-master", "master-replaced"])
def test_legacy_fields_records_vault_and_totp_decrypt(retired: bool) -> None:
    """Field tokens (both algorithms, both versions), records with blind indexes, vault
    entries and TOTP secrets written by the old code decrypt; after a master-key change
    they decrypt through the retired key and are reported stale (``keys rotate``
    rewrites them)."""
    if retired:
        ring = KeyRing.from_secret(NEW, retired=[OLD], current_version=2)
    else:
        ring = KeyRing.from_secret(OLD, current_version=2)
    for sample in FIXTURE["fields"]:
        enc = DataEncryption(keyring=ring)
        context = EncryptionContext(*sample["context"])
        assert enc.decrypt_sensitive_data(sample["token"], str, context=context) == sample["plain"]
        assert enc.open(sample["token"], context=context)[1] is (
            retired or enc.key_id(sample["token"]) == 1 or sample["token"].startswith("pn1.f.")
        )
    fields = FieldEncryption(DataEncryption(keyring=ring))
    fields.register_encrypted_field("users", "ssn")
    fields.register_encrypted_field(
        "users", "email", blind_index=True, normalize=normalize_casefold
    )
    for sample in FIXTURE["records"]:
        stored = sample["stored"]
        assert fields.decrypt_record("users", stored) == sample["plain"]
        candidates = fields.blind_index_candidates("users", "email", sample["plain"]["email"])
        assert stored["email_bidx"] in candidates
        rotated = fields.rotate_record("users", stored)
        if retired or stored["ssn"].startswith("pn1.f.1."):
            assert rotated is not None
            assert fields.decrypt_record("users", rotated) == sample["plain"]
            assert fields.rotate_record("users", rotated) is None
    tokens = DataEncryption(keyring=ring, algorithm="aes_gcm", purpose="tokens")
    for entry in FIXTURE["vault"]:
        context = EncryptionContext("token_vault", "value", entry["token"])
        assert tokens.decrypt(entry["ciphertext"], context=context).decode() == entry["plain"]
        version = int(entry["fingerprint"].split(":")[0])
        found = [
            f"{version}:"
            + hmac.new(
                ring.key("token-fingerprint", version, master=m),
                entry["plain"].encode(),
                hashlib.sha256,
            ).hexdigest()
            for m in ring.masters
        ]
        assert entry["fingerprint"] in found
    totp = ring.fernet("totp")
    for sample in FIXTURE["totp"]:
        assert totp.decrypt(sample["token"].encode()).decode() == sample["plain"]


def _rotated_totp() -> TOTPManager:
    """The authenticator's TOTP part after KEY_VERSION=2 and a master-key change."""
    settings = SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        master_key=NEW,
        retired_master_keys=[OLD],
        key_version=2,
    )
    return auth_parts(settings, MemoryStore())["totp"]


def test_legacy_totp_secret_reads_through_the_authenticator_cipher() -> None:
    """The authenticator's TOTP cipher comes from the ring and reads the old secrets."""
    totp = _rotated_totp()
    for sample in FIXTURE["totp"]:
        expected = pyotp.TOTP(sample["plain"]).at(1_700_000_000)
        assert totp.now_code(sample["token"], at=1_700_000_000) == expected


def test_a_wrong_master_key_reads_nothing() -> None:
    """A master key that never wrote the data is refused as an opaque InvalidToken."""
    ring = KeyRing.from_secret(base64.urlsafe_b64encode(bytes(32)).decode(), current_version=2)
    sample = FIXTURE["fields"][0]
    with pytest.raises(InvalidToken):
        DataEncryption(keyring=ring).decrypt(
            sample["token"], context=EncryptionContext(*sample["context"])
        )


def test_audit_cli_reads_history_with_the_retired_master_key(
    trail_db: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`audit verify`, `export` and `public-key` take the retired master keys from
    PYNOMALY_SECURITY__RETIRED_MASTER_KEYS: the legacy trail verifies pinned to both
    checkpoint keys, exports every record readable, and both public keys are printed."""
    monkeypatch.setenv("PYNOMALY_MASTER_KEY", NEW)
    monkeypatch.setenv("PYNOMALY_SECURITY__RETIRED_MASTER_KEYS", OLD)
    anchors = str(DATA / "legacy_keys.anchors.jsonl")
    assert cli_main(["audit", "verify", "--db", trail_db, "--anchor", anchors]) == 0
    assert capsys.readouterr().out.startswith("OK: 7 records verified")
    assert cli_main(["audit", "export", "--db", trail_db]) == 0
    exported = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert _summary(exported) == FIXTURE["audit"]["rows"]
    assert cli_main(["audit", "public-key"]) == 0
    printed = capsys.readouterr().out.split("-----END PUBLIC KEY-----\n")
    assert sorted(printed) == sorted(
        FIXTURE["audit"]["public_keys_pem"].split("-----END PUBLIC KEY-----\n")
    )


def test_recovery_codes_survive_a_version_bump_and_a_master_key_change() -> None:
    """A recovery code digested under the old master key at version 1 (as the old
    factory did) still matches after KEY_VERSION=2 and a new master key with the old
    one retired; new codes are digested under the new master key's current version."""
    code = "ABCDE-FGHIJ"
    old_key = KeyRing.from_secret(OLD).key("totp-recovery")
    stored = hmac.new(old_key, b"ABCDEFGHIJ", hashlib.sha256).hexdigest()
    totp = _rotated_totp()
    assert totp.match_recovery_code(["0" * 64, stored], code) == stored
    assert totp.match_recovery_code(["0" * 64], code) is None
    codes, digests = totp.new_recovery_codes(1)
    new_key = KeyRing.from_secret(NEW, current_version=2).key("totp-recovery")
    normalized = codes[0].replace("-", "").encode()
    assert digests[0] == hmac.new(new_key, normalized, hashlib.sha256).hexdigest()
