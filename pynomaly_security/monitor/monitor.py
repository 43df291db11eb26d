"""The SecurityMonitor: a bounded event queue, detectors, alerts, handlers.

Middlewares call :meth:`SecurityMonitor.submit` (synchronous, never blocks:
when the queue is full the event is counted as dropped). One background task
runs the detectors and the alert handlers, so a slow webhook never slows a
request. A handler or detector that raises is logged and skipped.

State shared across workers (issue 13, item 5) lives in the state the monitor
is given (the stack's: ``STATE_URL``, else the store of ``REDIS_URL``, else
memory; SQLite and PostgreSQL through ``storage/sql_state.py``): alerts and
their acknowledgement (:class:`~pynomaly_security.monitor.alerts.StoredAlerts`),
the counters of :meth:`get_security_summary` (tallies: each worker counts in
memory on the request path and adds its counts to the store from the background
task, after each batch of events and every ``flush_interval`` seconds); the
detectors' state (profiles, cool-downs) stays in the store (``REDIS_URL``).
Each worker analyses the events it saw; detectors decide against the shared
state and a set-if-absent cool-down, so a threshold fires once across workers.
(Chosen over one stream consumed by a consumer group: the detectors would need
the shared state anyway, as a group hands each worker only part of the events,
and the request path would gain a write per event.)

Every alert is bounded before it is stored or handed on, whoever raised it (a
detector, the lockout, the app): detectors copy what they saw (a path, a user
name, findings), which is the attacker's to size and to fill with control
characters. Each string is cut with a marker, the same text kept once, control
characters escaped, and the details capped in size (:data:`ALERT_BOUNDS`, the
audit trail's :class:`~pynomaly_security.audit.bounds.RecordBounds`).

Sync and async callers (the integration guide calls the getters without
``await``; see :mod:`pynomaly_security._dual`): awaited, or called from a thread
outside the event loop, a getter reads the store. Called without ``await``
inside the loop, it answers from this worker's snapshot: the background task
refreshes it from the store at most every ``flush_interval`` seconds (one read
of the counts, the tallies and the newest ``snapshot_size`` active alerts), and
this worker's own alerts, acknowledgements and counts enter it at once. So a
sync getter in async code lags another worker's change by about a second while
the monitor runs, and shows only this worker's changes when it does not.

Tenancy (issue 21, ``tenant_scoped=True``): the store and state are the
tenant-scoped views, so alerts, the detectors' windows and cool-downs live in a
tenant's namespace by construction. Each event carries the tenant it was made
for, and the background task analyses it inside that tenant's scope (the
platform's for an event of none); an alert is stamped with the tenant it was
raised in. Queries answer for the caller's scope (a tenant admin's, or the
platform admin's with ``X-Tenant``); work with no scope (batch jobs, the
counters, an alert raised by a background part) is the platform's. The counters
and the snapshot of sync getters are the platform's: a sync getter inside a
tenant's request answers empty (await it for the tenant's alerts).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any

from pynomaly_security._dual import (
    AwaitableBool,
    AwaitableDict,
    AwaitableList,
    SyncPortal,
    in_running_loop,
)
from pynomaly_security._log import get_logger
from pynomaly_security.audit.bounds import RecordBounds
from pynomaly_security.exceptions import StorageError
from pynomaly_security.logsafe import safe_text
from pynomaly_security.monitor.alerts import AlertStore, StoredAlerts
from pynomaly_security.monitor.detectors import (
    AnomalousAccessDetector,
    BruteForceDetector,
    Detector,
    InjectionAttackDetector,
)
from pynomaly_security.monitor.events import EventKind, SecurityAlert, SecurityEvent, ThreatLevel
from pynomaly_security.settings import SecuritySettings
from pynomaly_security.storage.base import (
    DocumentStore,
    MonitorState,
    Store,
    TallyStore,
    missing_capability,
)
from pynomaly_security.storage.memory import MemoryStore
from pynomaly_security.tenancy.context import acting_for, current_tenant, in_scope

__all__ = ["ALERT_BOUNDS", "METRICS", "AlertHandler", "SecurityMonitor", "default_detectors"]

log = get_logger(__name__)

AlertHandler = Callable[[SecurityAlert], Awaitable[None] | None]

EVENT_DETECTOR_FAILED = "security_detector_failed"
EVENT_HANDLER_FAILED = "security_alert_handler_failed"
EVENT_ALERT = "security_alert"
EVENT_DROPPED = "security_event_dropped"
EVENT_STORE_FAILED = "security_monitor_store_failed"
EVENT_STARTED = "security_monitor_started"
EVENT_STOPPED = "security_monitor_stopped"

ALERT_BOUNDS = RecordBounds(max_field_chars=256, max_record_bytes=8192, escape_controls=True)
"""Bounds of an alert: 256 characters per string (a finding's excerpt is 40), 8 KB
of details (twenty findings fit), control characters escaped."""

_METRIC_BY_KIND = {
    EventKind.LOGIN_FAILURE: "failed_logins",
    EventKind.LOGIN_SUCCESS: "successful_logins",
    EventKind.INJECTION: "injection_attempts",
    EventKind.BLOCKED: "blocked_requests",
    EventKind.REQUEST: "requests",
    EventKind.LOCKOUT: "lockouts",
}

METRICS = (
    "failed_logins",
    "successful_logins",
    "injection_attempts",
    "blocked_requests",
    "requests",
    "lockouts",
    "dropped_events",
)
"""The counters :meth:`SecurityMonitor.get_security_summary` reports (all workers')."""

_TALLIES = "monitor"


def default_detectors(store: Store, *, injection: bool = True) -> list[Detector]:
    """The built-in detectors on ``store``: brute force (lockout events), anomalous
    access, and injection when an inspection layer reports injection attempts."""
    detectors: list[Detector] = [BruteForceDetector(), AnomalousAccessDetector(store)]
    if injection:
        detectors.append(InjectionAttackDetector(store))
    return detectors


class SecurityMonitor:
    """Consumes security events and raises alerts.

    Args:
        detectors: the detectors to run; ``None`` installs :func:`default_detectors`.
        queue_size: bound of the event queue.
        store: where the detectors' state lives, and alerts and counters unless
            ``state`` is given (a :class:`~pynomaly_security.storage.base.Store`
            with documents and tallies); default: a bounded memory store of this process.
        state: where alerts and counters live instead (a
            :class:`~pynomaly_security.storage.base.MonitorState`, e.g.
            ``StorageRegistry.state("postgresql://...")``).
        alert_store: where alerts are kept instead (default: the state's ``alerts``).
        clock: injected for tests.
        enabled: when false, events are counted but no detector runs.
        max_alerts: most alerts kept (oldest dropped first).
        flush_interval: seconds between two flushes of this worker's counters
            when no event comes, and between two refreshes of the snapshot.
        snapshot_size: active alerts the snapshot keeps (newest first).
        tenant_scoped: ``store`` and ``state`` are tenant-scoped views (see the
            module docstring).
    """

    def __init__(
        self,
        *,
        detectors: Iterable[Detector] | None = None,
        queue_size: int = 10_000,
        store: Store | None = None,
        state: MonitorState | None = None,
        alert_store: AlertStore | None = None,
        clock: Callable[[], float] = time.time,
        enabled: bool = True,
        max_keys: int = 100_000,
        max_alerts: int = 10_000,
        alert_bounds: RecordBounds = ALERT_BOUNDS,
        flush_interval: float = 1.0,
        snapshot_size: int = 1000,
        tenant_scoped: bool = False,
    ) -> None:
        self._scoped = tenant_scoped
        if store is None:
            store = MemoryStore(max_keys=max_keys)
        self._store = store
        if detectors is None:
            detectors = default_detectors(store)
        self._detectors: list[Detector] = list(detectors)
        self._handlers: list[AlertHandler] = []
        self._enrichers: list[Callable[[SecurityAlert], None]] = []
        self._jobs: list[Callable[[], Awaitable[None]]] = []
        self._jobs_at = 0.0
        self._queue: asyncio.Queue[SecurityEvent] | None = None
        self._queue_size = queue_size
        shared: object = state if state is not None else store
        if alert_store is None:
            if not isinstance(shared, DocumentStore):
                raise missing_capability(shared, DocumentStore, "the monitor's alerts")
            alert_store = StoredAlerts(shared, max_alerts)
        self._alerts: AlertStore = alert_store
        if not isinstance(shared, TallyStore):
            raise missing_capability(shared, TallyStore, "the monitor's counters")
        self._tallies: TallyStore = shared
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        # This worker's counts (the request path adds to them) and how much of
        # them the shared tallies already have.
        self._metrics: Counter[str] = Counter()
        self._flushed: Counter[str] = Counter()
        self._flush_lock = asyncio.Lock()
        self._flush_interval = flush_interval
        self.enabled = enabled
        self._started_at: float | None = None
        self._bounds = alert_bounds
        # What a sync getter inside the loop answers (see the module docstring).
        self._portal = SyncPortal()
        self._snapshot_size = snapshot_size
        self._snap_levels: dict[ThreatLevel, int] = dict.fromkeys(ThreatLevel, 0)
        self._snap_tallies: dict[str, int] = {}
        self._snap_alerts: list[SecurityAlert] = []
        self._snap_at = float("-inf")
        self._pending: set[asyncio.Task[bool]] = set()

    @classmethod
    def from_settings(
        cls, settings: SecuritySettings, *, injection: bool = True, **kwargs: Any
    ) -> SecurityMonitor:
        """The monitor the settings describe; ``injection``: whether an inspection
        layer reports injection attempts (its detector runs only then)."""
        store = kwargs.pop("store", None)
        if store is None:
            store = MemoryStore(max_keys=settings.max_tracked_keys)
        kwargs.setdefault("detectors", default_detectors(store, injection=injection))
        return cls(
            queue_size=settings.monitor_queue_size,
            enabled=settings.enable_security_monitoring and settings.threat_detection_enabled,
            max_keys=settings.max_tracked_keys,
            store=store,
            **kwargs,
        )

    # -- lifecycle ---------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start_monitoring(self) -> None:
        """Start the background task (idempotent). Also started lazily by the
        first event, so apps served without lifespan events still work."""
        if self.running:
            return
        self._portal.adopt()
        if self._queue is None:
            self._queue = asyncio.Queue(self._queue_size)
        self._started_at = self._clock()
        try:  # sync getters right after start answer the store's state
            with self._platform():
                await self._refresh_snapshot()
        except StorageError as exc:
            log.warning(EVENT_STORE_FAILED, what="snapshot", error=safe_text(str(exc)))
        self._task = asyncio.get_running_loop().create_task(self._run(self._queue))
        # Debug: the guide's debug mode shows the monitor's life cycle (never per event).
        log.debug(EVENT_STARTED, detectors=len(self._detectors), enabled=self.enabled)

    async def stop(self) -> None:
        """Process what is queued, then stop the background task."""
        if self._pending:  # acknowledgements made without await
            await asyncio.gather(*self._pending, return_exceptions=True)
        self._portal.close()
        if self._task is None:
            return
        await self.flush(timeout=5.0)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        log.debug(EVENT_STOPPED, dropped=self._metrics["dropped_events"])

    stop_monitoring = stop

    async def __aenter__(self) -> SecurityMonitor:
        await self.start_monitoring()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def flush(self, timeout: float = 1.0) -> None:
        """Wait (at most ``timeout`` seconds) until queued events are processed,
        then add this worker's counts to the shared tallies."""
        if self._queue is not None and self.running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout)
        if self._jobs:
            await self._run_jobs()
        await self._flush_tallies()

    async def _flush_tallies(self) -> None:
        async with self._flush_lock:  # two flushes at once would add the same counts twice
            deltas = {k: v - self._flushed[k] for k, v in self._metrics.items()}
            deltas = {k: v for k, v in deltas.items() if v}
            if not deltas:
                return
            try:
                with self._platform():
                    await self._tallies.add_tallies(_TALLIES, deltas)
            except StorageError as exc:  # kept for the next flush
                log.warning(EVENT_STORE_FAILED, what="tallies", error=safe_text(str(exc)))
                return
            self._flushed.update(deltas)

    # -- input ---------------------------------------------------------------------------
    def submit(self, event: SecurityEvent) -> bool:
        """Queue an event without blocking; ``False`` when it had to be dropped."""
        metric = _METRIC_BY_KIND.get(event.kind)
        if metric:
            self._metrics[metric] += 1
        if not self.enabled:
            return False
        if self._queue is None:
            self._queue = asyncio.Queue(self._queue_size)
        if not self.running:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            if loop is not None:
                self._task = loop.create_task(self._run(self._queue))
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self._metrics["dropped_events"] += 1
            log.warning(EVENT_DROPPED, kind=event.kind.value)
            return False
        return True

    def count(self, metric: str) -> None:
        """Count something that needs no detector (e.g. a blocked request)."""
        self._metrics[metric] += 1

    async def process_event(self, event: SecurityEvent) -> list[SecurityAlert]:
        """Run every detector on one event now; raise the alerts they return (in the
        scope of the event's tenant when the monitor is tenant-scoped)."""
        if self._scoped:
            with acting_for(event.tenant):
                return await self._analyse(event)
        return await self._analyse(event)

    async def _analyse(self, event: SecurityEvent) -> list[SecurityAlert]:
        alerts: list[SecurityAlert] = []
        for detector in self._detectors:
            try:
                alert = await detector.analyze(event)
            except StorageError as exc:
                log.warning(
                    EVENT_STORE_FAILED,
                    what=getattr(detector, "name", "detector"),
                    error=safe_text(str(exc)),
                )
                continue
            except Exception:
                log.exception(EVENT_DETECTOR_FAILED, detector=getattr(detector, "name", "?"))
                continue
            if alert is not None:
                await self.raise_alert(alert)
                alerts.append(alert)
        return alerts

    async def raise_alert(self, alert: SecurityAlert) -> None:
        """Store an alert and pass it to every handler (also for app code), bounded
        first (:data:`ALERT_BOUNDS`), after the enrichers added what they know."""
        if self._scoped:
            if not in_scope():  # a background part's alert: the platform's
                with acting_for(None):
                    await self.raise_alert(alert)
                return
            alert.tenant = current_tenant()
        for enrich in self._enrichers:
            try:
                enrich(alert)
            except Exception as exc:  # an enricher never loses the alert
                log.error("alert_enricher_failed", error=repr(exc))
        self._bound(alert)
        try:
            await self._alerts.add(alert)
        except StorageError as exc:  # the log line and the handlers still get it
            log.warning(EVENT_STORE_FAILED, what="alerts", error=safe_text(str(exc)))
        else:
            if not alert.acknowledged and alert.tenant is None:  # the snapshot: the platform's
                self._snap_alerts.insert(0, alert)
                del self._snap_alerts[self._snapshot_size :]
                self._snap_levels[alert.threat_level] += 1
        log.warning(
            EVENT_ALERT,
            alert_id=alert.alert_id,
            alert_type=alert.alert_type,
            threat_level=alert.threat_level.value,
            source_ip=alert.source_ip,
        )
        for handler in list(self._handlers):
            try:
                result = handler(alert)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception(EVENT_HANDLER_FAILED, handler=getattr(handler, "__name__", "?"))

    def _bound(self, alert: SecurityAlert) -> None:
        bounds = self._bounds
        text = bounds.text
        alert.alert_type = text(alert.alert_type)
        alert.message = text(alert.message)
        alert.title = text(alert.title)
        alert.description = text(alert.description)
        alert.source_ip = None if alert.source_ip is None else text(alert.source_ip)
        alert.user_id = None if alert.user_id is None else text(alert.user_id)
        # The identity seeds the de-duplication: a detail repeating the user name
        # refers to it instead of copying it again.
        identity = {"source_ip": alert.source_ip, "user_id": alert.user_id}
        alert.details = bounds.apply({"details": alert.details}, identity)["details"]
        # A custom detector's indicators and actions are its input's to size too.
        extra = bounds.apply(
            {"details": alert.indicators, "actions": list(alert.recommended_actions)[:20]},
            identity,
        )
        alert.indicators, alert.recommended_actions = extra["details"], extra["actions"]

    async def _run(self, queue: asyncio.Queue[SecurityEvent]) -> None:
        while True:
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel
                # that arrives as the get completes, and this loop would never stop.
                async with asyncio.timeout(self._flush_interval):
                    event = await queue.get()
            except TimeoutError:  # idle: counts made without an event (count()) go out
                await self._run_jobs()
                await self._flush_tallies()
                await self._refresh_if_due()
                continue
            try:
                await self.process_event(event)
            finally:
                queue.task_done()
            if queue.empty():
                await self._run_jobs()
                await self._flush_tallies()
                await self._refresh_if_due()
            elif self._jobs and self._clock() - self._jobs_at >= self._flush_interval:
                await self._run_jobs()  # a steady stream of events does not starve them

    def _platform(self) -> contextlib.AbstractContextManager[None]:
        """The platform's scope for work of no tenant (tenant-scoped monitor only)."""
        return acting_for(None) if self._scoped else contextlib.nullcontext()

    def _caller(self) -> contextlib.AbstractContextManager[None]:
        """The caller's scope, else the platform's (a query from a thread or a task)."""
        return self._platform() if not in_scope() else contextlib.nullcontext()

    def _tenant_caller(self) -> bool:
        """A sync getter inside a tenant's request: the snapshot is not its."""
        return self._scoped and current_tenant() is not None

    async def _run_jobs(self) -> None:
        self._jobs_at = self._clock()
        for job in self._jobs:
            try:
                with self._platform():
                    await job()
            except StorageError as exc:
                log.warning(EVENT_STORE_FAILED, what="job", error=safe_text(str(exc)))
            except Exception:
                log.exception(EVENT_DETECTOR_FAILED, detector=getattr(job, "__qualname__", "?"))

    async def _refresh_if_due(self) -> None:
        if self._clock() - self._snap_at < self._flush_interval:
            return
        try:
            with self._platform():
                await self._refresh_snapshot()
        except StorageError as exc:  # the snapshot stays as it was; retried next time
            log.warning(EVENT_STORE_FAILED, what="snapshot", error=safe_text(str(exc)))

    async def _refresh_snapshot(self) -> None:
        levels = await self._alerts.count_active()
        tallies = await self._tallies.tallies(_TALLIES)
        alerts = await self._alerts.list(limit=self._snapshot_size)
        self._snap_levels, self._snap_tallies, self._snap_alerts = levels, tallies, alerts
        self._snap_at = self._clock()

    # -- configuration -----------------------------------------------------------------
    def register_detector(self, detector: Detector) -> None:
        if not callable(getattr(detector, "analyze", None)):
            raise TypeError("a detector needs an async analyze(event) method")
        self._detectors.append(detector)

    def register_batch_job(self, job: Callable[[], Awaitable[None]]) -> None:
        """Run ``await job()`` in the background task whenever the event queue is
        drained, when idle (every ``flush_interval`` seconds) and at least that often
        under a steady stream of events: work taken off the request path in
        micro-batches (the behavioural scores, ``anomaly/engine.py``)."""
        self._jobs.append(job)

    def register_alert_enricher(self, enricher: Callable[[SecurityAlert], None]) -> None:
        """Call ``enricher(alert)`` before an alert is stored (threat intelligence adds
        the lists its address is on, and advice); it may change ``details`` and
        ``recommended_actions``, and must not block."""
        self._enrichers.append(enricher)

    def register_alert_handler(self, handler: AlertHandler) -> None:
        if not callable(handler):
            raise TypeError("an alert handler must be callable")
        self._handlers.append(handler)

    @property
    def detectors(self) -> tuple[Detector, ...]:
        return tuple(self._detectors)

    # -- queries ----------------------------------------------------------------------
    # Each query is usable sync or awaited (module docstring): one coroutine reads
    # the store, one function builds the answer from what was read, and a sync
    # call inside the loop builds it from the snapshot instead.
    def get_active_alerts(
        self, threat_level: ThreatLevel | str | None = None, *, limit: int = 1000
    ) -> AwaitableList[SecurityAlert]:
        """Unacknowledged alerts (every worker's), newest first, optionally of one
        level (any case: ``"HIGH"``)."""
        level = None if threat_level is None else ThreatLevel(threat_level)

        async def fresh() -> list[SecurityAlert]:
            with self._caller():
                alerts = await self._alerts.list(threat_level=level, limit=limit)
                mine = not self._scoped or current_tenant() is None
            if level is None and limit >= self._snapshot_size and mine:  # as good as a refresh
                self._snap_alerts = alerts[: self._snapshot_size]
            return alerts

        if in_running_loop():
            snap = [] if self._tenant_caller() else self._snap_alerts
            now = [a for a in snap if level is None or a.threat_level is level]
            return AwaitableList(now[:limit], fresh)
        return AwaitableList(self._portal.run(fresh), fresh)

    async def get_alert(self, alert_id: str) -> SecurityAlert | None:
        with self._caller():
            return await self._alerts.get(alert_id)

    def acknowledge_alert(self, alert_id: str) -> AwaitableBool:
        """Acknowledge an alert; false when the id is unknown. Without ``await``
        inside the loop the store write runs as a task (finished by :meth:`stop`)
        and the answer is the snapshot's until it is done."""
        at = self._clock()

        async def act() -> bool:
            with self._caller():
                return await self._alerts.acknowledge(alert_id, at) is not None

        if not in_running_loop():
            done = self._portal.run(act)
            # The snapshot belongs to the loop's thread: changed there.
            self._portal.call(self._forget, alert_id)
            return AwaitableBool(done)
        known = self._forget(alert_id)
        task = asyncio.get_running_loop().create_task(act())
        self._pending.add(task)
        task.add_done_callback(self._settled)
        return AwaitableBool(known, task)

    def _forget(self, alert_id: str) -> bool:
        for i, alert in enumerate(self._snap_alerts):
            if alert.alert_id == alert_id:
                del self._snap_alerts[i]
                self._snap_levels[alert.threat_level] = max(
                    0, self._snap_levels[alert.threat_level] - 1
                )
                return True
        return False

    def _settled(self, task: asyncio.Task[bool]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning(EVENT_STORE_FAILED, what="acknowledge", error=safe_text(str(exc)))

    @property
    def queue_depth(self) -> int:
        """Events this worker has yet to analyse."""
        return self._queue.qsize() if self._queue is not None else 0

    @property
    def metrics(self) -> dict[str, int]:
        """This worker's counts since it started (the summary has every worker's)."""
        return dict(self._metrics)

    def get_security_summary(self) -> AwaitableDict:
        """Alerts and counters of every worker (this one's counts flushed first);
        ``running`` and ``queue_depth`` are this worker's. ``recent_alerts`` is
        keyed by level name as in the integration guide (``{"HIGH": 2, ...}``)."""

        async def fresh() -> dict[str, Any]:
            await self._flush_tallies()
            with self._caller():
                levels = await self._alerts.count_active()
            with self._platform():
                tallies = await self._tallies.tallies(_TALLIES)
            if not self._tenant_caller():
                self._snap_levels, self._snap_tallies = levels, tallies
            return self._summary(levels, tallies)

        if in_running_loop():
            # The snapshot's shared counts plus what this worker has not flushed yet.
            unflushed = self._metrics - self._flushed
            tallies = dict(Counter(self._snap_tallies) + unflushed)
            levels = {} if self._tenant_caller() else self._snap_levels
            return AwaitableDict(self._summary(levels, tallies), fresh)
        return AwaitableDict(self._portal.run(fresh), fresh)

    def _summary(self, by_level: dict[ThreatLevel, int], shared: dict[str, int]) -> dict[str, Any]:
        return {
            "monitoring_enabled": self.enabled,
            "running": self.running,
            "active_alerts_count": sum(by_level.values()),
            "recent_alerts": {level.name: by_level.get(level, 0) for level in ThreatLevel},
            "recent_metrics": {name: shared.get(name, 0) for name in METRICS},
            # Only the detectors that run: none while monitoring is off.
            "detectors": (
                [getattr(d, "name", type(d).__name__) for d in self._detectors]
                if self.enabled
                else []
            ),
            "queue_depth": self.queue_depth,
        }
