"""The backend registry: one connection pool per URL, shared by every component naming it,
opened and closed by the stack's lifespan; capabilities a backend lacks refused at construction."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
import uuid
from pathlib import Path

import pytest
from fastapi import FastAPI

from pynomaly_security.audit import AuditLogger
from pynomaly_security.audit.stores.base import Checkpoint
from pynomaly_security.exceptions import ConfigurationError, StorageError
from pynomaly_security.plugin import setup_security_middleware
from pynomaly_security.settings import SecuritySettings
from pynomaly_security.storage import StorageRegistry, create_store

MASTER_KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()


def _settings(tmp_path: Path, **values: object) -> SecuritySettings:
    values = {
        "master_key": MASTER_KEY,
        "audit_db_url": f"sqlite:///{tmp_path / 'audit.db'}",
        "audit_anchor_file_enabled": False,
        **values,
    }
    return SecuritySettings(_env_file=None, **values)  # type: ignore[arg-type, call-arg]


def test_one_backend_per_url_and_per_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same URL, or two spellings of one SQLite file, give the same backend."""
    monkeypatch.chdir(tmp_path)
    registry = StorageRegistry()
    assert registry.backend("memory://") is registry.backend("memory://")
    assert registry.backend("sqlite:///./a.db") is registry.backend(f"sqlite:///{tmp_path}/a.db")
    assert registry.backend("sqlite:///a.db") is not registry.backend("sqlite:///b.db")
    assert registry.store("memory://") is registry.store("memory://")


@pytest.mark.parametrize(
    ("url", "capability", "message"),
    [
        pytest.param(
            "sqlite:///x.db",
            "store",
            r"sqlite:///x.db \(REDIS_URL\): the sqlite backend has no counters, sliding windows,"
            r" key-value records or member sets .*; use one of memory://, redis://",
            id="sliding-windows-on-sqlite",
        ),
        pytest.param(
            "postgresql://u:secret@db/app",
            "store",
            r"^postgresql://db/app \(REDIS_URL\): the postgresql backend has no counters",
            id="store-on-postgres-password-not-shown",
        ),
        pytest.param(
            "memory://",
            "audit_log",
            r"the memory backend has no append-only audit log; use one of sqlite://, postgresql://",
            id="audit-on-memory",
        ),
        pytest.param(
            "redis://127.0.0.1:1/0",
            "audit_log",
            r"the redis backend has no append-only audit log",
            id="audit-on-redis",
        ),
        pytest.param(
            "memory://",
            "token_vault",
            r"the memory backend has no token vault",
            id="vault-on-memory",
        ),
        pytest.param("mongodb://x", "store", r"unknown store URL scheme 'mongodb'", id="unknown"),
    ],
)
def test_missing_capability_is_refused_at_construction(
    url: str, capability: str, message: str
) -> None:
    """Asking a backend for what it cannot keep is a ConfigurationError that names the
    URL (without its password), the setting and the backends that can."""
    registry = StorageRegistry()
    with pytest.raises(ConfigurationError, match=message):
        getattr(registry, capability)(url, setting="REDIS_URL")


def test_the_stack_refuses_a_store_url_without_shared_state(tmp_path: Path) -> None:
    """REDIS_URL naming a SQLite file fails when the stack is built, not on the first request."""
    settings = _settings(tmp_path, redis_url=f"sqlite:///{tmp_path / 'state.db'}")
    with pytest.raises(ConfigurationError, match=r"\(REDIS_URL\): the sqlite backend has no"):
        setup_security_middleware(FastAPI(), settings=settings)


def test_the_stack_refuses_an_audit_url_without_an_audit_log(tmp_path: Path) -> None:
    """AUDIT_DB_URL naming Redis fails when the stack is built."""
    settings = _settings(tmp_path, audit_db_url="redis://127.0.0.1:1/0")
    with pytest.raises(ConfigurationError, match=r"\(AUDIT_DB_URL\): the redis backend has no"):
        setup_security_middleware(FastAPI(), settings=settings)


async def _connections_named(redis_url: str, name: str) -> int:
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url)
    try:
        return sum(1 for c in await client.client_list() if c.get("name") == name)
    finally:
        await client.aclose()


@pytest.mark.anyio
@pytest.mark.redis
async def test_components_on_one_redis_url_share_one_pool(redis_url: str) -> None:
    """Two stores and a token vault on one URL use one pool (one connection when used
    one at a time); two registries, like two processes, use two."""
    name = f"pns-test-{uuid.uuid4().hex[:8]}"
    async with StorageRegistry(client_name=name) as registry:
        limits = registry.store(redis_url, key_prefix="pns-a:")
        sessions = registry.store(redis_url, key_prefix="pns-b:")
        vault = registry.token_vault(redis_url, prefix="pns-v:")
        for _ in range(5):
            await limits.incr("k", 60)
            await sessions.put("k", "v", 60)
            await vault.put(uuid.uuid4().hex, "ciphertext")
        assert await limits.get_count("k") == 5
        assert await sessions.get("k") == "v"
        assert await _connections_named(redis_url, name) == 1
        async with StorageRegistry(client_name=name) as other:
            await other.store(redis_url, key_prefix="pns-a:").incr("k", 60)
            assert await _connections_named(redis_url, name) == 2
    assert await _connections_named(redis_url, name) == 0


async def _backends_named(postgres_url: str, name: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(postgres_url)
    try:
        sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
        return int(await conn.fetchval(sql, name))
    finally:
        await conn.close()


@pytest.mark.anyio
@pytest.mark.postgres
async def test_audit_log_and_vault_on_one_postgres_url_share_one_pool(postgres_url: str) -> None:
    """The audit trail and the token vault on one database share one asyncpg pool."""
    name = f"pns-test-{uuid.uuid4().hex[:8]}"
    prefix, table = f"t_{uuid.uuid4().hex[:12]}", f"vault_{uuid.uuid4().hex[:12]}"
    async with StorageRegistry(client_name=name) as registry:
        audit = registry.audit_log(postgres_url, prefix=prefix)
        vault = registry.token_vault(postgres_url, table=table)
        async with audit:
            await audit.put_public_key("k1", b"public")
            assert await vault.put("tok", "ciphertext") == "tok"
            assert await audit.public_keys() == {"k1": b"public"}
            assert await vault.get("tok") == "ciphertext"
            assert await _backends_named(postgres_url, name) == 1
            await audit.drop()  # type: ignore[attr-defined]
            await vault._query("execute", f"DROP TABLE {table}")  # type: ignore[attr-defined]
    assert await _backends_named(postgres_url, name) == 0


@pytest.mark.anyio
async def test_audit_log_and_vault_on_one_sqlite_file_share_one_connection(tmp_path: Path) -> None:
    """On one file the audit log and the vault share one connection, and a vault write
    made while an audit append is open is not part of it: rolling the append back
    keeps the vault's row."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    registry = StorageRegistry()
    audit = registry.audit_log(url)
    vault = registry.token_vault(url)
    async with registry, audit:
        assert audit.backend is vault.backend  # type: ignore[attr-defined]
        assert registry.backend(url).connection.users == 2  # the registry and the audit log
        checkpoint = Checkpoint(seq=1, head_hash=bytes(32), ts_us=1, key_id="k", signature=b"s")
        tasks: list[asyncio.Task[str | None]] = []

        async def abandoned_append() -> None:
            async with audit.transaction() as txn:
                tasks.append(asyncio.create_task(vault.put("tok", "ciphertext")))
                await asyncio.sleep(0)
                # The file's thread works here: the vault's put could run now, but
                # it waits for the append to end.
                await txn.insert_checkpoint(checkpoint)
                assert not tasks[0].done()
                raise RuntimeError("append abandoned")

        with pytest.raises(RuntimeError, match="append abandoned"):
            await abandoned_append()
        assert await tasks[0] == "tok"
        assert await audit.checkpoints() == []
        assert await vault.get("tok") == "ciphertext"
    assert registry.backend(url).connection.value is None


@pytest.mark.anyio
async def test_vault_table_written_before_the_registry_stays_readable(tmp_path: Path) -> None:
    """A vault file in today's schema (written here with sqlite3 directly) reads back."""
    path = tmp_path / "tokens.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE pynomaly_token_vault ("
            "token TEXT PRIMARY KEY, ciphertext TEXT NOT NULL, fingerprint TEXT UNIQUE)"
        )
        conn.execute("INSERT INTO pynomaly_token_vault VALUES ('tok', 'c', '1:fp')")
    vault = StorageRegistry().token_vault(f"sqlite:///{path}")
    try:
        assert await vault.get("tok") == "c"
        assert await vault.find("1:fp") == "tok"
    finally:
        await vault.aclose()


@pytest.mark.anyio
async def test_a_reader_never_creates_the_file(tmp_path: Path) -> None:
    """A registry for readers (create=False) refuses a missing SQLite file instead of
    creating an empty one that would verify as an empty trail."""
    missing = tmp_path / "missing.db"
    audit = StorageRegistry(create=False).audit_log(f"sqlite:///{missing}")
    with pytest.raises(StorageError, match="cannot open SQLite database"):
        await audit.open()
    assert not missing.exists()


@pytest.mark.anyio
@pytest.mark.redis
async def test_a_store_built_alone_closes_its_own_pool(redis_url: str) -> None:
    """create_store gives a store its own backend: closing the store closes the pool."""
    store = create_store(redis_url, key_prefix="pns-alone:")
    await store.incr("k", 60)
    backend = store.backend  # type: ignore[attr-defined]
    assert backend.connection.value is not None
    await store.aclose()
    assert backend.connection.value is None


@pytest.mark.anyio
@pytest.mark.redis
async def test_the_stack_lifespan_opens_and_closes_the_pools(
    tmp_path: Path, redis_url: str
) -> None:
    """The stack's lifespan opens every pool before its components start and closes
    them after they stop; the store and the audit log come from the stack's registry."""
    settings = _settings(tmp_path, redis_url=redis_url, development_mode=True)
    stack = setup_security_middleware(FastAPI(), settings=settings)
    storage = stack.storage
    assert storage is not None
    redis_backend = storage.backend(redis_url)
    sqlite_backend = storage.backend(settings.audit_db_url)
    assert stack.store is not None and stack.store.backend is redis_backend  # type: ignore[attr-defined]
    assert isinstance(stack.audit_logger, AuditLogger)
    assert stack.audit_logger.store.backend is sqlite_backend  # type: ignore[attr-defined]
    async with stack:
        assert redis_backend.connection.value is not None
        assert sqlite_backend.connection.value is not None
        assert await stack.store.incr("pns-stack:k", 60) == 1
        assert await storage.healthcheck() == {redis_url: True, settings.audit_db_url: True}
    assert redis_backend.connection.value is None
    assert sqlite_backend.connection.value is None


@pytest.mark.anyio
async def test_data_protection_shares_the_stack_registry(tmp_path: Path) -> None:
    """AdvancedDataProtection given the stack's registry keeps its vault on the
    registry's connection to TOKEN_VAULT_URL, and tokens round-trip through it."""
    from pynomaly_security.protection import AdvancedDataProtection

    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    settings = _settings(tmp_path, token_vault_url=url)
    async with StorageRegistry.from_settings(settings) as registry:
        async with AdvancedDataProtection(settings, storage=registry) as protection:
            token = await protection.tokenize("4111 1111 1111 1111")
            assert await protection.detokenize(token) == "4111 1111 1111 1111"
            assert protection.tokenizer.vault.backend is registry.backend(url)  # type: ignore[attr-defined]
            # Built after the registry started: the vault is its only user, and
            # closing the vault closes the file (the registry would close it too).
            assert registry.backend(url).connection.users == 1
        assert registry.backend(url).connection.value is None


@pytest.mark.anyio
async def test_state_url_puts_the_monitor_state_on_the_registry_backend(tmp_path: Path) -> None:
    """STATE_URL naming the audit trail's SQLite file: the monitor's alerts land in that
    file through the backend (one connection) the audit log already uses; unset, they
    stay in the store of REDIS_URL (memory here)."""
    from pynomaly_security.monitor import SecurityAlert, ThreatLevel
    from pynomaly_security.storage.sql_state import SQLState

    url = f"sqlite:///{tmp_path / 'audit.db'}"
    stack = setup_security_middleware(FastAPI(), settings=_settings(tmp_path, state_url=url))
    assert isinstance(stack.state, SQLState) and stack.storage is not None
    assert stack.storage.backend(url) is stack.storage.backend(stack.settings.audit_db_url)
    async with stack:
        await stack.security_monitor.raise_alert(SecurityAlert("probe", ThreatLevel.LOW, "p"))
        alerts = await stack.security_monitor.get_active_alerts()
        assert [a.alert_type for a in alerts] == ["probe"]
    with sqlite3.connect(tmp_path / "audit.db") as conn:
        # The metrics' minute documents (issue 20) share the state; the alerts are there.
        collections = conn.execute("SELECT DISTINCT collection FROM pns_documents").fetchall()
        assert sorted(collections) == [("alerts",), ("metrics_minutes",)]

    default = setup_security_middleware(FastAPI(), settings=_settings(tmp_path / "other"))
    assert default.state is None
