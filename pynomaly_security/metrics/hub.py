"""The metrics hub: each worker's counts into the shared state, read back whole.

Many workers (issue 20, item 2). Each worker counts in plain dicts on the request
path (:class:`~pynomaly_security.metrics.counters.RequestCounts`) and a background
task adds its counts to the shared tallies every ``METRICS_FLUSH_SECONDS`` (the
monitor's own counters travel the same way). A scrape, served by any one worker,
flushes that worker first and reads the tallies: every worker's counts, each
counted once, in whichever worker the scraper reached. A count is at most one
flush interval late, never lost while the store answers (a failed flush keeps its
deltas for the next) and never doubled. Chosen over prometheus-client's
multiprocess mode: that mode writes an mmap'd file on every increment (a lock and
a struct pack per request, where this path has a dict increment), needs a directory
wiped at each start and the same layout on every host, and still cannot add the
gauges that are global anyway (bans, incidents, lockouts live in the shared state,
and are read from it at the scrape).

Time series (the summary's 24 hours at one minute): each worker keeps its counts of
the current minute and ``put``s them as one document per worker and minute
(``metrics_minutes``, id ``<minute>:<worker>``) at each flush; the collection keeps
at most :data:`SERIES_KEEP` documents (a day of sixteen workers), the oldest dropped
first, so the series is bounded in the backend whatever the traffic.

Gauges that are global come from the shared state at the scrape: active alerts
by level, lockouts, decisions in force, incidents by status and severity, policy
decisions; and the audit trail's checkpoints and last verification. The compliance
score and the vulnerable dependencies come from optional providers
(:meth:`MetricsHub.register_provider`, ``"compliance"`` and ``"vulnerabilities"``);
without one their tiles read "not configured".
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pynomaly_security._log import get_logger
from pynomaly_security.exceptions import StorageError
from pynomaly_security.logsafe import safe_text
from pynomaly_security.metrics.counters import SEP, RequestCounts
from pynomaly_security.metrics.thresholds import COOLDOWN, ThresholdRule, parse_rules
from pynomaly_security.monitor.events import SecurityAlert, ThreatLevel
from pynomaly_security.storage.base import DocumentStore, TallyStore

if TYPE_CHECKING:
    from pynomaly_security.metrics.port import MetricsPort
    from pynomaly_security.plugin import SecurityStack
    from pynomaly_security.settings import MetricsSection

__all__ = [
    "PROVIDERS",
    "SERIES",
    "SERIES_KEEP",
    "MetricsHub",
    "Provider",
    "Snapshot",
]

log = get_logger(__name__)

TALLIES = "metrics"
SERIES_COLLECTION = "metrics_minutes"
SERIES_KEEP = 1440 * 16
MINUTES = 1440
SERIES = (
    "requests",
    "blocked",
    "injections",
    "errors",
    "alerts",
    "failed_logins",
    "lockouts",
    "dropped",
)
"""The one-minute series of the summary (all workers' counts per minute)."""
PROVIDERS = ("compliance", "vulnerabilities")
"""Optional providers: ``compliance`` -> ``{framework: score 0..100}`` (issue 19),
``vulnerabilities`` -> ``{severity: findings}`` (issue 18)."""
CURRENT_EVERY = 15.0
CHECKPOINTS_EVERY = 30.0
EVENT_FLUSH_FAILED = "metrics_flush_failed"
EVENT_SOURCE_FAILED = "metrics_source_failed"

Provider = Callable[[], Awaitable[Mapping[str, float]] | Mapping[str, float]]
_MONITOR_SERIES = {
    "failed_logins": "failed_logins",
    "lockouts": "lockouts",
    "dropped_events": "dropped",
}
_FIELD_SERIES = {
    "inspected": "requests",
    "blocked": "blocked",
    "score_count": "injections",
    "errors": "errors",
    "alerts": "alerts",
}


@dataclass
class Snapshot:
    """Everything a scrape or the summary shows, read once (``None``: not available)."""

    at: float
    tallies: dict[str, int]
    monitor: dict[str, int] = field(default_factory=dict)
    alerts_active: dict[str, int] = field(default_factory=dict)
    queue_depth: int = 0
    lockouts_active: int | None = None
    decisions_active: dict[str, int] | None = None
    incidents_by_status: dict[str, int] | None = None
    incidents_by_severity: dict[str, int] | None = None
    open_incidents: int | None = None
    time_to_contain: list[float] = field(default_factory=list)
    time_to_resolve: list[float] = field(default_factory=list)
    policy_totals: dict[str, int] | None = None
    audit: dict[str, Any] | None = None
    providers: dict[str, dict[str, float] | None] = field(default_factory=dict)
    sources_up: dict[str, bool] = field(default_factory=dict)
    latency_sample: int = 64
    sessions_active: int | None = None


class MetricsHub:
    """One worker's side of the metrics: counts, flushes, snapshots, thresholds.

    Args:
        section: the ``METRICS_*`` settings.
        state: where the tallies and minute documents live (the stack's ``STATE_URL``
            backend, else its store): shared when that backend is.
        tenancy: count requests and blocks by tenant too (``TENANCY_ENABLED``).
        clock: seconds since the epoch (tests inject it).
    """

    def __init__(
        self,
        section: MetricsSection,
        state: object,
        *,
        tenancy: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(state, TallyStore) or not isinstance(state, DocumentStore):
            from pynomaly_security.storage.base import missing_capability

            raise missing_capability(state, TallyStore, "the metrics")
        self.section = section
        self.flush_seconds = section.flush_seconds
        """Seconds between this worker's flushes (``METRICS_FLUSH_SECONDS``)."""
        self.counts = RequestCounts(
            latency_sample=section.latency_sample,
            tenant_labels=section.tenant_labels_max if tenancy else None,
        )
        self._tallies: TallyStore = state
        self._minutes = state.documents(SERIES_COLLECTION, indexed=("minute",), keep=SERIES_KEEP)
        self.clock = clock
        self._worker = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._pending: Counter[str] = Counter()
        self._series: dict[int, Counter[str]] = {}
        self._dirty: set[int] = set()
        self._monitor_seen: dict[str, int] = {}
        self._audit_seen: dict[str, int] = {}
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._providers: dict[str, Provider] = {}
        self.rules: list[ThresholdRule] = parse_rules(list(section.alert_thresholds))
        self._evaluated_minute: int | None = None
        self._current_at = float("-inf")
        self._checkpoints: tuple[float, tuple[int, int | None, int | None]] = (
            float("-inf"),
            (0, None, None),
        )
        self.stack: SecurityStack | None = None
        self.port: MetricsPort | None = None
        """The metrics port (``METRICS_PORT``), started and stopped with the hub."""
        self.sessions: Callable[[], Awaitable[int]] | None = None
        """Counts the live sessions of the app's authenticator (``install_authenticator``
        sets it); ``None``: no session gauges at all, not zeros."""

    # -- wiring ---------------------------------------------------------------------------
    def attach(self, stack: SecurityStack) -> None:
        """Read the stack's parts at each snapshot; count its monitor's alerts."""
        self.stack = stack
        stack.security_monitor.register_alert_handler(self._count_alert)

    def _count_alert(self, alert: SecurityAlert) -> None:
        self.counts.alert(alert.alert_type, alert.threat_level.value)

    def register_provider(self, name: str, provider: Provider) -> None:
        """A source for one of the optional tiles and gauges: ``"compliance"`` returns
        ``{framework: score 0..100}``, ``"vulnerabilities"`` ``{severity: findings}``
        (sync or async; read at each scrape and summary)."""
        if name not in PROVIDERS:
            raise ValueError(f"unknown provider {name!r}; one of {PROVIDERS}")
        self._providers[name] = provider

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        if self.port is not None and not self.port.serving:
            await self.port.start()

    async def aclose(self) -> None:
        if self.port is not None:
            await self.port.aclose()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(StorageError):
            await self.flush()  # a stopping worker's last counts are not lost

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            try:
                await self.flush()
                if self.rules:
                    await self.evaluate()
            except Exception as exc:  # never let the task die; retried next tick
                log.warning(EVENT_FLUSH_FAILED, error=safe_text(repr(exc)))

    # -- flushing ---------------------------------------------------------------------------
    def _drain(self) -> None:
        """Move the request path's counts (and the monitor's new counts) into the pending
        tallies and the current minute's series."""
        deltas = self.counts.drain()
        minute = int(self.clock() // 60)
        series = self._series.get(minute)
        if series is None:
            series = self._series[minute] = Counter()
        changed = False
        for name, n in deltas.items():
            base = name.split(SEP, 1)[0]
            target = _FIELD_SERIES.get(base)
            if target is not None:
                series[target] += n
                changed = True
        self._pending.update(deltas)
        if self.stack is not None:
            seen = self.stack.security_monitor.metrics
            for metric, target in _MONITOR_SERIES.items():
                delta = seen.get(metric, 0) - self._monitor_seen.get(metric, 0)
                if delta:
                    series[target] += delta
                    changed = True
            self._monitor_seen = {m: seen.get(m, 0) for m in _MONITOR_SERIES}
            if self.stack.audit_logger is not None:
                self._drain_audit(self.stack.audit_logger.records_written)
        if changed:
            self._dirty.add(minute)

    def _drain_audit(self, written: dict[str, int]) -> None:
        """The audit records this worker committed since the last drain, as tallies
        (``audit_records<TAB>kind``): the writer only counts up, the hub keeps what
        it has already passed on."""
        seen = self._audit_seen
        for kind, n in written.items():
            delta = n - seen.get(kind, 0)
            if delta:
                self._pending[f"audit_records{SEP}{kind}"] += delta
        self._audit_seen = written

    async def flush(self) -> None:
        """Add this worker's counts to the shared tallies and write its minute documents."""
        async with self._lock:  # two flushes at once would add the same counts twice
            self._drain()
            pending = {k: v for k, v in self._pending.items() if v}
            if pending:
                await self._tallies.add_tallies(TALLIES, pending)
                self._pending.clear()
            now_minute = int(self.clock() // 60)
            for minute in sorted(self._dirty):
                counts = self._series[minute]
                await self._minutes.put(
                    f"{minute}:{self._worker}",
                    {"minute": minute, "worker": self._worker, "c": dict(counts)},
                )
                self._dirty.discard(minute)
            for minute in [m for m in self._series if m < now_minute and m not in self._dirty]:
                del self._series[minute]  # written whole: the next minute starts afresh

    # -- reading ----------------------------------------------------------------------------
    async def snapshot(self) -> Snapshot:
        """This worker flushed, then every worker's counts and the global gauges."""
        try:
            await self.flush()
        except StorageError as exc:
            log.warning(EVENT_FLUSH_FAILED, error=safe_text(str(exc)))
        snap = Snapshot(
            at=self.clock(),
            tallies=await self._tallies.tallies(TALLIES),
            latency_sample=self.counts.latency_sample,
        )
        stack = self.stack
        if stack is None:
            return snap
        await self._source(snap, "monitor", self._read_monitor(snap, stack))
        if stack.lockouts is not None:
            await self._source(snap, "lockouts", self._read_lockouts(snap, stack))
        if stack.decisions is not None:
            self._read_decisions(snap, stack)
        if stack.incidents is not None:
            await self._source(snap, "incidents", self._read_incidents(snap, stack))
        if stack.policies is not None:
            await self._source(snap, "policies", self._read_policies(snap, stack))
        if stack.audit_logger is not None:
            await self._source(snap, "audit", self._read_audit(snap, stack))
        if self.sessions is not None:
            await self._source(snap, "sessions", self._read_sessions(snap, self.sessions))
        for name in PROVIDERS:
            provider = self._providers.get(name)
            snap.providers[name] = None
            if provider is not None:
                await self._source(snap, name, self._read_provider(snap, name, provider))
        return snap

    async def _source(self, snap: Snapshot, name: str, reading: Awaitable[None]) -> None:
        """Run one source's reading; a source that fails is marked down, not fatal."""
        try:
            await reading
        except Exception as exc:
            snap.sources_up[name] = False
            log.warning(EVENT_SOURCE_FAILED, source=name, error=safe_text(repr(exc)))
        else:
            snap.sources_up[name] = True

    async def _read_monitor(self, snap: Snapshot, stack: SecurityStack) -> None:
        summary = await stack.security_monitor.get_security_summary()
        snap.monitor = dict(summary["recent_metrics"])
        snap.alerts_active = {k.lower(): v for k, v in summary["recent_alerts"].items()}
        snap.queue_depth = int(summary["queue_depth"])

    async def _read_lockouts(self, snap: Snapshot, stack: SecurityStack) -> None:
        assert stack.lockouts is not None
        snap.lockouts_active = len(await stack.lockouts.list_lockouts(limit=10_000))

    def _read_decisions(self, snap: Snapshot, stack: SecurityStack) -> None:
        assert stack.decisions is not None
        # This worker's index of the shared decisions, reloaded within DECISION_POLL_SECONDS.
        now = self.clock()
        counts: Counter[str] = Counter()
        for decision in stack.decisions.view.index.decisions:
            if decision.expires_at > now:
                counts[str(decision.action.value)] += 1
        snap.decisions_active = dict(counts)
        snap.sources_up["decisions"] = True

    async def _read_incidents(self, snap: Snapshot, stack: SecurityStack) -> None:
        assert stack.incidents is not None
        store = stack.incidents.store
        snap.incidents_by_status = await store.count("status")
        snap.incidents_by_severity = await store.count("severity")
        from pynomaly_security.incidents.model import IncidentStatus

        snap.open_incidents = sum(
            n for status, n in snap.incidents_by_status.items() if IncidentStatus(status).is_open
        )
        for incident in await store.list(limit=1000):
            times = incident.status_times
            contained = times.get("contained")
            resolved = times.get("closed") or times.get("recovered")
            if contained is not None:
                snap.time_to_contain.append(max(0.0, contained - incident.created_at))
            if resolved is not None:
                snap.time_to_resolve.append(max(0.0, resolved - incident.created_at))

    async def _read_policies(self, snap: Snapshot, stack: SecurityStack) -> None:
        assert stack.policies is not None
        shared = await stack.policies.ledger.read()
        snap.policy_totals = dict(shared.totals)

    async def _read_audit(self, snap: Snapshot, stack: SecurityStack) -> None:
        audit = stack.audit_logger
        assert audit is not None
        last = audit.last_verification
        info: dict[str, Any] = {
            "queue_depth": audit.queue_depth,
            "dropped": audit.dropped,
            "verified_at": None if last is None else last[0],
            "verified_ok": None if last is None else last[1].ok,
            "verified_records": None if last is None else last[1].count,
            "problem": None if last is None else last[1].problem,
        }
        if audit.running and audit.loop is asyncio.get_running_loop():
            # The store lists every checkpoint: read at most every CHECKPOINTS_EVERY seconds
            # (a checkpoint is made every AUDIT_CHECKPOINT_SECONDS, 60 by default).
            at, found = self._checkpoints
            if snap.at - at >= CHECKPOINTS_EVERY:
                checkpoints = await audit.store.checkpoints()
                newest = checkpoints[-1] if checkpoints else None
                found = (len(checkpoints), newest.seq, newest.ts_us) if newest else (0, None, None)
                self._checkpoints = (snap.at, found)
            count, seq, ts_us = found
            info["checkpoints"] = count
            if seq is not None and ts_us is not None:
                info["checkpoint_seq"] = seq
                info["checkpoint_age_seconds"] = max(0.0, snap.at - ts_us / 1e6)
        snap.audit = info

    async def _read_sessions(self, snap: Snapshot, count: Callable[[], Awaitable[int]]) -> None:
        snap.sessions_active = await count()

    async def _read_provider(self, snap: Snapshot, name: str, provider: Provider) -> None:
        value = provider()
        if inspect.isawaitable(value):
            value = await value
        snap.providers[name] = {str(k): float(v) for k, v in dict(value).items()}

    async def series(self, minutes: int = MINUTES) -> tuple[int, dict[str, list[int]]]:
        """``(first minute, {series: counts})`` of the last ``minutes`` minutes, every
        worker's documents added up (the current minute last)."""
        now_minute = int(self.clock() // 60)
        first = now_minute - minutes + 1
        out = {name: [0] * minutes for name in SERIES}
        for doc in await self._minutes.find(None, limit=SERIES_KEEP):
            minute = doc.get("minute")
            if not isinstance(minute, int) or not first <= minute <= now_minute:
                continue
            for name, n in (doc.get("c") or {}).items():
                if name in out and isinstance(n, int):
                    out[name][minute - first] += n
        return first, out

    # -- thresholds -----------------------------------------------------------------------
    async def evaluate(self) -> None:
        """Per-minute rules on the last complete minute (once every worker flushed it);
        current-value rules every :data:`CURRENT_EVERY` seconds."""
        now = self.clock()
        complete = int((now - 2 * self.flush_seconds - 1) // 60) - 1
        minute_rules = [r for r in self.rules if r.per_minute]
        if minute_rules and complete != self._evaluated_minute:
            self._evaluated_minute = complete
            docs = await self._minutes.find({"minute": complete}, limit=1000)
            totals: Counter[str] = Counter()
            for doc in docs:
                counts = doc.get("c") or {}
                totals.update({k: v for k, v in counts.items() if isinstance(v, int)})
            for rule in minute_rules:
                per_minute = totals.get(rule.series.removesuffix("_per_minute"), 0)
                if rule.fires(per_minute):
                    await self._raise(rule, per_minute, minute=complete)
        current_rules = [r for r in self.rules if not r.per_minute]
        if current_rules and now - self._current_at >= CURRENT_EVERY:
            self._current_at = now
            snap = await self.snapshot()
            values = current_values(snap)
            for rule in current_rules:
                observed = values.get(rule.series)
                if observed is not None and rule.fires(observed):
                    await self._raise(rule, observed, minute=None)

    async def _raise(self, rule: ThresholdRule, observed: float, *, minute: int | None) -> None:
        stack = self.stack
        if stack is None:
            return
        store = stack.store
        if store is not None and not await store.add(
            f"metrics:threshold:{rule.text}", str(observed), COOLDOWN
        ):
            return  # another worker (or this one) raised it within the cool-down
        audit = rule.series == "audit_verification_failed"
        level = ThreatLevel.HIGH if audit else ThreatLevel.MEDIUM
        await stack.security_monitor.raise_alert(
            SecurityAlert(
                alert_type="metric_threshold",
                threat_level=level,
                message=f"metric threshold crossed: {rule.text} (observed {observed:g})",
                details={
                    "rule": rule.text,
                    "series": rule.series,
                    "observed": observed,
                    "threshold": rule.value,
                    **({"minute_start": minute * 60} if minute is not None else {}),
                },
            )
        )


def current_values(snap: Snapshot) -> dict[str, float]:
    """The current values threshold rules and the dashboard tiles name."""
    values: dict[str, float] = {
        "dropped_events": float(snap.monitor.get("dropped_events", 0)),
        "active_alerts": float(sum(snap.alerts_active.values())),
        "queue_depth": float(snap.queue_depth),
    }
    if snap.audit is not None and snap.audit.get("verified_ok") is not None:
        values["audit_verification_failed"] = 0.0 if snap.audit["verified_ok"] else 1.0
    if snap.open_incidents is not None:
        values["open_incidents"] = float(snap.open_incidents)
    if snap.lockouts_active is not None:
        values["lockouts_active"] = float(snap.lockouts_active)
    if snap.decisions_active is not None:
        values["decisions_active"] = float(sum(snap.decisions_active.values()))
    return values
