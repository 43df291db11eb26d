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

import structlog

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

__all__ = ["ALERT_BOUNDS", "METRICS", "AlertHandler", "SecurityMonitor", "default_detectors"]

log = structlog.get_logger(__name__)

AlertHandler = Callable[[SecurityAlert], Awaitable[None] | None]

EVENT_DETECTOR_FAILED = "security_detector_failed"
EVENT_HANDLER_FAILED = "security_alert_handler_failed"
EVENT_ALERT = "security_alert"
EVENT_DROPPED = "security_event_dropped"
EVENT_STORE_FAILED = "security_monitor_store_failed"

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
            when no event comes.
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
    ) -> None:
        if store is None:
            store = MemoryStore(max_keys=max_keys)
        self._store = store
        if detectors is None:
            detectors = default_detectors(store)
        self._detectors: list[Detector] = list(detectors)
        self._handlers: list[AlertHandler] = []
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
        if self._queue is None:
            self._queue = asyncio.Queue(self._queue_size)
        self._started_at = self._clock()
        self._task = asyncio.get_running_loop().create_task(self._run(self._queue))

    async def stop(self) -> None:
        """Process what is queued, then stop the background task."""
        if self._task is None:
            return
        await self.flush(timeout=5.0)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

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
        await self._flush_tallies()

    async def _flush_tallies(self) -> None:
        async with self._flush_lock:  # two flushes at once would add the same counts twice
            deltas = {k: v - self._flushed[k] for k, v in self._metrics.items()}
            deltas = {k: v for k, v in deltas.items() if v}
            if not deltas:
                return
            try:
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
        """Run every detector on one event now; raise the alerts they return."""
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
        first (:data:`ALERT_BOUNDS`)."""
        self._bound(alert)
        try:
            await self._alerts.add(alert)
        except StorageError as exc:  # the log line and the handlers still get it
            log.warning(EVENT_STORE_FAILED, what="alerts", error=safe_text(str(exc)))
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
        alert.source_ip = None if alert.source_ip is None else text(alert.source_ip)
        alert.user_id = None if alert.user_id is None else text(alert.user_id)
        # The identity seeds the de-duplication: a detail repeating the user name
        # refers to it instead of copying it again.
        identity = {"source_ip": alert.source_ip, "user_id": alert.user_id}
        alert.details = bounds.apply({"details": alert.details}, identity)["details"]

    async def _run(self, queue: asyncio.Queue[SecurityEvent]) -> None:
        while True:
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel
                # that arrives as the get completes, and this loop would never stop.
                async with asyncio.timeout(self._flush_interval):
                    event = await queue.get()
            except TimeoutError:  # idle: counts made without an event (count()) go out
                await self._flush_tallies()
                continue
            try:
                await self.process_event(event)
            finally:
                queue.task_done()
            if queue.empty():
                await self._flush_tallies()

    # -- configuration -----------------------------------------------------------------
    def register_detector(self, detector: Detector) -> None:
        if not callable(getattr(detector, "analyze", None)):
            raise TypeError("a detector needs an async analyze(event) method")
        self._detectors.append(detector)

    def register_alert_handler(self, handler: AlertHandler) -> None:
        if not callable(handler):
            raise TypeError("an alert handler must be callable")
        self._handlers.append(handler)

    @property
    def detectors(self) -> tuple[Detector, ...]:
        return tuple(self._detectors)

    # -- queries -------------------------------------------------------------------------
    async def get_active_alerts(
        self, threat_level: ThreatLevel | None = None, *, limit: int = 1000
    ) -> list[SecurityAlert]:
        """Unacknowledged alerts (every worker's), newest first, optionally of one level."""
        return await self._alerts.list(threat_level=threat_level, limit=limit)

    async def get_alert(self, alert_id: str) -> SecurityAlert | None:
        return await self._alerts.get(alert_id)

    async def acknowledge_alert(self, alert_id: str) -> bool:
        """Acknowledge an alert; ``False`` when the id is unknown."""
        return await self._alerts.acknowledge(alert_id, self._clock()) is not None

    @property
    def metrics(self) -> dict[str, int]:
        """This worker's counts since it started (the summary has every worker's)."""
        return dict(self._metrics)

    async def get_security_summary(self) -> dict[str, Any]:
        """Alerts and counters of every worker (this one's counts flushed first);
        ``running`` and ``queue_depth`` are this worker's."""
        await self._flush_tallies()
        by_level = await self._alerts.count_active()
        shared = await self._tallies.tallies(_TALLIES)
        return {
            "monitoring_enabled": self.enabled,
            "running": self.running,
            "active_alerts_count": sum(by_level.values()),
            "recent_alerts": {level.value: by_level.get(level, 0) for level in ThreatLevel},
            "recent_metrics": {name: shared.get(name, 0) for name in METRICS},
            # Only the detectors that run: none while monitoring is off.
            "detectors": (
                [getattr(d, "name", type(d).__name__) for d in self._detectors]
                if self.enabled
                else []
            ),
            "queue_depth": self._queue.qsize() if self._queue is not None else 0,
        }
