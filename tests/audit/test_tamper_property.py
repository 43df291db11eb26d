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
from pynomaly_security.audit._keys import AuditKeys
from pynomaly_security.audit.stores.sqlite import SQLiteAuditStore

COLUMNS = ["ts_us", "kind", "event_type", "level", "standards", "request_id", "key_id", "payload"]


async def _populate(db: Path, master_key: str) -> None:
    keys = AuditKeys.from_secret(master_key, development_mode=False)
    async with AuditLogger(SQLiteAuditStore(f"sqlite:///{db}"), keys, checkpoint_every=7) as audit:
        for i in range(30):
            await audit.log_security_event(SecurityEventType.ACCESS_DENIED, f"m{i}", user_id="u")


async def _verify(db: Path, master_key: str) -> bool:
    keys = AuditKeys.from_secret(master_key, development_mode=False)
    store: AuditStore = SQLiteAuditStore(f"sqlite:///{db}")
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
