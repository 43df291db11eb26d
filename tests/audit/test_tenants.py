"""Audit records bound to tenants (issue 21), on the SQLite and PostgreSQL stores: the
tenant and its record number are hashed columns, queries filter on them, the tenant's
own subject key shreds its anonymous personal data, and a tenant is verified."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from pynomaly_security.audit import AuditLogger, SecurityEventType
from pynomaly_security.audit.verify import Expectations
from pynomaly_security.tenancy.context import tenant_scope
from tests.audit.conftest import make_settings
from tests.audit.test_stores import StoreFactory
from tests.audit.test_stores import make_logger as make_logger  # the fixture, for pytest

pytestmark = pytest.mark.anyio


async def _write(audit: AuditLogger) -> None:
    """In acme and globex: a failed sign-in naming no user and an anonymous request;
    one platform request."""
    tenants = audit.bind_tenants()
    for i, tenant in enumerate(("acme", "globex")):
        with tenant_scope(tenant):
            await audit.log_security_event(
                SecurityEventType.LOGIN_FAILURE, "bad password",
                details={"username": f"ann@{tenant}"}, source_ip=f"192.0.2.{i + 1}",
            )  # fmt: skip
        tenants.note(f"r-{tenant}", tenant)
        audit.log_request(
            method="GET", path=f"/{tenant}", status_code=200, duration_ms=1.0,
            request_id=f"r-{tenant}", client_ip=f"198.51.100.{i + 1}",
        )  # fmt: skip
    audit.log_request(
        method="GET", path="/health", status_code=200, duration_ms=1.0, request_id="r-platform"
    )
    await audit.flush()


async def test_records_carry_their_tenant_and_a_tenant_is_verified(
    make_logger: StoreFactory,
) -> None:
    async with make_logger() as audit:
        await _write(audit)
        acme = await audit.query(tenant="acme", limit=100)
        assert {r["tenant"] for r in acme} == {"acme"}
        assert sorted(r["kind"] for r in acme) == ["request", "security"]
        assert sorted(r["tenant_seq"] for r in acme) == [1, 2]
        platform = [r for r in await audit.query(limit=100) if "tenant" not in r]
        assert [r.get("path") for r in platform] == ["/health"]
        result = await audit.verify(tenant="acme")
        assert result.ok and result.tenant_records == 2, result.message
        assert "tenant 'acme': 2 records numbered 1..2, none missing" in result.message

        # Deleting globex shreds its personal data, anonymous clients' included; not acme's.
        with tenant_scope("globex"):
            await audit.log_security_event(SecurityEventType.LOGIN_SUCCESS, "hi", user_id="bob")
        assert await audit.erase_tenant("globex") == 2  # bob, and the tenant's own subject
        globex = await audit.query(tenant="globex", limit=100)
        assert {r["source_ip"] for r in globex} == {"[erased]"}
        login = next(r for r in globex if r["kind"] == "security")
        assert login["details"] == {"username": "[erased]"} and login["message"] == "bad password"
        acme = await audit.query(tenant="acme", limit=100)
        assert {r["source_ip"] for r in acme} == {"192.0.2.1", "198.51.100.1"}
        assert {r["user_id"] for r in acme} == {None}
        assert "ann@globex" not in str(await audit.query(limit=100))
        assert "bob" not in str(await audit.query(tenant="globex", limit=100))
        for tenant in (None, "acme", "globex"):
            assert (await audit.verify(tenant=tenant)).ok


async def test_a_deleted_record_is_reported_for_its_tenant(tmp_path: Path) -> None:
    """Deleting one of acme's records fails the chain and acme's verification; an older
    store (no tenant columns) gets them at its next open and still verifies."""
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    async with AuditLogger.from_settings(make_settings(url)) as audit:
        await audit.log_security_event(SecurityEventType.LOGIN_FAILURE, "before tenancy")
    with sqlite3.connect(tmp_path / "audit.db") as db:  # as a store written before issue 21
        db.execute("DROP INDEX audit_records_tenant")
        db.execute("ALTER TABLE audit_records DROP COLUMN tenant")
        db.execute("ALTER TABLE audit_records DROP COLUMN tenant_seq")
    async with AuditLogger.from_settings(make_settings(url)) as audit:
        await _write(audit)
        assert (await audit.verify(tenant="acme")).ok
    with sqlite3.connect(tmp_path / "audit.db") as db:
        seq = db.execute(
            "SELECT seq FROM audit_records WHERE tenant = 'acme' AND tenant_seq = 1"
        ).fetchone()[0]
        db.execute("DELETE FROM audit_records WHERE seq = ?", (seq,))
    async with AuditLogger.from_settings(make_settings(url)) as audit:
        result = await audit.verify(tenant="acme")
        assert not result.ok and result.first_bad_seq == seq
        assert result.problem == "deleted"


async def test_a_rewritten_chain_still_shows_the_tenant_gap(tmp_path: Path) -> None:
    """Someone with write access deletes one of acme's records, renumbers and re-hashes
    the chain, and re-signs one checkpoint with a key of their own published in the store:
    an unpinned verification of the chain passes; acme's numbers still show the gap."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from pynomaly_security.audit.chain import checkpoint_message, record_hash
    from pynomaly_security.audit.sealing import signing_key_id
    from pynomaly_security.audit.stores._sql import COLUMNS, to_record
    from pynomaly_security.audit.verify import verify_store
    from pynomaly_security.storage import StorageRegistry

    url = f"sqlite:///{tmp_path / 'audit.db'}"
    async with AuditLogger.from_settings(make_settings(url)) as audit:
        await _write(audit)
        await _write(audit)  # acme's records 1..4
    impostor = Ed25519PrivateKey.generate()
    raw = impostor.public_key().public_bytes_raw()
    with sqlite3.connect(tmp_path / "audit.db") as db:
        (gone,) = db.execute(
            "SELECT seq FROM audit_records WHERE tenant = 'acme' AND tenant_seq = 2"
        ).fetchone()
        db.execute("DELETE FROM audit_records WHERE seq = ?", (gone,))
        db.execute("UPDATE audit_records SET seq = -(seq - 1) WHERE seq > ?", (gone,))
        db.execute("UPDATE audit_records SET seq = -seq WHERE seq < 0")
        prev = bytes(32)
        for row in db.execute(f"SELECT {COLUMNS} FROM audit_records ORDER BY seq").fetchall():
            rec = dataclasses.replace(to_record(row), prev_hash=prev)
            prev = record_hash(rec)
            db.execute(
                "UPDATE audit_records SET prev_hash = ?, hash = ? WHERE seq = ?",
                (rec.prev_hash, prev, rec.seq),
            )
        head = db.execute("SELECT MAX(seq) FROM audit_records").fetchone()[0]
        db.execute("DELETE FROM audit_checkpoints")
        db.execute("DELETE FROM audit_public_keys")
        db.execute(
            "INSERT INTO audit_checkpoints VALUES (?, ?, ?, ?, ?)",
            (head, prev, 1, signing_key_id(raw), impostor.sign(checkpoint_message(head, prev, 1))),
        )
        db.execute("INSERT INTO audit_public_keys VALUES (?, ?)", (signing_key_id(raw), raw))
    storage = StorageRegistry()
    async with storage.audit_log(url) as store:
        assert (await verify_store(store)).ok  # consistent, and signed (by the rewriter)
        result = await verify_store(store, expect=Expectations(tenant="acme"))
    await storage.aclose()
    assert not result.ok and result.problem == "tenant_gap", result.message
    assert "number 3 of tenant 'acme' where 2 was due" in result.message
