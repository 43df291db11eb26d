"""AuditLogger: the one object the plugin, the middleware and the app call.

Security and audit events are committed before their call returns (group
commit), one chain record each; per-request access records are queued as
tuples without blocking and sealed in batches, one chain record per flush
(``batch.py``), within ``audit_flush_interval_ms`` (and fully on
:meth:`AuditLogger.aclose`).

The integration guide's calls are the same methods (issue 14): ``log_security_event``
and ``log_audit_event`` return an :class:`~pynomaly_security.audit.receipt.AuditReceipt`.
On the logger's own loop they queue the record and return at once (await the receipt
to wait for the commit); from a thread without a running loop they commit before
returning; from another loop they hand the record over and return. ``AuditLogger()``
without arguments reads the settings from the environment, uses the default store
and the process's key ring, and starts itself on first use in a background thread
(``pynomaly_security/_background.py``) unless it was started first, as the stack starts its own.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from pynomaly_security._background import BackgroundLoop, close_at_exit
from pynomaly_security._context import AccessRow, access_row
from pynomaly_security._log import get_logger
from pynomaly_security.audit._writer import BatchWriter
from pynomaly_security.audit.actions import AuditContext, audit_action, audit_context
from pynomaly_security.audit.anchor import (
    FileAnchor,
    RedisAnchor,
    SyslogAnchor,
    WebhookAnchor,
    default_anchor_path,
)
from pynomaly_security.audit.bounds import RecordBounds, column_text, cut
from pynomaly_security.audit.compliance import standards_for
from pynomaly_security.audit.dispatch import (
    AnchorHandler,
    ComplianceDispatcher,
    ComplianceHandler,
)
from pynomaly_security.audit.receipt import AuditReceipt, result_within
from pynomaly_security.audit.records import (
    AuditEntry,
    AuditLevel,
    ComplianceStandard,
    EntryKind,
    SecurityEventType,
    ambient,
)
from pynomaly_security.audit.sealing import AuditKeys
from pynomaly_security.audit.stores import AuditStore, Checkpoint
from pynomaly_security.audit.tenants import AccessTenants, scoped_subject
from pynomaly_security.audit.trail import AuditTrail
from pynomaly_security.audit.verify import VerifyResult
from pynomaly_security.crypto.keys import KeyRing
from pynomaly_security.exceptions import ConfigurationError, StorageError
from pynomaly_security.settings import SecuritySettings
from pynomaly_security.storage.registry import StorageRegistry
from pynomaly_security.tenancy.context import current_tenant

__all__ = ["AuditLogger"]

log = get_logger(__name__)

NO_ANCHOR_EVENT = "audit_no_anchor"
CLOSE_FAILED = "audit_close_failed"
START_FAILED = "audit_start_failed"
_NO_ANCHOR_HINT = (
    "no anchor keeps the signed checkpoints outside the database, so a truncation that also"
    " deletes checkpoints cannot be detected; set PYNOMALY_SECURITY__AUDIT_ANCHOR_FILE or"
    " another AUDIT_ANCHOR_* sink"
)

P = ParamSpec("P")
R = TypeVar("R")
COMMIT_TIMEOUT = 30.0
"""Seconds a caller without an event loop waits for its record's commit; past it the
call raises StorageError instead of hanging (a store that stopped answering)."""


def _check(name: str, value: float, low: float, high: float | None = None) -> None:
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in {low}..{high}"
        raise ConfigurationError(f"AuditLogger {name} must be {bound}, got {value}")


class AuditLogger(AuditTrail):
    """Writes the tamper-evident, encrypted audit trail (and reads it: see AuditTrail).

    Use ``async with AuditLogger.from_settings(settings) as audit:`` or call
    :meth:`start` / :meth:`aclose` from the lifespan. ``AuditLogger()`` (the guide's
    form, see the module) needs neither.

    Args:
        store: where records live (``StorageRegistry.audit_log(url)``); with ``keys``
            left out too, everything comes from the environment's settings.
        keys: the audit keys of the key ring (``AuditKeys(KeyRing.from_settings(settings))``).
        flush_interval_ms: longest wait of a per-request access record.
        checkpoint_every / checkpoint_seconds: when an access-only commit's checkpoint
            is anchored (every commit is signed; see ``chain.Sealer``).
        retention_days: prune whole checkpointed segments older than this.
        compliance: tag events with the standards they evidence and forward them.
        max_pending: bound of queued access records.
        anchor_file: append anchored checkpoints to this JSON Lines file (``anchor.py``).
        anchor_sinks: further anchor handlers (syslog, Redis, webhook), off the write path.
        bounds: size bounds of a record's user-controlled text (``bounds.py``).
        clock: wall clock (seconds), injectable for tests.
    """

    def __init__(
        self,
        store: AuditStore | None = None,
        keys: AuditKeys | None = None,
        *,
        flush_interval_ms: int = 200,
        checkpoint_every: int = 1000,
        checkpoint_seconds: float = 60.0,
        retention_days: int | None = None,
        compliance: bool = True,
        max_pending: int = 100_000,
        anchor_file: Path | None = None,
        anchor_sinks: Sequence[AnchorHandler] = (),
        bounds: RecordBounds | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self_managed = store is None and keys is None
        if self_managed:  # the guide's AuditLogger(): all from the environment's settings
            from pynomaly_security import defaults

            settings = defaults.settings()
            store, keys, options = _from_settings(settings, None, None, "audit", defaults.keyring())
            (flush_interval_ms, checkpoint_every, checkpoint_seconds, retention_days) = (
                options["flush_interval_ms"], options["checkpoint_every"],
                options["checkpoint_seconds"], options["retention_days"],
            )  # fmt: skip
            compliance, anchor_file = options["compliance"], options["anchor_file"]
            anchor_sinks, bounds = options["anchor_sinks"], options["bounds"]
        if store is None or keys is None:
            raise ConfigurationError("AuditLogger takes both store and keys, or neither")
        _check("flush_interval_ms", flush_interval_ms, 1, 200)
        _check("checkpoint_every", checkpoint_every, 1)
        _check("checkpoint_seconds", checkpoint_seconds, 0.001)
        _check("max_pending", max_pending, 1)
        if retention_days is not None:
            _check("retention_days", retention_days, 1)
        super().__init__(
            store,
            keys,
            checkpoint_every=checkpoint_every,
            checkpoint_seconds=checkpoint_seconds,
            retention_days=retention_days,
            clock=clock,
        )
        self._file_anchor = None if anchor_file is None else FileAnchor(anchor_file)
        self.anchor_file = anchor_file
        self._bounds = bounds if bounds is not None else RecordBounds()
        self._sealer.field_limit = self._bounds.max_field_chars
        self._writer = BatchWriter(
            self._commit,
            interval=flush_interval_ms / 1000,
            max_pending=max_pending,
            idle=self._maintain,
        )
        self.access_tenants: AccessTenants | None = None
        """The tenants of queued access rows, once :meth:`bind_tenants` (tenancy on)."""
        self._dispatch = ComplianceDispatcher()
        for sink in anchor_sinks:
            self._dispatch.register_anchor(sink)
        self._sealer.anchored = self._file_anchor is not None or bool(anchor_sinks)
        self._compliance = compliance
        self._last_maintenance = clock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._background: BackgroundLoop | None = None
        self._background_start: asyncio.Future[None] | None = None
        self._background_lock = threading.Lock()
        self._closed = False
        self._self_managed = self_managed
        if self_managed:
            defaults.adopt_audit_logger(self)

    @classmethod
    def from_settings(
        cls,
        settings: SecuritySettings,
        *,
        store: AuditStore | None = None,
        storage: StorageRegistry | None = None,
        prefix: str = "audit",
        keyring: KeyRing | None = None,
    ) -> AuditLogger:
        """Build from settings; raises ConfigurationError without a master key
        outside development mode. Pass ``keyring`` to share the application's
        (in development mode without a master key, one ephemeral key for all).
        The store is ``AUDIT_DB_URL`` on ``storage`` (the application's registry;
        one of its own when omitted)."""
        store, keys, options = _from_settings(settings, store, storage, prefix, keyring)
        return cls(store, keys, **options)

    # -- lifecycle -----------------------------------------------------------------
    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the logger was started on (sync callers submit to it)."""
        return self._loop

    @property
    def running(self) -> bool:
        """Whether the writer task runs (records can be committed)."""
        return self._writer.running

    @property
    def queue_depth(self) -> int:
        """Access records waiting for the next commit."""
        return len(self._writer.access)

    @property
    def dropped(self) -> int:
        """Access records dropped because the queue was full."""
        return self._writer.dropped

    @property
    def records_written(self) -> dict[str, int]:
        """Records this process committed to the trail, by kind (the event family, or
        ``access`` for an access batch record): a copy, made in one C call, so a
        writer in its background thread cannot change it while it is read."""
        return dict(self._writer.written)

    def schedule(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` in the background; :meth:`aclose` waits for it."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self) -> None:
        """Open the store and start the writer on the running loop (a logger already
        running in its background thread stays there)."""
        if self._background is not None and asyncio.get_running_loop() is not self._background.loop:
            return
        self._closed = False
        loop = asyncio.get_running_loop()
        await self.store.open()
        try:
            for key_id, public in self.keys.public_keys.items():
                await self.store.put_public_key(key_id, public)
        except BaseException:
            await self.store.aclose()
            raise
        # Only once the store is open: a failed start leaves nothing for aclose to close.
        self._loop = loop
        self._dispatch.start()
        self._writer.start()
        if not self._sealer.anchored:
            # Not an error (a trail without an anchor still proves what it holds),
            # but an auditor can then not rule out a truncation: say so once.
            log.warning(NO_ANCHOR_EVENT, hint=_NO_ANCHOR_HINT)

    async def aclose(self) -> None:
        """Flush every queued record, sign the tail, stop handlers, close the store."""
        background = self._background
        if background is not None and asyncio.get_running_loop() is not background.loop:
            await asyncio.wrap_future(background.submit(self.aclose()))
            await asyncio.to_thread(self._stop_background)
            return
        if self._loop is None:
            return  # never started, or already closed
        self._loop = None
        self._closed = True
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await self._writer.aclose()
            async with self.store.transaction() as txn:
                cp = await self._sealer.checkpoint(txn, force=True)
            self._anchor(cp)
        finally:
            await self._dispatch.aclose()
            await self.store.aclose()

    async def flush(self) -> None:
        """Commit every queued access record (and pending event) now, instead of after
        ``flush_interval_ms``; returns once they are in the store."""
        background = self._background
        if background is not None and asyncio.get_running_loop() is not background.loop:
            await asyncio.wrap_future(background.submit(self.flush()))
            return
        await self._writer.flush()

    def close(self) -> None:
        """:meth:`aclose` for code without an event loop (scripts; at exit for a
        logger that started itself). On the logger's own loop, ``await aclose()``."""
        background = self._background
        if background is not None:
            if not background.loop.is_closed():
                result_within(background.submit(self.aclose()), COMMIT_TIMEOUT)
            self._stop_background()
            return
        home = self._loop
        if home is None:
            return
        if _running_loop() is home:
            raise RuntimeError("close() would block the logger's own loop: await aclose()")
        try:
            result_within(asyncio.run_coroutine_threadsafe(self.aclose(), home), COMMIT_TIMEOUT)
        except RuntimeError:  # its loop is gone (never closed properly): nothing can run
            log.warning(CLOSE_FAILED, reason="event loop closed")

    def _stop_background(self) -> None:
        with self._background_lock:
            background, self._background = self._background, None
        if background is not None:
            background.stop()

    async def __aenter__(self) -> AuditLogger:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- writing -----------------------------------------------------------------------
    def log_security_event(
        self,
        event_type: SecurityEventType | str,
        message: str,
        level: AuditLevel = AuditLevel.WARNING,
        details: Mapping[str, Any] | None = None,
        compliance_standards: Sequence[ComplianceStandard | str] | None = None,
        *,
        user_id: str | None = None,
        source_ip: str | None = None,
        request_id: str | None = None,
    ) -> AuditReceipt:
        """Record a security event (see the module: queued on the logger's loop,
        committed before returning without one); await the receipt for its sequence
        number once committed."""
        # Custom event types (strings outside the enum) are allowed; they get base controls.
        payload = {"message": message, "details": dict(details or {})}
        return self._enqueue(self._entry(
            EntryKind.SECURITY, event_type, level, compliance_standards, payload,
            user_id=user_id, source_ip=source_ip, request_id=request_id,
        ))  # fmt: skip

    def log_audit_event(
        self,
        action: str,
        resource: str,
        outcome: str = "success",
        *,
        message: str | None = None,
        user_id: str | None = None,
        details: Mapping[str, Any] | None = None,
        compliance_standards: Sequence[ComplianceStandard | str] | None = None,
        level: AuditLevel = AuditLevel.INFO,
        event_type: SecurityEventType | str = SecurityEventType.AUDIT_ACTION,
        source_ip: str | None = None,
        request_id: str | None = None,
    ) -> AuditReceipt:
        """Record who did what to which resource (``event_type`` e.g. ``"data_access"``,
        the guide's; ``message`` optional); delivered as :meth:`log_security_event`."""
        payload: dict[str, Any] = {
            "action": action,
            "resource": resource,
            "outcome": outcome,
            "details": dict(details or {}),
        }
        if message is not None:
            payload["message"] = message
        return self._enqueue(self._entry(
            EntryKind.AUDIT, event_type, level, compliance_standards, payload,
            user_id=user_id, source_ip=source_ip, request_id=request_id,
        ))  # fmt: skip

    def _enqueue(self, entry: AuditEntry) -> AuditReceipt:
        # ``entry`` is built by the caller, in its context: the ambient ids
        # (tracking's, or an audit_context's) are the caller's, whichever thread
        # commits the record.
        running = _running_loop()
        if self._self_managed and self._loop is None and not self._closed:
            self._start_background()
        background = self._background
        home = background.loop if background is not None else self._loop
        if home is None:
            raise StorageError(
                "the audit logger is closed"
                if self._closed
                else "the audit logger is not started (call `await audit_logger.start()`)"
            )
        if running is home:
            return AuditReceipt(self._writer.enqueue(entry))  # never waits
        receipt = AuditReceipt(asyncio.run_coroutine_threadsafe(self._submit(entry), home))
        if running is None:
            receipt.wait(COMMIT_TIMEOUT)  # no loop to block: committed before returning
        return receipt

    async def _submit(self, entry: AuditEntry) -> int:
        """On the logger's loop: (start itself, in background mode, then) commit."""
        if self._background_start is not None:
            await asyncio.shield(self._background_start)
        return await self._writer.submit(entry)

    def _start_background(self) -> None:
        with self._background_lock:
            if self._background is not None or self._loop is not None:
                return
            background = BackgroundLoop("pynomaly-audit-logger")
            self._background = background

            async def start() -> None:
                self._background_start = asyncio.ensure_future(self.start())
                try:
                    await self._background_start
                except Exception as exc:
                    log.error(START_FAILED, error=type(exc).__name__)
                    raise

            started = background.submit(start())
            if _running_loop() is None:
                result_within(started, COMMIT_TIMEOUT)  # a start failure reaches this caller
            # Else the caller's loop must not wait for the store to open: calls queue
            # behind the start (its coroutine runs first), a failure is logged by start().
            # What was queued when the process ends is committed and the tail signed.
            close_at_exit(self)

    def _entry(
        self,
        kind: EntryKind,
        event_type: SecurityEventType | str,
        level: AuditLevel,
        standards: Sequence[ComplianceStandard | str] | None,
        payload: dict[str, Any],
        *,
        user_id: str | None,
        source_ip: str | None,
        request_id: str | None,
    ) -> AuditEntry:
        type_name = str(getattr(event_type, "value", event_type))
        if standards is not None:
            tags = tuple(ComplianceStandard(s) for s in standards)
        else:
            tags = standards_for(type_name) if self._compliance else ()
        limit = self._bounds.max_field_chars
        ident = {
            "user_id": ambient("user_id", user_id),
            "source_ip": ambient("client_ip", source_ip),
            "request_id": ambient("request_id", request_id),
        }
        ident = {k: None if v is None else cut(v, limit) for k, v in ident.items()}
        correlation = ambient("correlation_id", None)
        if correlation is not None:  # an audit_context(correlation_id=...) around the call
            payload["correlation_id"] = cut(correlation, limit)
        request = ident["request_id"]
        return AuditEntry(
            kind=kind,
            # Plaintext columns: storable whatever the input (payload JSON escapes itself).
            event_type=column_text(type_name, 128),
            level=AuditLevel(level),
            standards=tags,
            request_id=None if request is None else column_text(request, limit),
            user_id=ident["user_id"],
            source_ip=ident["source_ip"],
            # Bounded whatever the request's size, each user text stored once.
            payload=self._bounds.apply(payload, ident),
            timestamp=self._clock(),
            tenant=current_tenant(),
        )

    def log_request(
        self,
        *,
        method: str,
        path: str,
        status_code: int,
        duration_ms: float,
        request_id: str | None = None,
        client_ip: str | None = None,
        user_id: str | None = None,
        timestamp: float | None = None,
    ) -> None:
        """Queue the access record of one HTTP request (sync, never blocks).

        The hot path of every request: one tuple appended to a deque. Sealing
        happens per batch on flush (``batch.py``); beyond ``max_pending`` queued
        rows, new ones are counted and dropped.
        """
        self.queue_access(
            access_row(
                self._clock() if timestamp is None else timestamp,
                method,
                path,
                status_code,
                duration_ms / 1000,
                request_id,
                user_id,
                client_ip,
            )
        )

    def bind_tenants(self) -> AccessTenants:
        """Bind access rows to the tenants of their requests (``audit/tenants.py``):
        the tenancy layer notes each request's tenant here, the writer seals one batch
        per tenant. Idempotent."""
        if self.access_tenants is None:
            self.access_tenants = AccessTenants(self._writer.limit or 10_000)
            self._writer.split = self.access_tenants.batches
        return self.access_tenants

    def queue_access(self, row: AccessRow) -> None:
        """Queue an access record already built as an :data:`AccessRow` (what the
        stack's tracking layer does: one row per request, shared with the tracker)."""
        writer = self._writer
        if len(writer.access) < writer.limit:
            writer.access.append(row)
        else:
            writer.dropped += 1

    def audit_context(self, action: str, resource: str, **kwargs: Any) -> AuditContext:
        """``async with audit.audit_context("delete", "item:42") as details:`` (or ``with``)"""
        return audit_context(self, action, resource, **kwargs)

    def audit_action(
        self, action: str, resource: str
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Decorator recording success or failure (error type only) of a call."""
        return audit_action(action, resource, audit_logger=self)

    async def _commit(
        self, entries: Sequence[AuditEntry], batches: Sequence[Sequence[AccessRow]]
    ) -> list[int]:
        async with self.store.transaction() as txn:
            seqs, cp = await self._sealer.append(txn, entries, batches)
        # Only after the commit: an anchored checkpoint must exist in the store.
        if self._compliance and self._dispatch.active:
            self._dispatch.submit(entries, seqs)
        self._anchor(cp)
        return seqs

    def _anchor(self, cp: Checkpoint | None) -> None:
        if cp is not None:
            if self._file_anchor is not None:
                self._file_anchor.write(cp)
            self._dispatch.submit_checkpoint(cp.to_dict())

    async def _maintain(self) -> None:
        """Time-based checkpoints and retention, between flushes."""
        now = self._clock()
        if now - self._last_maintenance < self._checkpoint_seconds:
            return
        self._last_maintenance = now
        async with self.store.transaction() as txn:
            cp = await self._sealer.checkpoint(txn, force=False)
        self._anchor(cp)
        await self.prune_expired()

    # -- reading -------------------------------------------------------------------------
    def register_checkpoint_handler(self, handler: AnchorHandler) -> None:
        """Send every signed checkpoint (``Checkpoint.to_dict()``) to ``handler`` once
        committed: kept outside the database (SIEM, WORM bucket), they let
        ``audit verify --anchors`` catch a truncation that also deleted the
        store's own checkpoints."""
        self._dispatch.register_anchor(handler)
        self._sealer.anchored = True

    def register_compliance_handler(
        self, standard: ComplianceStandard, handler: ComplianceHandler
    ) -> None:
        """Forward committed events tagged ``standard`` to ``handler`` (non-blocking), as
        :class:`~pynomaly_security.audit.events.AuditEvent` objects (``.dict()``)."""
        self._dispatch.register(ComplianceStandard(standard), handler, self._reader.export_dict)

    # -- a self-started logger's store lives on its background loop ----------------------
    async def _at_home(self, coro: Coroutine[Any, Any, R]) -> R:
        """Run a store coroutine on the logger's loop: a self-started logger's store
        belongs to its background thread's loop (asyncpg's pool serves only its own)."""
        background = self._background
        if background is None or asyncio.get_running_loop() is background.loop:
            return await coro
        return await asyncio.wrap_future(background.submit(coro))

    async def query(self, **filters: Any) -> list[dict[str, Any]]:
        """:meth:`AuditTrail.query`, on the logger's loop."""
        return await self._at_home(super().query(**filters))

    async def records_at(self, seqs: Sequence[int]) -> dict[int, dict[str, Any]]:
        """:meth:`AuditTrail.records_at`, on the logger's loop."""
        return await self._at_home(super().records_at(seqs))

    async def verify(self, *args: Any, **kwargs: Any) -> VerifyResult:
        """:meth:`AuditTrail.verify`, on the logger's loop."""
        return await self._at_home(super().verify(*args, **kwargs))

    async def prune_expired(self) -> int:
        """:meth:`AuditTrail.prune_expired`, on the logger's loop."""
        return await self._at_home(super().prune_expired())

    async def erase_subject(self, user_id: str) -> int:
        """Crypto-shred a subject (see :meth:`_erase_subject`), on the logger's loop.
        Inside a tenant, the subject is that tenant's user (``audit/tenants.py``)."""
        return await self._at_home(self._erase_subject(scoped_subject(current_tenant(), user_id)))

    async def erase_tenant(self, tenant_id: str) -> int:
        """Crypto-shred every subject a deleted tenant's records are sealed under (its
        users, the names tried at its sign-in, its own subject for anonymous rows:
        ``audit/tenants.py``); returns keys destroyed. The chain still verifies."""
        return await self._at_home(self._erase_tenant(tenant_id))

    async def _erase_tenant(self, tenant_id: str) -> int:
        refs = await self.store.tenant_subject_refs(tenant_id)
        return await self._erase_refs(refs, all_named=False) if refs else 0

    async def _erase_subject(self, user_id: str) -> int:
        return await self._erase_refs(list(self.keys.subject_refs(user_id)), all_named=True)

    async def _erase_refs(self, refs: list[str], *, all_named: bool) -> int:
        """Crypto-shred subjects by ref: destroy their keys; returns keys destroyed.

        The erasure is recorded first (one ``subject_erased`` record per key,
        its ref in the plaintext ``subject_ref`` column), then the key is
        destroyed: ``audit verify`` reports any subject key that is missing
        without such a record, so a key deleted behind the trail's back shows.
        ``all_named``: the refs are one subject's under every master key (one is
        recorded even if none has a key).
        """
        held = await self.store.subject_keys(refs)
        # One record per key destroyed; a request for a subject with no key is
        # still recorded (under the current ref, which has no key to check).
        for ref in [r for r in refs if r in held] or (refs[:1] if all_named else []):
            await self._writer.submit(
                AuditEntry(
                    kind=EntryKind.SECURITY,
                    event_type=SecurityEventType.SUBJECT_ERASED.value,
                    level=AuditLevel.INFO,
                    standards=standards_for(SecurityEventType.SUBJECT_ERASED.value)
                    if self._compliance
                    else (),
                    payload={
                        "message": "subject erased (crypto-shredding)",
                        "details": {"subject_ref": ref},
                    },
                    timestamp=self._clock(),
                    erased_ref=ref,
                )
            )
        destroyed = await self.store.delete_subject_keys(refs)
        self._sealer.forget(refs)
        return destroyed


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _from_settings(
    settings: SecuritySettings,
    store: AuditStore | None,
    storage: StorageRegistry | None,
    prefix: str,
    keyring: KeyRing | None,
) -> tuple[AuditStore, AuditKeys, dict[str, Any]]:
    """The store, keys and options of a logger built from ``settings`` (one place for
    ``from_settings`` and ``AuditLogger()``)."""
    keys = AuditKeys(keyring if keyring is not None else KeyRing.from_settings(settings))
    sinks: list[AnchorHandler] = []
    if settings.audit_anchor_syslog:
        sinks.append(SyslogAnchor(settings.audit_anchor_syslog))
    if settings.audit_anchor_redis_url:
        sinks.append(RedisAnchor(settings.audit_anchor_redis_url, settings.audit_anchor_redis_key))
    if settings.audit_anchor_webhook_url:
        sinks.append(WebhookAnchor(settings.audit_anchor_webhook_url))
    if store is None:
        store = (storage or StorageRegistry.from_settings(settings)).audit_log(
            settings.audit_db_url, prefix=prefix, setting="AUDIT_DB_URL"
        )
    options: dict[str, Any] = {
        "flush_interval_ms": settings.audit_flush_interval_ms,
        "checkpoint_every": settings.audit_checkpoint_every,
        "checkpoint_seconds": settings.audit_checkpoint_seconds,
        "retention_days": settings.audit_retention_days,
        "compliance": settings.enable_compliance_logging,
        "anchor_file": default_anchor_path(settings),
        "anchor_sinks": sinks,
        "bounds": RecordBounds(
            max_field_chars=settings.audit_max_field_chars,
            max_record_bytes=settings.audit_max_record_bytes,
        ),
    }
    return store, keys, options
