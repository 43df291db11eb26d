"""Property: any single-row deletion, column edit or swap of neighbours is detected."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pynomaly_security.audit import AuditLogger, AuditStore, SecurityEventType, verify_store
from pynomaly_security.audit.sealing import AuditKeys
from pynomaly_security.crypto import KeyRing
from pynomaly_security.storage import StorageRegistry

COLUMNS = ["ts_us", "kind", "event_type", "level", "standards", "request_id", "key_id", "payload"]


def _store(url: str) -> AuditStore:
    """An audit store on a registry of its own (closed with the store)."""
    return StorageRegistry().audit_log(url)


async def _populate(db: Path, master_key: str, anchor: Path | None = None) -> None:
    keys = AuditKeys(KeyRing.from_secret(master_key))
    store = _store(f"sqlite:///{db}")
    async with AuditLogger(store, keys, checkpoint_every=7, anchor_file=anchor) as audit:
        for i in range(30):
            await audit.log_security_event(SecurityEventType.ACCESS_DENIED, f"m{i}", user_id="u")


async def _verify(db: Path, master_key: str) -> bool:
    keys = AuditKeys(KeyRing.from_secret(master_key))
    store: AuditStore = _store(f"sqlite:///{db}")
    await store.open()
    try:
        return (await verify_store(store, public_keys=keys.public_keys)).ok
    finally:
        await store.aclose()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, master_key: str) -> Path:
    db = tmp_path_factory.mktemp("pristine") / "audit.db"
    asyncio.run(_populate(db, master_key))
    return db


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    op=st.sampled_from(["delete", "edit", "swap"]),
    seq=st.integers(min_value=1, max_value=29),
    column=st.sampled_from(COLUMNS),
)
def test_any_single_tampering_is_detected(
    pristine: Path, tmp_path: Path, master_key: str, op: str, seq: int, column: str
) -> None:
    """Without the key (signature and chain only), every such change fails verification."""
    db = tmp_path / f"{op}-{seq}-{column}.db"
    shutil.copy(pristine, db)
    with sqlite3.connect(db) as conn:
        if op == "delete":
            conn.execute("DELETE FROM audit_records WHERE seq = ?", (seq,))
        elif op == "swap":
            conn.execute("UPDATE audit_records SET seq = -1 WHERE seq = ?", (seq,))
            conn.execute("UPDATE audit_records SET seq = ? WHERE seq = ?", (seq, seq + 1))
            conn.execute("UPDATE audit_records SET seq = ? WHERE seq = -1", (seq + 1,))
        elif column == "payload":
            conn.execute(
                "UPDATE audit_records SET payload = payload || x'00' WHERE seq = ?", (seq,)
            )
        else:
            conn.execute(
                f"UPDATE audit_records SET {column} = coalesce({column}, '') || '9' WHERE seq = ?",
                (seq,),
            )
    assert not asyncio.run(_verify(db, master_key))


@pytest.fixture(scope="module")
def pristine_anchored(tmp_path_factory: pytest.TempPathFactory, master_key: str) -> Path:
    db = tmp_path_factory.mktemp("anchored") / "audit.db"
    asyncio.run(_populate(db, master_key, Path(f"{db}.anchors.jsonl")))
    return db


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    keep=st.integers(min_value=0, max_value=29),
    checkpoints_too=st.booleans(),
    from_start=st.booleans(),
)
def test_any_truncation_is_detected(
    pristine_anchored: Path,
    tmp_path: Path,
    master_key: str,
    keep: int,
    checkpoints_too: bool,
    from_start: bool,
) -> None:
    """Deleting the newest records (with or without their checkpoints), or the oldest ones
    (inside the retention period), fails verification against the public key and anchor."""
    from pynomaly_security.audit.anchor import load_anchor_file
    from pynomaly_security.audit.verify import Expectations

    db = tmp_path / f"cut-{keep}-{checkpoints_too}-{from_start}.db"
    shutil.copy(pristine_anchored, db)
    with sqlite3.connect(db) as conn:
        if from_start:
            conn.execute("DELETE FROM audit_records WHERE seq <= ?", (keep + 1,))
        else:
            conn.execute("DELETE FROM audit_records WHERE seq > ?", (keep,))
            if checkpoints_too:
                conn.execute("DELETE FROM audit_checkpoints WHERE seq > ?", (keep,))

    async def verify() -> bool:
        keys = AuditKeys(KeyRing.from_secret(master_key))
        store: AuditStore = _store(f"sqlite:///{db}")
        anchors = load_anchor_file(Path(f"{pristine_anchored}.anchors.jsonl"))
        expect = Expectations(anchors=anchors, anchor_given=True, retention_days=365)
        await store.open()
        try:
            return (await verify_store(store, public_keys=keys.public_keys, expect=expect)).ok
        finally:
            await store.aclose()

    assert not asyncio.run(verify())
