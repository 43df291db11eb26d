"""``AdvancedSecurityOrchestrator``: one facade over the stack's parts.

The framework summary's entry point. It builds nothing of its own: sign-in goes
through the zero-trust authenticator (``auth/``), request screening through the
inspector the inspection middleware uses (``detection/``) and reports to the
same monitor, and the dashboard gathers the monitor's summary with
:func:`~pynomaly_security.health.check_health` and the incidents by status
(``orchestrator.incidents``: the stack's :class:`IncidentResponseAutomation`) and the
policy engine's versions, statistics and compliance score (``orchestrator.policies``:
the stack's :class:`SecurityPolicyEngine`, which ``evaluate_policy`` asks).

Two ways to get one:

* ``AdvancedSecurityOrchestrator.from_stack(stack)`` (or ``(stack=stack)``)
  shares an app's parts (``setup_security_middleware`` returns the stack, also
  ``app.state.pynomaly_security``): the same store, lockout, monitor, key ring and
  audit trail; the app's lifespan starts and stops them.
* ``AdvancedSecurityOrchestrator()`` reads :class:`SecuritySettings` from the
  environment and builds a stack without middleware: a memory store (Redis with
  ``REDIS_URL``), a monitor, the lockout, the inspector; no audit trail unless
  one is passed. It starts on first use; ``close()`` / ``await aclose()`` stop it.
  Outside development mode it needs ``PYNOMALY_MASTER_KEY`` (the tokens are
  signed with a key from the key ring) and says so.

Sync or awaited (:mod:`pynomaly_security._dual`): ``monitor_request`` is pure
and answers at once everywhere; ``authenticate_user`` and ``create_user`` run to
completion from sync code and must be awaited inside async code (unawaited there
they do nothing and say so when read); ``get_comprehensive_security_dashboard``
returns a dict from what this process knows now (monitor snapshot, component
states, the last backend probe) that, awaited, probes again.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any, cast
from urllib.parse import quote, urlencode

from pynomaly_security._dual import AwaitableDict, Deferred, SyncPortal, in_running_loop
from pynomaly_security.auth.authenticator import ZeroTrustAuthenticator
from pynomaly_security.auth.errors import (
    AccountLocked,
    AuthUnavailable,
    InvalidCredentials,
    MFARequired,
    RiskTooHigh,
)
from pynomaly_security.auth.lockout import LockoutManager
from pynomaly_security.auth.passwords import HashingBusy
from pynomaly_security.crypto.keys import KeyRing
from pynomaly_security.detection import Inspector, RequestParts, Verdict
from pynomaly_security.exceptions import AuthenticationError, ConfigurationError
from pynomaly_security.health import check_health, component_states
from pynomaly_security.incidents.automation import IncidentResponseAutomation
from pynomaly_security.incidents.model import IncidentStatus
from pynomaly_security.monitor.events import EventKind, SecurityEvent
from pynomaly_security.monitor.monitor import SecurityMonitor
from pynomaly_security.network.client_ip import ClientIPResolver
from pynomaly_security.plugin import SecurityStack
from pynomaly_security.policy.compliance import app_routes, compliance_report
from pynomaly_security.policy.conditions import Principal, RequestFacts, Resource
from pynomaly_security.policy.engine import SecurityPolicyEngine
from pynomaly_security.settings import SecuritySettings, load_settings
from pynomaly_security.storage import StorageRegistry

__all__ = ["AdvancedSecurityOrchestrator"]

_FAILURE_REASONS = 32
"""Distinct failure reasons counted (the authenticator's exception names: a few)."""


_REASONS: tuple[tuple[type[AuthenticationError], str], ...] = (
    (InvalidCredentials, "invalid_credentials"),
    (MFARequired, "mfa_required"),
    (AccountLocked, "locked"),
    (RiskTooHigh, "risk_too_high"),
    (AuthUnavailable, "unavailable"),
    (HashingBusy, "busy"),
)


def _reason(exc: AuthenticationError) -> str:
    return next((name for kind, name in _REASONS if isinstance(exc, kind)), "refused")


class AdvancedSecurityOrchestrator:
    """One object for sign-in, request screening and the security dashboard.

    Args:
        settings: default: read from the environment.
        stack: share an application's parts (see :meth:`from_stack`).
        authenticator: the app's :class:`ZeroTrustAuthenticator` (its user
            repository); default: one on the stack's store and lockout, with an
            in-memory user repository.
        app: the application, whose routes the compliance score's coverage counts
            (without it the dashboard's score covers no routes, and says so).
    """

    def __init__(
        self,
        settings: SecuritySettings | None = None,
        *,
        stack: SecurityStack | None = None,
        authenticator: ZeroTrustAuthenticator | None = None,
        app: Any = None,
    ) -> None:
        self._owned = stack is None
        if stack is None:
            stack = _standalone_stack(settings if settings is not None else load_settings())
        self.stack = stack
        self.settings = stack.settings
        self.monitor: SecurityMonitor = stack.security_monitor
        # The inspector the middleware uses; a stack without inspection still screens
        # here with one from the same settings (the dashboard shows the layer is off).
        self.inspector: Inspector = stack.inspector or Inspector.from_settings(stack.settings)
        if authenticator is None:
            if stack.store is None:
                raise ConfigurationError("the stack has no shared store to sign users in on")
            authenticator = ZeroTrustAuthenticator.from_settings(
                stack.settings,
                stack.store,
                event_sink=self.monitor.submit,
                lockouts=stack.lockouts,
                keyring=stack.keyring,
            )
        self.authenticator = authenticator
        # The app's incidents (its state, its audit trail); a standalone stack's in its store.
        self.incidents = (
            stack.incidents
            if stack.incidents is not None
            else IncidentResponseAutomation.from_stack(stack)
        )
        self._incident_counts: dict[str, int] = {}
        self.policies: SecurityPolicyEngine | None = stack.policies
        self._app = app
        self._policy_report: dict[str, Any] = {}
        self._metrics_summary: dict[str, Any] | None = None
        """The shared statistics and compliance of the last awaited dashboard."""
        self._portal = SyncPortal()
        self._started = not self._owned
        # Counts of this facade's own work (bounded: a few fixed keys).
        self._requests = 0
        self._threats: Counter[str] = Counter()
        self._logins: Counter[str] = Counter()
        self._last_health: dict[str, Any] | None = None

    @classmethod
    def from_stack(
        cls,
        stack: SecurityStack,
        *,
        authenticator: ZeroTrustAuthenticator | None = None,
        app: Any = None,
    ) -> AdvancedSecurityOrchestrator:
        """The facade over an app's stack (``setup_security_middleware``'s return)."""
        return cls(stack=stack, authenticator=authenticator, app=app)

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Start a stack this object built (an app's stack is its lifespan's)."""
        if not self._started:
            self._started = True
            await self.stack.start()

    async def aclose(self) -> None:
        if self._owned and self._started:
            self._started = False
            await self.stack.aclose()

    def close(self) -> None:
        """Stop what :meth:`start` started, from sync code; then the private loop."""
        if self._owned and self._started:
            self._portal.run(self.aclose)
        self._portal.close()

    async def __aenter__(self) -> AdvancedSecurityOrchestrator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __enter__(self) -> AdvancedSecurityOrchestrator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, name: str, factory: Any) -> Any:
        """Run an action for a sync caller; inside a loop, hand back the awaitable."""

        async def started() -> Any:
            await self.start()
            return await factory()

        if in_running_loop():
            return Deferred(name, started)
        return self._portal.run(started)

    # -- authentication ------------------------------------------------------------------
    def authenticate_user(
        self,
        username: str,
        password: str,
        source_ip: str | None = None,
        user_agent: str | None = None,
        *,
        totp_code: str | None = None,
    ) -> dict[str, Any]:
        """Sign a user in through the zero-trust authenticator (lockout, Argon2, risk,
        second factor), never raising for a refusal: ``{"authenticated": False,
        "reason": "invalid_credentials" | "mfa_required" | "locked" | "risk_too_high"
        | "unavailable" | "busy", ...}``; on success the tokens, the user id and the
        risk assessment. Awaited inside async code (see the module docstring)."""

        async def run() -> dict[str, Any]:
            try:
                result = await self.authenticator.authenticate_user(
                    username, password, source_ip, user_agent, totp_code=totp_code
                )
            except AuthenticationError as exc:
                reason = _reason(exc)
                if reason in self._logins or len(self._logins) < _FAILURE_REASONS:
                    self._logins[reason] += 1
                out: dict[str, Any] = {
                    "authenticated": False,
                    "reason": reason,
                    "requires_mfa": isinstance(exc, MFARequired),
                }
                if isinstance(exc, AccountLocked):
                    out["retry_after"] = exc.retry_after
                if isinstance(exc, MFARequired | RiskTooHigh):
                    out["risk_reasons"] = list(exc.reasons)
                return out
            self._logins["success"] += 1
            return {
                "authenticated": True,
                "reason": None,
                "requires_mfa": False,
                "user_id": result.user.user_id,
                "username": result.user.username,
                "access_token": result.tokens.access_token,
                "refresh_token": result.tokens.refresh_token,
                "token_type": result.tokens.token_type,
                "expires_in": result.tokens.expires_in,
                "risk": result.risk.to_dict(),
            }

        # Typed as the sync answer; inside a loop it is the awaitable (module docstring).
        return cast("dict[str, Any]", self._call("authenticate_user", run))

    def create_user(self, username: str, password: str) -> dict[str, Any]:
        """Sign a user up (the authenticator's policy: name rules, password length);
        ``{"created": True, "user_id": ...}`` or ``{"created": False, "reason": ...}``."""

        async def run() -> dict[str, Any]:
            try:
                user = await self.authenticator.signup(username, password)
            except AuthenticationError as exc:
                return {"created": False, "reason": str(exc)}
            return {"created": True, "user_id": user.user_id, "username": user.username}

        return cast("dict[str, Any]", self._call("create_user", run))

    # -- request screening ---------------------------------------------------------------
    def monitor_request(self, request_data: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Screen a request described as a dict (``method``, ``path``, ``headers``,
        ``params``, ``body``, ``source_ip``, ``user_id``) with the middleware's
        inspector; report it to the monitor as the middleware would; return the
        threats found, one per family: ``{"type": "sqli", "blocked": True,
        "score": 14, "fields": [...], "rules": [...], "findings": [...]}``
        (excerpts are short and redacted). ``blocked`` is what the inspection layer
        would have decided. A request past the inspection limits is one threat of
        type ``"refused"`` with the status the layer answers. With behavioural
        detection detecting or preventing (``ANOMALY_MODE``), a request its endpoint's
        profile scores at or below ``ANOMALY_ALERT_SCORE`` is one threat of type
        ``"behavioural_anomaly"`` with its 1-99 ``score`` and ``explanation``
        (``blocked``: prevent mode would refuse it)."""
        parts = _request_parts(request_data)
        verdict = self.inspector.inspect(parts)
        self._requests += 1
        threats = _threats(verdict)
        behavioural = self._behavioural(parts)
        if behavioural is not None:
            threats.append(behavioural)
        for threat in threats:
            self._threats[threat["type"]] += 1
        if verdict.findings:
            summary = verdict.summary()
            self._portal.call(
                self.monitor.submit,
                SecurityEvent(
                    kind=EventKind.INJECTION,
                    source_ip=_text(request_data.get("source_ip")),
                    user_id=_text(request_data.get("user_id")),
                    path=str(request_data.get("path") or "/"),
                    method=str(request_data.get("method") or "GET").upper(),
                    timestamp=time.time(),
                    details=summary,
                ),
            )
            if verdict.blocked:
                self._portal.call(self.monitor.count, "blocked_requests")
        return threats

    def _behavioural(self, parts: RequestParts) -> dict[str, Any] | None:
        """The behavioural threat of a request (profile alone, as prevent mode scores
        inline), or None: off, learning, or not unusual enough."""
        engine = self.stack.anomaly
        if engine is None or engine.mode == "learn" or not engine.wants(parts.path):
            return None
        from urllib.parse import unquote

        content_type = next((v for k, v in parts.headers if k == b"content-type"), b"")
        features = engine.features(
            parts.method,
            unquote(parts.path, encoding="latin-1"),
            parts.query_string.decode("latin-1"),
            parts.body[: engine.section.max_body_bytes].decode("latin-1"),
            content_type.decode("latin-1"),
            [k.decode("latin-1") for k, _ in parts.headers],
        )
        from pynomaly_security.anomaly.model import assess_profile

        found = assess_profile(engine.profile, features)
        if found.score > engine.section.alert_score:
            return None
        return {
            "type": "behavioural_anomaly",
            "blocked": engine.mode == "prevent" and engine.verdict(features) is not None,
            "score": found.score,
            "explanation": found.explanation(),
        }

    # -- policies ------------------------------------------------------------------------
    def evaluate_policy(
        self,
        principal: Principal | Mapping[str, Any] | str,
        action: str,
        resource: Resource | Mapping[str, Any] | str,
        context: Mapping[str, Any] | None = None,
        *,
        record: bool = False,
    ) -> dict[str, Any]:
        """The active policies' decision with its explanation, as the enforcers make it:
        ``{"allowed", "effect", "policy_id", "rule_id", "version", "reasons", "code",
        "dry_run", "shadow"}`` (``shadow``: the candidate's decision while a version is
        in shadow, else None). ``principal`` is a :class:`Principal`, a user id, or a
        dict of its fields (``id``, ``roles``, ``mfa``...); ``resource`` a
        :class:`Resource`, a path, or a dict; ``context`` may give ``ip``, ``method``,
        ``headers`` (names), ``now`` (seconds since the epoch) and ``request_id``.
        Pure: it answers from the versions this process loaded (a standalone facade
        loads them first from sync code). ``record=True`` counts it in the statistics.

        Raises:
            ConfigurationError: the stack has no policy engine (``POLICIES_ENABLED``).
        """
        engine = self.policies
        if engine is None:
            raise ConfigurationError("policies are disabled (PYNOMALY_SECURITY__POLICIES_ENABLED)")
        if not self._started and not in_running_loop():
            # Not loaded yet: deciding now would be default deny for every request.
            self._portal.run(self.start)
        context = context or {}
        facts = RequestFacts(
            now=float(context.get("now", engine.clock())),
            ip=_text(context.get("ip")),
            method=_text(context.get("method")),
            headers=frozenset(str(h).lower() for h in context.get("headers", ())),
            request_id=_text(context.get("request_id")),
        )
        who, what = _principal(principal), _resource(resource)
        decision = engine.evaluate(who, action, what, facts, record=record)
        shadow = engine.shadow
        return {
            **decision.to_dict(),
            "shadow": shadow.evaluate(who, action, what, facts).to_dict() if shadow else None,
        }

    async def _policy_state(self) -> dict[str, Any]:
        """Every worker's policy statistics and the compliance score (from the state)."""
        engine = self.policies
        if engine is None:
            return {}
        await engine.ledger.flush()
        shared = await engine.ledger.read()
        active = await engine.active_policies()
        matched = {key for key, counts in shared.rules.items() if counts.applied}
        routes = app_routes(self._app) if self._app is not None else []
        return {
            "statistics": shared.totals,
            "compliance": compliance_report(active, routes, matched),
        }

    def _policies_section(self) -> dict[str, Any]:
        engine = self.policies
        if engine is None:
            return {"enabled": False}
        section: dict[str, Any] = {
            "enabled": True,
            "active_versions": dict(engine.active.versions),
            "policies": len(engine.active.versions),
            "rules": engine.active.rule_count,
            "shadowing": engine.shadow is not None,
            "routes_known": self._app is not None,
        }
        # Until an awaited dashboard read the shared state: this worker's counts.
        stats = engine.stats
        section["statistics"] = {
            "evaluations": stats.evaluations,
            "allows": stats.allows,
            "denies": stats.denies,
            "shadow_evaluations": stats.shadow_evaluations,
            "shadow_disagreements": stats.shadow_disagreements,
        }
        section["compliance"] = None
        section.update(self._policy_report)
        compliance = section["compliance"]
        section["compliance_score"] = compliance["score"] if compliance else None
        return section

    # -- dashboard -----------------------------------------------------------------------
    def get_comprehensive_security_dashboard(self) -> AwaitableDict:
        """Every part's status, counts and health in one dict: the monitor's summary
        (alerts by level, counters of every worker), each component's state, the
        backends' reachability, this facade's screening and sign-in counts, the
        incidents by status, the policies (active versions, counts, statistics of
        every worker and the compliance score once awaited) and the metrics summary of
        the dashboard page (posture, top blocked routes, the last hour; once awaited)."""

        async def fresh() -> dict[str, Any]:
            await self.start()
            summary = await self.monitor.get_security_summary()
            self._last_health = await check_health(self.stack)
            self._incident_counts = await self.incidents.store.count("status")
            self._policy_report = await self._policy_state()
            if self.stack.metrics is not None:
                # The dashboard page's summary (issue 20), its last hour of series.
                from pynomaly_security.metrics.summary import build_summary

                self._metrics_summary = await build_summary(self.stack.metrics, minutes=60)
            return self._dashboard(summary, self._last_health)

        if in_running_loop():
            health = self._last_health or {
                "status": "unknown",
                "components": component_states(self.stack),
                "backends": {},
            }
            return AwaitableDict(
                self._dashboard(self.monitor.get_security_summary(), health), fresh
            )
        return AwaitableDict(self._portal.run(fresh), fresh)

    def _dashboard(self, summary: Mapping[str, Any], health: Mapping[str, Any]) -> dict[str, Any]:
        logins = dict(self._logins)
        return {
            "generated_at": time.time(),
            "status": health["status"],
            "monitoring": dict(summary),
            "threat_detection": {
                "inspection_layer": self.stack.inspector is not None,
                "requests_screened": self._requests,
                "threats_found": sum(self._threats.values()),
                "threats_by_type": dict(self._threats),
            },
            "authentication": {
                "attempts": sum(logins.values()),
                "succeeded": logins.get("success", 0),
                "failed": sum(v for k, v in logins.items() if k != "success"),
                "failures_by_reason": {k: v for k, v in logins.items() if k != "success"},
                "lockout_by": self.settings.lockout_by,
            },
            "incidents": {
                "by_status": dict(self._incident_counts),
                "open": sum(
                    n for k, n in self._incident_counts.items() if IncidentStatus(k).is_open
                ),
            },
            "policies": self._policies_section(),
            # This worker's behavioural detection (issue 22): mode, profile, counts.
            "anomaly": self.stack.anomaly.status() if self.stack.anomaly is not None else None,
            # None until awaited once, or with METRICS_ENABLED=false.
            "metrics": self._metrics_summary,
            "components": health["components"],
            "backends": health["backends"],
        }


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _principal(value: Principal | Mapping[str, Any] | str) -> Principal:
    if isinstance(value, Principal):
        return value
    if isinstance(value, str):
        return Principal(value)
    return Principal(
        str(value["id"]),
        roles=frozenset(str(r) for r in value.get("roles", ())),
        groups=frozenset(str(g) for g in value.get("groups", ())),
        tenant=_text(value.get("tenant")),
        api_key=_text(value.get("api_key")),
        mfa=bool(value.get("mfa", False)),
        risk=float(value.get("risk", 0.0)),
        device_known=bool(value.get("device_known", False)),
    )


def _resource(value: Resource | Mapping[str, Any] | str) -> Resource:
    if isinstance(value, Resource):
        return value
    if isinstance(value, str):
        return Resource(path=value)
    fields = ("path", "type", "id", "owner", "classification")
    return Resource(**{k: _text(value.get(k)) for k in fields})


def _request_parts(data: Mapping[str, Any]) -> RequestParts:
    """The request a dict describes, as the middleware would have read it."""
    headers = [
        (str(k).lower().encode("latin-1", "replace"), str(v).encode("latin-1", "replace"))
        for k, v in dict(data.get("headers") or {}).items()
    ]
    params = data.get("params") or data.get("query") or {}
    query = params if isinstance(params, str) else urlencode(params, doseq=True)
    body = data.get("body")
    if isinstance(body, Mapping | list):
        raw = json.dumps(body).encode()
        headers.append((b"content-type", b"application/json"))
    elif isinstance(body, str):
        raw = body.encode()
    else:
        raw = body if isinstance(body, bytes) else b""
    return RequestParts(
        method=str(data.get("method") or "GET").upper(),
        # The middleware reads the raw (percent-encoded) path.
        path=quote(str(data.get("path") or "/"), safe="/%:@!$&'()*+,;=-._~"),
        query_string=query.encode(),
        headers=headers,
        body=raw,
    )


def _threats(verdict: Verdict) -> list[dict[str, Any]]:
    if verdict.reject_status is not None:
        return [
            {
                "type": "refused",
                "blocked": True,
                "status": verdict.reject_status,
                "reason": verdict.reject_reason,
            }
        ]
    summary = verdict.summary()
    threats = []
    for family in summary["families"]:
        found = [f for f in summary["findings"] if f["family"] == family]
        threats.append(
            {
                "type": family,
                "blocked": verdict.blocked,
                "score": sum(f["score"] for f in found),
                "fields": sorted({f["field"] for f in found}),
                "rules": list(dict.fromkeys(f["rule_id"] for f in found)),
                "findings": found,
            }
        )
    return threats


def _standalone_stack(settings: SecuritySettings) -> SecurityStack:
    """The parts an app's stack has, without middleware or audit trail."""
    storage = StorageRegistry.from_settings(settings)
    store = storage.store(settings.redis_url or "memory://", setting="REDIS_URL")
    # No app, so no SQL sink behind this inspector: SQLI_EDGE_MODE=auto blocks here.
    inspector = (
        Inspector.from_settings(settings, sql_sink_blocks=False)
        if settings.threat_detection_enabled
        else None
    )
    monitor = SecurityMonitor.from_settings(settings, store=store, injection=True)
    lockouts = LockoutManager.from_settings(settings, store, event_sink=monitor.submit)
    # Policies on the same store an app's stack would use without STATE_URL.
    policies = (
        SecurityPolicyEngine.from_settings(settings, store) if settings.policies_enabled else None
    )
    return SecurityStack(
        policies=policies,
        settings=settings,
        security_monitor=monitor,
        user_tracker=None,
        audit_logger=None,
        inspector=inspector,
        client_ip_resolver=ClientIPResolver(settings.trusted_proxies, settings.trusted_proxy_hops),
        store=store,
        lockouts=lockouts,
        storage=storage,
        # Fails here, naming PYNOMALY_MASTER_KEY, outside development mode without one.
        keyring=KeyRing.from_settings(settings),
    )
