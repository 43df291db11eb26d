"""The composition root: ``setup_security_middleware(app)``.

Builds every component from one :class:`SecuritySettings`, adds the pure-ASGI
middlewares in a fixed order, and hooks the monitor and audit logger into the
app's lifespan without replacing a lifespan the app already has. The 500 of
an exception the app did not handle, sent by Starlette's ``ServerErrorMiddleware``
outside every layer, gets the security headers too (``middleware/errors.py``).

Order (outermost first): tracking + security headers + audit (one layer,
:class:`~pynomaly_security.middleware.stack.SecurityMiddleware`, which also
binds each request's values for the SQL sink) -> decisions -> coarse policy rules ->
rate limit (with the sign-up/MFA table) -> login lockout -> inspection -> app.
Tracking runs first so every layer and the endpoint see the request id and
client IP, and refuses a request for a host not in ``ALLOWED_HOSTS`` before any
other layer or the app builds a URL from it; headers cover everything so even
a 403/413/429 carries them; audit records the final status of every request,
blocked ones included (a flood refused by the rate limiter is not written to the
audit trail one by one).
Counters, lockouts and revocations live in one shared store: Redis when
``REDIS_URL`` is set (limits and locks hold across workers), else a bounded
in-memory store. On a FastAPI app, request validation errors are rendered by
:mod:`~pynomaly_security.validation` (FastAPI's own 422 raised on input it
could not encode back) unless the app has its own handler.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI
from starlette.applications import Starlette

from pynomaly_security._log import get_logger
from pynomaly_security.auth.lockout import LockoutManager
from pynomaly_security.auth.login_guard import LoginLockoutMiddleware
from pynomaly_security.auth.router import build_lockout_router
from pynomaly_security.crypto.keys import KeyRing
from pynomaly_security.detection import Inspector
from pynomaly_security.live import LiveSettings
from pynomaly_security.middleware.audit import AccessRecorder
from pynomaly_security.middleware.errors import secure_server_errors
from pynomaly_security.middleware.headers import HeaderPolicy
from pynomaly_security.middleware.inspection import InputInspectionMiddleware
from pynomaly_security.middleware.ratelimit import RateLimitMiddleware
from pynomaly_security.middleware.sqlsink import SinkGuard
from pynomaly_security.middleware.stack import SecurityMiddleware
from pynomaly_security.monitor.activity import UserTracker
from pynomaly_security.monitor.correlation import CorrelationEngine, configured_rules
from pynomaly_security.monitor.detectors import AnomalousAccessDetector
from pynomaly_security.monitor.monitor import SecurityMonitor
from pynomaly_security.network.client_ip import ClientIPResolver
from pynomaly_security.network.hosts import TrustedHosts
from pynomaly_security.settings import SecuritySettings, load_settings
from pynomaly_security.sql.guard import SinkActivity
from pynomaly_security.storage import StorageRegistry, Store
from pynomaly_security.storage.base import MonitorState

if TYPE_CHECKING:
    from pynomaly_security.anomaly.engine import AnomalyEngine
    from pynomaly_security.audit import AuditLogger
    from pynomaly_security.compliance import ComplianceValidator
    from pynomaly_security.compliance.sources import VulnerabilityFacts as ScanFacts
    from pynomaly_security.decisions.service import DecisionService
    from pynomaly_security.incidents.automation import IncidentResponseAutomation
    from pynomaly_security.metrics.hub import MetricsHub
    from pynomaly_security.policy.engine import SecurityPolicyEngine
    from pynomaly_security.tenancy.parts import Tenancy
    from pynomaly_security.vulns.watch import DependencyWatch

__all__ = ["SecurityStack", "setup_security_middleware"]

log = get_logger(__name__)


@dataclass(eq=False)
class SecurityStack:
    """What :func:`setup_security_middleware` built; also ``app.state.pynomaly_security``."""

    settings: SecuritySettings
    security_monitor: SecurityMonitor
    user_tracker: UserTracker | None
    audit_logger: AuditLogger | None
    inspector: Inspector | None
    client_ip_resolver: ClientIPResolver
    admin_routers: list[APIRouter] = field(default_factory=list)
    store: Store | None = None
    """Shared state of rate limits, lockouts and revocations (issue 5)."""
    state: MonitorState | None = None
    """Where the monitor's alerts, user activity and counters live (``STATE_URL``);
    None: in ``store``."""
    lockouts: LockoutManager | None = None
    storage: StorageRegistry | None = None
    keyring: KeyRing | None = None
    """The key ring the audit trail uses; pass it to components built by hand (the
    authenticator) so that, in development mode, they share one ephemeral key."""
    live: LiveSettings | None = None
    """The settings that change while serving (``/api/security/settings/live``)."""
    """One backend (connection pool) per URL, shared by the store, the audit log and
    whatever the app builds on it (``AdvancedDataProtection(settings, storage=...)``);
    opened first and closed last by the lifespan."""
    correlation: CorrelationEngine | None = None
    """The correlation rules the monitor runs (``CORRELATION_*``); handlers of its
    matches (incidents, playbooks) register with ``register_match_handler``."""
    incidents: IncidentResponseAutomation | None = None
    """Incidents in ``state`` (else ``store``), their timeline in the audit trail
    (``/api/security/incidents``)."""
    decisions: DecisionService | None = None
    """Decisions and imported lists the middleware enforces (``/api/security/decisions``,
    ``python -m pynomaly_security intel``)."""
    anomaly: AnomalyEngine | None = None
    """Behavioural anomaly detection (``ANOMALY_MODE``; ``/api/security/anomaly``)."""
    policies: SecurityPolicyEngine | None = None
    """Versioned security policies (``/api/security/policies``); routes enforce them
    with ``Depends(require("orders:read"))`` (``policy/enforce.py``)."""
    vulnerabilities: DependencyWatch | None = None
    """The app's own dependencies (issue 18): checked in the background at start-up,
    ``/api/security/vulnerabilities``; ``vulnerabilities.summary()`` is the read-only
    view (counts by severity, open criticals, last scan time) other parts read."""
    compliance: ComplianceValidator | None = None
    """The compliance validator (``COMPLIANCE_*``; ``/api/security/compliance``): checks
    at start-up and on a schedule, results in ``state``; ``latest_scores()`` per framework."""
    metrics: MetricsHub | None = None
    """Prometheus metrics, the summary and the dashboard (``METRICS_*``, issue 20);
    the compliance and vulnerability tiles take providers:
    ``stack.metrics.register_provider("compliance", ...)``."""
    tenancy: Tenancy | None = None
    """Issue 21 (``TENANCY_ENABLED``): the tenant registry, keys, quotas and the
    tenant-scoped store to build per-tenant state on; None when tenancy is off."""
    _started: bool = False

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        if self.storage is not None:
            await self.storage.start()
        if self.store is not None:
            await self.store.start()
        if self.live is not None:
            await self.live.start()
        if self.decisions is not None:
            await self.decisions.start()
        if self.policies is not None:
            await self.policies.start()
        if self.anomaly is not None:
            await self.anomaly.start()
        if self.settings.enable_security_monitoring:
            await self.security_monitor.start_monitoring()
        if self.user_tracker is not None:
            await self.user_tracker.start()
        if self.audit_logger is not None:
            await self.audit_logger.start()
        if self.incidents is not None:
            await self.incidents.start()
        if self.vulnerabilities is not None:
            await self.vulnerabilities.start()  # schedules its check; returns at once
        if self.metrics is not None:
            await self.metrics.start()

    async def aclose(self) -> None:
        if not self._started:
            return
        self._started = False
        if self.vulnerabilities is not None:
            await self.vulnerabilities.aclose()
        if self.compliance is not None:
            await self.compliance.aclose()
        if self.metrics is not None:
            await self.metrics.aclose()  # its last counts, while the state is open
        await self.security_monitor.stop()
        if self.anomaly is not None:  # what this worker learned outlives it
            await self.anomaly.flush()
        if self.decisions is not None:
            await self.decisions.aclose()
        if self.policies is not None:
            await self.policies.aclose()
        if self.live is not None:
            await self.live.aclose()
        if self.user_tracker is not None:
            await self.user_tracker.aclose()
        if self.audit_logger is not None:
            await self.audit_logger.aclose()
        if self.store is not None:
            await self.store.aclose()
        if self.storage is not None:
            await self.storage.aclose()

    async def __aenter__(self) -> SecurityStack:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _wrap_lifespan(app: Starlette, stack: SecurityStack) -> None:
    """Run the stack around the app's own lifespan (FastAPI ``lifespan=`` or
    ``on_event`` handlers alike), passing its state through."""
    original: Callable[[Any], contextlib.AbstractAsyncContextManager[Any]] = (
        app.router.lifespan_context
    )

    @contextlib.asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[Mapping[str, Any] | None]:
        async with stack, original(app_) as state:
            switched = stack.decisions is not None or stack.policies is not None
            if switched and isinstance(app_, Starlette):
                # While no decision (no coarse policy rule) is in force its layer is taken
                # out of the request path, so the built stack is needed: Starlette builds
                # it on the first call (the lifespan's, under a server), or here, as it would.
                if app_.middleware_stack is None:
                    app_.middleware_stack = app_.build_middleware_stack()
                # The policy layer first, while the chain is as built: its outer layer is
                # then the decision layer, whose own switch re-reads what follows it
                # after every policy switch (else tracking could skip a policy layer
                # coming back into the path).
                if stack.policies is not None:
                    stack.policies.attach(app_.middleware_stack)
                if stack.decisions is not None:
                    view = stack.decisions.view
                    view.attach(app_.middleware_stack)
                    if stack.policies is not None:
                        stack.policies.after_switch.append(lambda: view.set(view.index))
            if stack.compliance is not None:
                # After the app's own start-up (its users exist): the first run probes it.
                await stack.compliance.start()
            yield state

    # Starlette types lifespan_context as a union of two shapes; ours yields either.
    app.router.lifespan_context = lifespan  # type: ignore[assignment]


def setup_security_middleware(
    app: Starlette,
    *,
    enable_security_headers: bool = True,
    enable_user_tracking: bool = True,
    enable_audit_logging: bool = True,
    enable_security_monitoring: bool = True,
    development_mode: bool = False,
    settings: SecuritySettings | None = None,
    enable_input_inspection: bool = True,
    enable_rate_limiting: bool = True,
    store: Store | None = None,
    enable_sql_protection: bool = True,
) -> SecurityStack:
    """Wire the security stack into ``app`` in one line.

    Every option is keyword-only (``setup_security_middleware(app, development_mode=True)``):
    a row of positional booleans says nothing at the call site. ``app`` may be given
    by name too, as the integration guide does (``app=app``).

    Args:
        app: a FastAPI or Starlette application (before it starts serving).
        enable_*: switch a component off; the settings can switch them off too
            (``SECURITY_HEADERS_ENABLED``, ``ENABLE_AUDIT_LOGGING``,
            ``SQL_INJECTION_PROTECTION``, ...). ``enable_sql_protection``: the SQL
            sink (:class:`~pynomaly_security.middleware.sqlsink.SQLSinkMiddleware`,
            innermost, and SQLAlchemy's hook on every engine).
        development_mode: relaxes production-only checks (no HSTS, an ephemeral
            master key is allowed).
        settings: the settings; ``None`` reads them from the environment, and an
            invalid value raises :class:`~pynomaly_security.ConfigurationError`
            naming the variable.
        store: the shared store for counters, locks and sessions; default Redis at
            ``REDIS_URL``, else a bounded memory store. The stack's lifespan opens
            and closes it either way (tests pass one with a fake clock).

    Returns:
        The :class:`SecurityStack`, also stored as ``app.state.pynomaly_security``.
    """
    if settings is None:
        settings = load_settings(**({"development_mode": True} if development_mode else {}))
    elif development_mode and not settings.development_mode:
        settings = settings.model_copy(update={"development_mode": True})

    resolver = ClientIPResolver(settings.trusted_proxies, settings.trusted_proxy_hops)
    storage = StorageRegistry.from_settings(settings)
    audit_logger: AuditLogger | None = None
    keyring: KeyRing | None = None
    if enable_audit_logging and settings.enable_audit_logging:
        from pynomaly_security.audit import AuditLogger

        keyring = KeyRing.from_settings(settings)
        audit_logger = AuditLogger.from_settings(settings, storage=storage, keyring=keyring)
    # Set by the SQL sink's first statement checked during a request.
    sink_activity = SinkActivity()
    inspector = (
        # SQLI_EDGE_MODE=auto leaves SQL injection to the sink only where it blocks,
        # and only once the sink has seen one of the app's statements.
        Inspector.from_settings(
            settings,
            sql_sink_blocks=enable_sql_protection
            and settings.sql_injection_protection
            and settings.sql_injection_mode == "block",
            sink_ready=sink_activity.ready,
        )
        if enable_input_inspection and settings.threat_detection_enabled
        else None
    )
    # One store for rate limits, lockouts and (via the authenticator) token
    # revocation and TOTP replay claims; the stack's lifespan opens and closes it.
    if store is None:
        store = storage.store(settings.redis_url or "memory://", setting="REDIS_URL")
    # Alerts, activity and the monitor's counters live in STATE_URL's backend (a
    # durable SQLite file, PostgreSQL), else in the same store, so every worker
    # sees them; the detectors' state stays in the store. The lockout reports to
    # the monitor, whose brute-force detector makes its alerts (one count of login
    # failures: the lockout's).
    state: MonitorState | None = (
        storage.state(settings.state_url, setting="STATE_URL") if settings.state_url else None
    )
    # Issue 21: with tenancy on, the lockout, the rate limiter, the monitor (alerts,
    # detectors' state), activity, incidents and the decisions' counters keep their
    # state in the running tenant's namespace (scoped views of the same store and
    # state; off: the store and state themselves, and nothing of tenancy is built).
    # Decisions live in one collection, each naming its tenant; policies and live
    # settings stay platform-wide (see the README's Multi-tenancy).
    tenancy = None
    per_tenant: Store = store
    per_tenant_state: MonitorState | None = state
    if settings.tenancy.enabled:
        from pynomaly_security.tenancy.parts import Tenancy

        tenancy = Tenancy.build(
            settings,
            store,
            state if state is not None else store,
            keyring if keyring is not None else KeyRing.from_settings(settings),
        )
        per_tenant, per_tenant_state = tenancy.store, tenancy.state
        if audit_logger is not None:
            tenancy.bind_audit(audit_logger)
    monitor = SecurityMonitor.from_settings(
        settings,
        store=per_tenant,
        state=per_tenant_state,
        injection=inspector is not None,
        tenant_scoped=tenancy is not None,
    )
    if not enable_security_monitoring:
        monitor.enabled = False
    if tenancy is not None:
        tenancy.report_to(monitor)
    tracker = (
        UserTracker(
            max_users=settings.max_tracked_keys,
            store=per_tenant_state if per_tenant_state is not None else store,
            tenant_scoped=tenancy is not None,
        )
        if enable_user_tracking
        else None
    )
    lockouts = LockoutManager.from_settings(settings, per_tenant, event_sink=monitor.submit)
    correlation = _correlation(settings, per_tenant, monitor)
    live = _live_settings(settings, store, inspector, lockouts, monitor)
    stack = SecurityStack(
        settings=settings,
        security_monitor=monitor,
        user_tracker=tracker,
        audit_logger=audit_logger,
        inspector=inspector,
        client_ip_resolver=resolver,
        store=store,
        state=state,
        lockouts=lockouts,
        storage=storage,
        keyring=keyring,
        live=live,
        correlation=correlation,
        tenancy=tenancy,
    )
    stack.admin_routers.append(build_lockout_router(lockouts))
    if audit_logger is not None:
        from pynomaly_security.api.audit_routes import build_audit_router

        stack.admin_routers.append(build_audit_router(audit_logger))
        monitor.register_alert_handler(_audit_alert_handler(audit_logger))
    from pynomaly_security.api.live_routes import build_live_settings_router

    stack.admin_routers.append(build_live_settings_router(live, audit_logger))
    from pynomaly_security.api.incident_routes import build_incident_router
    from pynomaly_security.incidents.automation import IncidentResponseAutomation

    stack.incidents = IncidentResponseAutomation.from_stack(stack)
    # Weak: the app holds the stack (app.state); a playbook's verify reaches the app
    # through it to send its synthetic request (incidents/actions.py).
    stack.incidents.app = weakref.ref(app)
    stack.admin_routers.append(build_incident_router(stack.incidents, tenancy))
    from pynomaly_security.api.playbook_routes import build_playbook_router

    stack.admin_routers.append(build_playbook_router(stack.incidents))
    if settings.compliance.enabled:
        from pynomaly_security.api.compliance_routes import build_compliance_router
        from pynomaly_security.compliance import ComplianceValidator

        # Weak, as above; a malformed waivers or catalogue file stops start-up here.
        stack.compliance = ComplianceValidator.from_stack(stack, weakref.ref(app))
        stack.admin_routers.append(build_compliance_router(stack.compliance))
    if settings.decisions_enabled:
        from pynomaly_security.api.decision_routes import build_decision_router
        from pynomaly_security.decisions.service import DecisionService

        decisions = DecisionService(
            settings,
            state if state is not None else store,
            per_tenant,
            audit_logger=audit_logger,
            tenant_scoped=tenancy is not None,
        )
        stack.decisions = decisions
        monitor.register_alert_enricher(decisions.enrich_alert)
        stack.incidents.intel_lookup = decisions.intel_lists
        stack.incidents.decisions = decisions
        stack.admin_routers.append(build_decision_router(decisions))

    if correlation is not None:
        from pynomaly_security.incidents.respond import correlation_responder

        # A rule naming a playbook nobody defined fails here, at start-up, not on a match.
        unknown = sorted(
            {r.playbook for r in correlation.rules if r.playbook}
            - {p.name for p in stack.incidents.playbooks.all()}
        )
        if unknown:
            from pynomaly_security.exceptions import ConfigurationError

            raise ConfigurationError(f"correlation rules name unknown playbooks: {unknown}")
        correlation.register_match_handler(
            correlation_responder(stack.incidents, settings.correlation_responses)
        )
    if settings.policies_enabled:
        from pynomaly_security.api.policy_routes import build_policy_router
        from pynomaly_security.policy.engine import SecurityPolicyEngine

        stack.policies = SecurityPolicyEngine.from_settings(
            settings,
            state if state is not None else store,
            audit_logger=audit_logger,
            tenant_state=tenancy.state if tenancy is not None else None,
        )
        stack.admin_routers.append(build_policy_router(stack.policies))

    from pynomaly_security.api.vulnerability_routes import build_vulnerability_router
    from pynomaly_security.vulns.watch import DependencyWatch

    stack.vulnerabilities = DependencyWatch.from_settings(settings, monitor, store)
    stack.admin_routers.append(build_vulnerability_router(stack.vulnerabilities))
    # Without an advisory database the compliance check and the dashboard tile say
    # "not applicable" / "not configured" rather than judge a scan that cannot run.
    has_advisories = Path(settings.vulns.db_path).exists()
    compliance = stack.compliance
    if has_advisories and compliance is not None and compliance.sources.vulnerabilities is None:
        compliance.sources.vulnerabilities = _scanned_summary(stack.vulnerabilities)
    if settings.metrics.enabled:
        # Counts per worker in the outer layer, added up in the shared state (STATE_URL,
        # else the store) by the hub's task; /metrics and the summary read them back.
        from pynomaly_security.api.metrics_routes import build_metrics_summary_router
        from pynomaly_security.metrics.hub import MetricsHub

        stack.metrics = MetricsHub(
            settings.metrics,
            state if state is not None else store,
            tenancy=settings.tenancy.enabled,
        )
        stack.metrics.attach(stack)
        section = settings.metrics
        if section.port is not None:
            from pynomaly_security.metrics.port import MetricsPort
            from pynomaly_security.metrics.scrape import ScrapeAuth

            stack.metrics.port = MetricsPort(
                stack.metrics,
                host=section.host,
                port=section.port,
                path=section.path,
                auth=ScrapeAuth(settings.admin_api_key, section.token)
                if section.port_auth
                else None,
            )
        stack.admin_routers.append(build_metrics_summary_router(stack.metrics))
        # The dashboard's compliance and vulnerability tiles read the parts built above.
        if stack.compliance is not None:
            stack.metrics.register_provider("compliance", _compliance_scores(stack.compliance))
        if has_advisories:
            stack.metrics.register_provider("vulnerabilities", stack.vulnerabilities.counts)

    # add_middleware puts each new layer outside the previous one: innermost first.
    from pynomaly_security.storage.base import failure_policy

    sql_sink: SinkGuard | None = None
    if enable_sql_protection and settings.sql_injection_protection:
        # The outer layer binds each request's values for the driver hooks (the
        # guard is served in its coroutine); SQLAlchemy engines are hooked here,
        # other drivers by the app's connection classes (issue 15).
        from pynomaly_security.detection.types import InspectionLimits
        from pynomaly_security.sql.guard import SinkPolicy
        from pynomaly_security.sql.hooks import install_sql_protection

        sql_sink = SinkGuard(
            SinkPolicy(
                mode=settings.sql_injection_mode,
                min_length=settings.sql_injection_min_length,
                max_body_size=settings.max_input_length,
                limits=inspector.limits if inspector is not None else InspectionLimits(),
                activity=sink_activity,
            ),
            monitor,
        )
        install_sql_protection()

    if stack.metrics is not None:
        # Directly around the app: the app's time in a sampled request, for the stack's
        # added time (overhead_seconds); one scope lookup in the others.
        from pynomaly_security.metrics.apptime import AppTimer

        app.add_middleware(AppTimer)
    if settings.anomaly.mode != "off":
        # Innermost but for the metrics' timer, inside inspection; not installed at
        # all while the mode is off.
        _anomaly(app, stack, settings, monitor, store, state)
    if inspector is not None:
        app.add_middleware(
            InputInspectionMiddleware,
            inspector=inspector,
            monitor=monitor,
            max_body_size=settings.max_input_length,
            body_read_timeout=settings.body_read_timeout,
        )
    auth_limits = (
        enable_rate_limiting and settings.rate_limit_enabled and settings.auth_rate_limits_enabled
    )
    app.add_middleware(
        LoginLockoutMiddleware,
        lockouts=lockouts,
        login_paths=settings.login_paths,
        resolver=resolver,
        username_fields=settings.login_username_fields,
        ip_limits=settings.login_rate_limits if auth_limits else (),
        account_limits=settings.login_account_rate_limits if auth_limits else (),
        account_ip_limits=settings.login_account_ip_rate_limits if auth_limits else (),
        rate_limit_policy=failure_policy(settings.store_failure_policy, "rate_limit"),
        body_read_timeout=settings.body_read_timeout,
    )
    if enable_rate_limiting and settings.rate_limit_enabled:
        # Installed without limits too: a live change may set them (with none, a
        # request passes it after one set lookup).
        app.add_middleware(
            RateLimitMiddleware,
            store=per_tenant,
            limits=settings.rate_limits,
            route_limits=settings.route_rate_limits,
            key=settings.rate_limit_key,
            exempt_paths=settings.rate_limit_exempt_paths,
            resolver=resolver,
            failure_policy=failure_policy(settings.store_failure_policy, "rate_limit"),
            live=live,
            # Sign-up and MFA limits (login's are the login guard's): a table of
            # this layer, not a layer of their own (issue 12, item 8; issue 13).
            auth_route_limits={
                **dict.fromkeys(settings.signup_paths, settings.signup_rate_limits),
                **dict.fromkeys(settings.mfa_paths, settings.mfa_rate_limits),
            }
            if settings.auth_rate_limits_enabled
            else None,
            auth_account_route_limits=dict.fromkeys(
                settings.mfa_paths, settings.mfa_account_rate_limits
            )
            if settings.auth_rate_limits_enabled
            else None,
        )
    if stack.policies is not None:
        # Coarse policy rules (IP, time, route) right inside the decisions: a banned
        # client is refused before a policy is evaluated for it. Out of the path (no
        # frame) while no active policy has a coarse rule.
        from pynomaly_security.policy.middleware import PolicyMiddleware

        app.add_middleware(PolicyMiddleware, engine=stack.policies)
    if stack.decisions is not None:
        # Right inside tracking (it needs the client address and request id; its
        # refusals get the headers and the audit), outside everything that costs:
        # a banned client is refused before the rate limiter counts it.
        from pynomaly_security.decisions.middleware import DecisionMiddleware

        app.add_middleware(
            DecisionMiddleware,
            view=stack.decisions.view,
            allow=stack.decisions.allow,
            store=per_tenant,
            throttle_per_minute=settings.decision_throttle_per_minute,
        )
    if tenancy is not None:
        # Issue 21: right inside tracking (its refusals get headers and the audit),
        # outside every layer that keeps per-tenant state, which then runs in scope.
        from pynomaly_security.tenancy.middleware import TenancyMiddleware

        app.add_middleware(
            TenancyMiddleware,
            registry=tenancy.registry,
            section=settings.tenancy,
            quotas=tenancy.quotas,
            exempt=[settings.metrics.path] if settings.metrics.enabled else [],
            access_tenants=tenancy.access_tenants,
        )
    # Tracking, headers and audit run as one layer with one send wrapper (see
    # middleware/stack.py), sharing the policy and the recorder their standalone
    # middlewares use.
    headers = (
        HeaderPolicy(
            hsts=settings.hsts_enabled and not settings.development_mode,
            hsts_max_age=settings.hsts_max_age,
            csp=settings.csp_enabled,
            extra_docs_paths=settings.csp_docs_paths,
            docs_asset_origins=settings.csp_docs_asset_origins,
            resolver=resolver,
        )
        if enable_security_headers and settings.security_headers_enabled
        else None
    )
    access = (
        AccessRecorder(audit_logger, log_line=settings.audit_log_line)
        if audit_logger is not None
        else None
    )
    app.add_middleware(
        SecurityMiddleware,
        headers=headers,
        access=access,
        sql_sink=sql_sink,
        metrics=stack.metrics.counts if stack.metrics is not None else None,
        resolver=resolver,
        tracker=tracker,
        monitor=monitor,
        # No in-process login counter: the shared lockout (LoginLockoutMiddleware)
        # counts login failures across workers.
        login_paths=settings.login_paths,
        # Requests for a host the app is not are refused before any other layer.
        hosts=TrustedHosts(settings.allowed_hosts),
        # A login body is read here first (the user name), bounded like every body read.
        body_read_timeout=settings.body_read_timeout,
        username_fields=settings.login_username_fields,
    )
    if headers is not None:
        policy = headers
        live.subscribe(
            lambda s: policy.reconfigure(
                hsts=s.hsts_enabled and not s.development_mode,
                hsts_max_age=s.hsts_max_age,
                csp=s.csp_enabled,
            )
        )
        # An exception the app did not handle is answered by Starlette's
        # ServerErrorMiddleware, outside every layer above: its 500 gets the headers too.
        secure_server_errors(app, headers)
    if isinstance(app, FastAPI):
        from pynomaly_security.validation import install_validation_handler

        install_validation_handler(app)
    _wrap_lifespan(app, stack)
    app.state.pynomaly_security = stack
    return stack


def _anomaly(
    app: Starlette,
    stack: SecurityStack,
    settings: SecuritySettings,
    monitor: SecurityMonitor,
    store: Store,
    state: MonitorState | None,
) -> None:
    """The behavioural engine (issue 22): its layer, its batch job in the monitor's
    task, its read routes, and the known users' behaviour for the access detector."""
    from pynomaly_security.anomaly.engine import AnomalyEngine
    from pynomaly_security.api.anomaly_routes import build_anomaly_router
    from pynomaly_security.middleware.anomaly import AnomalyMiddleware
    from pynomaly_security.storage.base import TallyStore, missing_capability

    shared = state if state is not None else store
    if not isinstance(shared, TallyStore):
        raise missing_capability(shared, TallyStore, "the behavioural profiles")
    engine = AnomalyEngine.from_settings(settings, tallies=shared, store=store, monitor=monitor)
    stack.anomaly = engine
    monitor.register_batch_job(engine.process)
    for detector in monitor.detectors:
        if isinstance(detector, AnomalousAccessDetector):
            detector.behaviour = engine.behaviour
            detector.behaviour_alert_score = settings.anomaly.alert_score
    stack.admin_routers.append(build_anomaly_router(engine))
    app.add_middleware(
        AnomalyMiddleware,
        engine=engine,
        monitor=monitor,
        body_read_timeout=settings.body_read_timeout,
    )


def _correlation(
    settings: SecuritySettings, store: Store, monitor: SecurityMonitor
) -> CorrelationEngine | None:
    """The correlation engine the settings describe, one of the monitor's detectors:
    its windows and counts in the store (shared when the store is Redis), its matches
    raised as the monitor's alerts. Bad rules fail here, at start-up."""
    if not settings.correlation_enabled:
        return None
    rules = configured_rules(
        builtin=settings.correlation_builtin_rules,
        disabled=settings.correlation_disabled_rules,
        rules_file=settings.correlation_rules_file,
    )
    if not rules:
        return None
    engine = CorrelationEngine(rules, store, alert_sink=monitor.raise_alert)
    monitor.register_detector(engine)
    return engine


def _live_settings(
    settings: SecuritySettings,
    store: Store,
    inspector: Inspector | None,
    lockouts: LockoutManager,
    monitor: SecurityMonitor,
) -> LiveSettings:
    """The stack's live settings, with the components built here subscribed (the
    rate limiter and header policy subscribe where they are built)."""
    live = LiveSettings(settings, store)

    def detector_thresholds(s: SecuritySettings) -> None:
        for detector in monitor.detectors:
            if isinstance(detector, AnomalousAccessDetector):
                detector.min_history = s.anomaly_min_history
                detector.hour_min_history = s.anomaly_hour_min_history

    # The built-in detectors are made with their defaults (default_detectors takes no
    # settings): their thresholds come from the settings here, at start-up and live.
    detector_thresholds(settings)
    live.subscribe(detector_thresholds)
    if inspector is not None:
        live.subscribe(
            lambda s: inspector.reconfigure(
                level=s.detection_level,
                mode=s.detection_mode,
                mode_overrides=s.detection_mode_overrides,
            )
        )
    live.subscribe(
        lambda s: lockouts.set_thresholds(
            max_attempts=s.brute_force_max_attempts,
            stuffing_threshold=s.credential_stuffing_threshold,
            account_max_attempts=s.account_max_attempts,
        )
    )
    return live


def _audit_alert_handler(audit_logger: AuditLogger) -> Callable[[Any], Any]:
    """Every alert becomes a committed security event in the audit trail.

    Injection alerts stay ``security_alert``: each injection attempt is already its
    own ``injection_attempt`` record (written before the 403 was sent), and the alert
    is a conclusion about it, not a second attempt."""
    from pynomaly_security.audit import AuditLevel, SecurityEventType

    event_types = {
        "brute_force": SecurityEventType.BRUTE_FORCE_DETECTED,
        "anomalous_access": SecurityEventType.SUSPICIOUS_ACTIVITY,
    }

    async def handler(alert: Any) -> None:
        level = AuditLevel.CRITICAL if alert.threat_level.rank >= 4 else AuditLevel.WARNING
        await audit_logger.log_security_event(
            event_types.get(alert.alert_type, SecurityEventType.SECURITY_ALERT),
            alert.message,
            level,
            details={k: v for k, v in alert.to_dict().items() if k != "message"},
            user_id=alert.user_id,
            source_ip=alert.source_ip,
        )

    return handler


def _scanned_summary(
    watch: DependencyWatch,
) -> Callable[[], Awaitable[ScanFacts | None]]:
    """The compliance validator's vulnerability source: the watch's latest summary, None
    until its first check has run (the check is then "not applicable", not a pass)."""

    async def summary() -> ScanFacts | None:
        from pynomaly_security.compliance.sources import VulnerabilityFacts as Facts

        current = watch.summary()
        if current.last_scan_at is None or current.database is None or current.error:
            return None  # never scanned, no database, or the scan failed: no evidence
        return Facts(current.last_scan_at, dict(current.counts), (), current.database or "")

    return summary


def _compliance_scores(
    validator: ComplianceValidator,
) -> Callable[[], Awaitable[dict[str, float]]]:
    """The metrics hub's compliance provider: the latest run's score per framework."""

    async def scores() -> dict[str, float]:
        latest = await validator.latest_scores()
        return {name: float(v["score"]) for name, v in latest.items() if v.get("score") is not None}

    return scores
