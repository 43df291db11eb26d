"""``ComplianceValidator``: runs the catalogue's checks, keeps their results, reacts to
a control that stops passing, and writes every run to the audit trail.

Schedule: one full run at start-up (once the app's own lifespan has started, so its
users exist), the cheap checks every ``COMPLIANCE_CHEAP_INTERVAL_SECONDS`` and every
check every ``COMPLIANCE_INTERVAL_SECONDS``, in one background task: nothing runs on
the request path. Under several workers a run is leased per interval slot in the
shared store (``add`` with a TTL), so one worker runs it and all read its results
from the state backend.

A run: every selected check (errors and timeouts become ``error`` results with the
exception named), merged with the latest results of checks not run this time, then
assessed per framework with the waivers. A control that was ``pass`` and is now
``fail`` raises one monitor alert (``compliance_control_failed``, which the stack's
alert handler also commits to the audit trail) and opens (or adds to) an incident
deduplicated on the failing checks. The run's digest (SHA-256 of its results in
canonical JSON) and statuses are committed to the audit trail as a
``compliance_run`` security event; its sequence number and record hash are the audit
head every report of that run names (``compliance verify`` checks them).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import secrets
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pynomaly_security._log import get_logger
from pynomaly_security.compliance.assess import assess, assess_all
from pynomaly_security.compliance.catalogue import Catalogue, load_catalogue
from pynomaly_security.compliance.checks import BUILTIN_KINDS, CheckContext, CheckFn, CheckKind
from pynomaly_security.compliance.checks.base import Cadence
from pynomaly_security.compliance.results import CheckResult, Status, iso
from pynomaly_security.compliance.sources import ComplianceSources
from pynomaly_security.compliance.store import ComplianceStore
from pynomaly_security.compliance.waivers import Waivers, load_waivers
from pynomaly_security.exceptions import ConfigurationError

if TYPE_CHECKING:
    from pynomaly_security.plugin import SecurityStack
    from pynomaly_security.settings import SecuritySettings

__all__ = ["AUDIT_EVENT", "ComplianceValidator", "results_digest"]

log = get_logger(__name__)

AUDIT_EVENT = "compliance_run"
ALERT_TYPE = "compliance_control_failed"


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()


def results_digest(run_id: str, at: float, results: Mapping[str, Mapping[str, Any]]) -> str:
    """SHA-256 (hex) of a run's results as JSON with sorted keys: what the audit trail
    holds for the run, and what ``compliance verify`` recomputes from a report."""
    return hashlib.sha256(canonical({"run_id": run_id, "at": at, "results": results})).hexdigest()


class ComplianceValidator:
    """Args:
    settings: the stack's settings (the live ones are read at each run when ``stack``
        has live settings).
    stack: the :class:`~pynomaly_security.plugin.SecurityStack` (audit, monitor,
        incidents, inspector...); None for a validator of settings alone.
    app: the ASGI app probes are sent through (a callable returning it: the stack
        holds the app weakly).
    state: where results and history live (``state()``: documents and logs).
    lease_store: the shared store runs are leased in (several workers); None: no lease.
    sources: users, field encryption, vulnerabilities (see ``sources.py``).
    clock: wall clock (seconds).
    """

    def __init__(
        self,
        settings: SecuritySettings,
        *,
        stack: SecurityStack | None = None,
        app: Callable[[], Any] | None = None,
        state: Any,
        lease_store: Any = None,
        sources: ComplianceSources | None = None,
        catalogue: Catalogue | None = None,
        waivers: Waivers | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        section = settings.compliance
        self.settings = settings
        self.stack = stack
        self._app = app
        self.catalogue = catalogue or load_catalogue(section.catalogue_file)
        # A malformed waivers file stops start-up here, with the entry at fault named.
        self.waivers = waivers or load_waivers(section.waivers_file, self.catalogue)
        self.sources = sources or ComplianceSources()
        self.store = ComplianceStore(
            state, keep_runs=section.keep_runs, history_entries=section.history_entries
        )
        self._state = state
        self._lease = lease_store
        self._clock = clock
        self.kinds: dict[str, CheckKind] = dict(BUILTIN_KINDS)
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._first_run: asyncio.Event | None = None
        self._stop = asyncio.Event()
        self.runs = 0
        """Runs this process made (the others' are in the state backend)."""

    @classmethod
    def from_stack(cls, stack: SecurityStack, app: Callable[[], Any] | None) -> ComplianceValidator:
        state = stack.state if stack.state is not None else stack.store
        shared = bool(getattr(stack.store, "shared", False))
        return cls(
            stack.settings, stack=stack, app=app, state=state,
            lease_store=stack.store if shared else None,
        )  # fmt: skip

    # -- extending ------------------------------------------------------------------
    def register_kind(self, name: str, func: CheckFn, cadence: Cadence = "cheap") -> None:
        """Add a check kind the application's catalogue file may use (before start)."""
        if name in BUILTIN_KINDS:
            raise ConfigurationError(f"{name!r} is a built-in check kind")
        self.kinds[name] = CheckKind(func, cadence)

    def _check_kinds(self) -> None:
        unknown = sorted(
            {f"{cid} ({s.kind})" for cid, s in self.catalogue.checks.items()
             if s.kind not in self.kinds}
        )  # fmt: skip
        if unknown:
            raise ConfigurationError(
                f"compliance catalogue: checks of unknown kinds: {unknown}; register them "
                "with stack.compliance.register_kind(name, func) before the app starts"
            )

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        """Start the schedule (the first run is a full one); called once the app's own
        lifespan has started."""
        self._check_kinds()
        if self._task is None:
            self._first_run = asyncio.Event()
            self._stop = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._loop())

    @property
    def scheduled(self) -> bool:
        """Whether this process's schedule task runs."""
        return self._task is not None and not self._task.done()

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            # The flag as well as the cancel: a run probing the app in process can lose a
            # cancel inside the app's own layers (seen at shut-down during the start-up
            # run), and the loop must still end at its next wait.
            self._stop.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        section = self.settings.compliance
        try:
            await self._scheduled("full", section.interval_seconds)
        finally:
            if self._first_run is not None:
                self._first_run.set()
        next_full = self._clock() + section.interval_seconds
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), section.cheap_interval_seconds)
            if self._stop.is_set():
                return
            if self._clock() >= next_full:
                next_full = self._clock() + section.interval_seconds
                await self._scheduled("full", section.interval_seconds)
            else:
                await self._scheduled("cheap", section.cheap_interval_seconds)

    async def _scheduled(self, kind: Cadence, period: float) -> None:
        try:
            if self._lease is not None:
                slot = int(self._clock() // period)
                key = f"compliance:lease:{kind}:{slot}"
                if not await self._lease.add(key, secrets.token_hex(4), period):
                    return  # another worker runs this slot
            await self.run(kind)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the schedule survives a failing run; the log says why
            log.error("compliance_run_failed", kind=kind, error=repr(exc)[:300])

    async def wait_first_run(self, timeout: float = 30.0) -> None:
        """Wait (bounded) for the start-up run, so a status asked for at start-up is one."""
        if self._first_run is not None and not self._first_run.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._first_run.wait(), timeout)

    # -- one run ------------------------------------------------------------------------
    def _effective_settings(self) -> SecuritySettings:
        live = self.stack.live if self.stack is not None else None
        return live.current.settings if live is not None else self.settings

    def _context(self, now: float) -> CheckContext:
        app = self._app() if self._app is not None else None
        sources = self.sources
        if sources.authenticator is None and app is not None:
            from pynomaly_security.auth.deps import APP_STATE_KEY

            found = getattr(getattr(app, "state", None), APP_STATE_KEY, None)
            if found is not None:
                sources = ComplianceSources(
                    users=sources.users, field_encryption=sources.field_encryption,
                    vulnerabilities=sources.vulnerabilities, authenticator=found,
                )  # fmt: skip
        return CheckContext(
            settings=self._effective_settings(), stack=self.stack, app=app, sources=sources,
            now=now, state=self._state,
        )  # fmt: skip

    async def _one(self, ctx: CheckContext, check_id: str) -> CheckResult:
        spec = self.catalogue.checks[check_id]
        kind = self.kinds[spec.kind]
        try:
            return await asyncio.wait_for(
                kind.func(ctx, check_id, spec.params),
                self.settings.compliance.check_timeout_seconds,
            )
        except TimeoutError:
            why = f"timed out after {self.settings.compliance.check_timeout_seconds} s"
        except Exception as exc:
            why = f"{type(exc).__name__}: {str(exc)[:300]}"
        return ctx.result(check_id, Status.ERROR, f"the check could not run: {why}")

    async def run(self, kind: Cadence = "full") -> dict[str, Any]:
        """Run the checks of ``kind`` (``full``: all), store, react, audit; the run."""
        self._check_kinds()
        async with self._lock:
            started = self._clock()
            run_id = f"{int(started)}-{secrets.token_hex(4)}"
            ctx = self._context(started)
            selected = [
                cid for cid, spec in self.catalogue.checks.items()
                if kind == "full" or self.kinds[spec.kind].cadence == "cheap"
            ]  # fmt: skip
            fresh = {cid: await self._one(ctx, cid) for cid in selected}
            previous = await self.store.latest()
            results: dict[str, CheckResult] = {}
            if previous is not None:
                for cid, doc in dict(previous.get("results", {})).items():
                    if cid in self.catalogue.checks:
                        results[cid] = CheckResult.from_dict(doc)
            results.update(fresh)
            frameworks = assess_all(self.catalogue, results, self.waivers, started)
            controls = {
                f"{fw}/{c['id']}": c["status"]
                for fw, a in frameworks.items() for c in a["controls"]
            }  # fmt: skip
            result_docs = {cid: r.to_dict() for cid, r in sorted(results.items())}
            run: dict[str, Any] = {
                "run_id": run_id,
                "kind": kind,
                "at": started,
                "at_iso": iso(started),
                "checks_run": selected,
                "results": result_docs,
                "digest": results_digest(run_id, started, result_docs),
                "controls": controls,
                "scores": {fw: a["score"] for fw, a in frameworks.items()},
            }
            failed_now = await self._transitions(previous, controls, results, run_id)
            run["went_failing"] = failed_now
            try:
                run["audit"] = await self._audit(run)
            except Exception as exc:  # kept and shown without a head: reports say so
                log.error("compliance_audit_failed", run_id=run_id, error=repr(exc)[:300])
                run["audit"] = None
            run["finished"] = self._clock()
            await self.store.save_run(run)
            await self.store.record_history(
                {cid: r.status.value for cid, r in results.items()}, started
            )
            self.runs += 1
            return run

    async def _transitions(
        self,
        previous: Mapping[str, Any] | None,
        controls: Mapping[str, str],
        results: Mapping[str, CheckResult],
        run_id: str,
    ) -> list[str]:
        before = dict(previous.get("controls", {})) if previous is not None else {}
        went = sorted(
            key for key, status in controls.items()
            if status == Status.FAIL.value and before.get(key) == Status.PASS.value
        )  # fmt: skip
        if not went:
            return []
        failing_checks = sorted(
            cid for cid, r in results.items()
            if r.status is Status.FAIL and self.waivers.for_check(cid, self._clock())[0] is None
        )  # fmt: skip
        summaries = {cid: results[cid].summary for cid in failing_checks}
        message = f"{len(went)} compliance controls went from pass to fail: {', '.join(went[:10])}"
        alert_id = None
        if self.stack is not None:
            from pynomaly_security.monitor.events import SecurityAlert, ThreatLevel

            alert = SecurityAlert(
                ALERT_TYPE,
                ThreatLevel.HIGH,
                message,
                details={"controls": went, "failing_checks": summaries, "run_id": run_id},
                recommended_actions=[
                    "read the failing checks' evidence at /api/security/compliance/status",
                    "fix the setting or data, or waive the check with a justification",
                ],
            )
            alert_id = alert.alert_id
            await self.stack.security_monitor.raise_alert(alert)
            if self.stack.incidents is not None:
                try:
                    # Inside a loop create_incident hands back its awaitable (``_dual``).
                    await self.stack.incidents.create_incident(  # type: ignore[misc]
                        "compliance controls failing: " + ", ".join(failing_checks[:5]),
                        message,
                        severity="high",
                        affected_assets=went[:50],
                        dedup_key="compliance:" + ",".join(failing_checks),
                        alert_ids=[alert_id],
                        source="compliance",
                        actor="compliance-validator",
                    )
                except Exception as exc:  # the alert stands; the log says why
                    log.error("compliance_incident_failed", error=repr(exc)[:300])
        log.warning("compliance_controls_failed", controls=went[:20], run_id=run_id)
        return went

    async def _audit(self, run: Mapping[str, Any]) -> dict[str, Any] | None:
        logger = self.stack.audit_logger if self.stack is not None else None
        if logger is None or not logger.running:
            return None
        from pynomaly_security.audit import AuditLevel

        statuses = {cid: doc["status"] for cid, doc in run["results"].items()}
        receipt = logger.log_security_event(
            AUDIT_EVENT,
            f"compliance run {run['run_id']} ({run['kind']})",
            AuditLevel.INFO,
            details={
                "run_id": run["run_id"],
                "kind": run["kind"],
                "at": run["at"],
                "digest": run["digest"],
                "statuses": statuses,
                "scores": run["scores"],
                "went_failing": run.get("went_failing", []),
            },
        )
        seq = await receipt
        found = await logger.store.records(seq - 1, 1)
        digest = found[0].hash.hex() if found and found[0].seq == seq else None
        return {"seq": seq, "hash": digest}

    # -- reading --------------------------------------------------------------------------
    async def latest(self) -> dict[str, Any] | None:
        """The newest run (of any worker), or None before the first."""
        return await self.store.latest()

    async def latest_scores(self) -> dict[str, dict[str, Any]]:
        """Per framework: ``score`` (percent of applicable controls passing, None when none
        applies), ``title``, control ``counts`` by status, ``waived``, and ``at`` (the run's
        time, ISO 8601) and ``run_id``; empty before the first run. For dashboards."""
        run = await self.store.latest()
        if run is None:
            return {}
        results = {cid: CheckResult.from_dict(d) for cid, d in run["results"].items()}
        out = {}
        for fw, a in assess_all(self.catalogue, results, self.waivers, float(run["at"])).items():
            out[fw] = {
                "title": a["title"], "score": a["score"], "counts": a["counts"],
                "waived": a["waived"], "at": run["at_iso"], "run_id": run["run_id"],
            }  # fmt: skip
        return out

    def assess_run(self, run: Mapping[str, Any], framework: str) -> dict[str, Any]:
        results = {cid: CheckResult.from_dict(d) for cid, d in run["results"].items()}
        return assess(self.catalogue, framework, results, self.waivers, float(run["at"]))

    async def report(
        self, framework: str, *, since: float | None = None, until: float | None = None
    ) -> dict[str, Any]:
        """The report of ``framework`` (see ``report.py``): of the newest run, or with
        ``until`` the newest full run kept at or before it; with ``since``/``until`` also
        whether each control held throughout the period.

        Raises:
            KeyError: an unknown framework.
            LookupError: no run yet (or none kept before ``until``).
        """
        from pynomaly_security.compliance.report import build_report, period_view

        fw = self.catalogue.framework(framework)
        run: Mapping[str, Any] | None = None
        if until is not None:
            for candidate in await self.store.recent_runs(limit=self.settings.compliance.keep_runs):
                if float(candidate["at"]) <= until:
                    run = candidate
                    break
        else:
            run = await self.store.latest()
        if run is None:
            raise LookupError("no compliance run" + (" before --to" if until is not None else ""))
        assessment = self.assess_run(run, framework)
        period = None
        if since is not None or until is not None:
            start = since if since is not None else 0.0
            end = until if until is not None else self._clock()
            checks = sorted({c for control in fw.controls for c in control.checks})
            history = {cid: await self.store.history(cid) for cid in checks}
            section = self.settings.compliance
            # Samples come at least hourly (heartbeat) and at every change; a longer
            # silence means nothing was checked then.
            max_gap = 2 * max(section.interval_seconds, 3600.0) + section.cheap_interval_seconds
            period = {
                "from": iso(start),
                "to": iso(end),
                "checks": period_view(history, checks, start, end, max_gap),
            }
        at = float(run["at"])
        waivers = [{**w.to_dict(), "active_at_run": w.active(at)} for w in self.waivers.all]
        return build_report(assessment, run, waivers=waivers, period=period)
