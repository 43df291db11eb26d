"""Checks of the effective settings (the live ones where a setting changes live).

Each compares what is in force with a threshold of the catalogue, so a loosened
setting fails: HSTS off or shorter than a year, a CSP with ``'unsafe-eval'``, a
lockout after more than 10 attempts, an unpinned or long-lived JWT, Argon2 below
OWASP's minimum, a retention shorter than the framework's, compliance logging off.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pynomaly_security.compliance.checks.base import CheckContext, CheckKind
from pynomaly_security.compliance.results import CheckResult, Status

__all__ = ["CONFIG_KINDS"]

P, F, NA = Status.PASS, Status.FAIL, Status.NOT_APPLICABLE
_HOW = "read from the stack's effective settings (live values included)"


def _verdict(ok: bool) -> Status:
    return P if ok else F


async def hsts_setting(ctx: CheckContext, cid: str, params: Mapping[str, Any]) -> CheckResult:
    s = ctx.settings
    floor = int(params["min_max_age"])
    observed = {
        "security_headers_enabled": s.security_headers_enabled,
        "hsts_enabled": s.hsts_enabled,
        "development_mode": s.development_mode,
        "hsts_max_age": s.hsts_max_age,
    }
    on = s.security_headers_enabled and s.hsts_enabled and not s.development_mode
    ok = on and s.hsts_max_age >= floor
    why = (
        f"HSTS is sent with max-age={s.hsts_max_age}"
        if on
        else "HSTS is not sent (switched off, or development mode)"
    )
    return ctx.result(
        cid, _verdict(ok), f"{why}; required: on, max-age >= {floor}",
        observed=observed, expected={"hsts": "on", "min_max_age": floor}, how=_HOW,
    )  # fmt: skip


def _policies() -> dict[str, str]:
    from pynomaly_security.middleware.headers import (
        DEFAULT_API_CSP,
        DEFAULT_DOCS_CSP,
        DEFAULT_HTML_CSP,
        DEFAULT_JSON_CSP,
    )

    return {
        "api": DEFAULT_API_CSP,
        "json": DEFAULT_JSON_CSP,
        "html": DEFAULT_HTML_CSP,
        "docs": DEFAULT_DOCS_CSP,
    }


async def csp_setting(ctx: CheckContext, cid: str, params: Mapping[str, Any]) -> CheckResult:
    s = ctx.settings
    forbidden = [str(x) for x in params.get("forbidden", [])]
    on = s.security_headers_enabled and s.csp_enabled
    found = {name: [f for f in forbidden if f in policy] for name, policy in _policies().items()}
    found = {k: v for k, v in found.items() if v}
    ok = on and not found
    summary = (
        "a Content-Security-Policy is sent on every response"
        if on
        else "no Content-Security-Policy is sent"
    )
    if found:
        summary += f"; forbidden sources in {sorted(found)}"
    return ctx.result(
        cid, _verdict(ok), summary,
        observed={"csp_enabled": s.csp_enabled, "security_headers_enabled":
                  s.security_headers_enabled, "policies": _policies(), "forbidden_found": found},
        expected={"csp": "on", "forbidden": forbidden}, how=_HOW,
    )  # fmt: skip


async def lockout_threshold(ctx: CheckContext, cid: str, params: Mapping[str, Any]) -> CheckResult:
    s = ctx.settings
    cap = int(params["max_attempts"])
    min_duration = params.get("min_duration_seconds")
    # What locks the account itself: the per-account count when locks are per
    # (user, IP) pair, else the lock's own count (PCI DSS 8.3.4 locks the user ID).
    account_attempts = (
        s.brute_force_max_attempts if s.lockout_by == "user" else s.account_max_attempts
    )
    problems = []
    if s.brute_force_max_attempts > cap:
        problems.append(f"locks after {s.brute_force_max_attempts} attempts (> {cap})")
    if account_attempts > cap:
        problems.append(f"the account is refused only after {account_attempts} (> {cap})")
    if min_duration is not None and s.lockout_duration < int(min_duration):
        problems.append(f"locks for {s.lockout_duration} s (< {int(min_duration)} s)")
    observed = {
        "lockout_by": s.lockout_by,
        "brute_force_max_attempts": s.brute_force_max_attempts,
        "account_max_attempts": s.account_max_attempts,
        "lockout_duration": s.lockout_duration,
        "lockout_progressive": s.lockout_progressive,
    }
    summary = (
        "; ".join(problems)
        if problems
        else (
            f"locks after {s.brute_force_max_attempts} attempts, "
            f"the account after {account_attempts}"
        )
    )
    return ctx.result(
        cid, _verdict(not problems), summary, observed=observed,
        expected={k: v for k, v in params.items()}, how=_HOW,
    )  # fmt: skip


async def jwt_settings(ctx: CheckContext, cid: str, params: Mapping[str, Any]) -> CheckResult:
    s = ctx.settings
    cap = int(params["max_ttl_seconds"])
    # The verifier passes exactly [JWT_ALGORITHM] to PyJWT (auth/tokens.py): the
    # algorithm is pinned by construction; "none" is not a value the setting takes.
    pinned = s.jwt_algorithm.lower() != "none"
    ok = pinned and s.access_token_ttl <= cap
    return ctx.result(
        cid, _verdict(ok),
        f"tokens signed and verified with {s.jwt_algorithm} only; access tokens live "
        f"{s.access_token_ttl} s (at most {cap})",
        observed={"jwt_algorithm": s.jwt_algorithm, "algorithms_accepted": [s.jwt_algorithm],
                  "access_token_ttl": s.access_token_ttl, "refresh_token_ttl":
                  s.refresh_token_ttl},
        expected={"pinned": True, "max_ttl_seconds": cap}, how=_HOW,
    )  # fmt: skip


async def argon2_parameters(ctx: CheckContext, cid: str, params: Mapping[str, Any]) -> CheckResult:
    hasher = None
    where = "argon2-cffi defaults of auth.passwords.PasswordHasher (no authenticator installed)"
    auth = ctx.sources.authenticator
    if auth is not None:
        hasher = getattr(getattr(auth, "passwords", None), "_hasher", None)
        where = "the installed authenticator's password hasher"
    if hasher is None:
        import argon2

        hasher = argon2.PasswordHasher(time_cost=3, memory_cost=65_536, parallelism=4)
    variant = str(getattr(hasher, "type", "?")).rsplit(".", 1)[-1]
    observed = {
        "type": variant,
        "memory_kib": hasher.memory_cost,
        "time_cost": hasher.time_cost,
        "parallelism": hasher.parallelism,
    }
    ok = (
        variant.upper() == "ID"
        and hasher.memory_cost >= int(params["min_memory_kib"])
        and hasher.time_cost >= int(params["min_time_cost"])
        and hasher.parallelism >= int(params["min_parallelism"])
    )
    return ctx.result(
        cid, _verdict(ok),
        f"Argon2{variant.lower()} m={hasher.memory_cost} KiB, t={hasher.time_cost}, "
        f"p={hasher.parallelism}",
        observed=observed, expected=dict(params),
        how=f"read from {where}; OWASP Password Storage Cheat Sheet minimum m=19 MiB, t=2, p=1",
    )  # fmt: skip


async def audit_retention(ctx: CheckContext, cid: str, params: Mapping[str, Any]) -> CheckResult:
    s = ctx.settings
    floor = int(params["min_days"])
    ok = s.enable_audit_logging and s.audit_retention_days >= floor
    return ctx.result(
        cid, _verdict(ok),
        f"audit records kept {s.audit_retention_days} days (at least {floor})",
        observed={"audit_retention_days": s.audit_retention_days,
                  "enable_audit_logging": s.enable_audit_logging},
        expected={"min_days": floor}, how=_HOW,
    )  # fmt: skip


async def compliance_logging(ctx: CheckContext, cid: str, params: Mapping[str, Any]) -> CheckResult:
    s = ctx.settings
    logger = ctx.stack.audit_logger if ctx.stack is not None else None
    running = bool(logger is not None and logger.running)
    ok = s.enable_audit_logging and s.enable_compliance_logging and running
    return ctx.result(
        cid, _verdict(ok),
        "audit logging and compliance tagging on, the writer running"
        if ok else "audit logging, compliance tagging or the audit writer is off",
        observed={"enable_audit_logging": s.enable_audit_logging,
                  "enable_compliance_logging": s.enable_compliance_logging,
                  "audit_writer_running": running,
                  "queued": logger.queue_depth if logger is not None else None,
                  "dropped": logger.dropped if logger is not None else None},
        expected={"all": True}, how=_HOW + " and the audit logger's state",
    )  # fmt: skip


async def monitor_active(ctx: CheckContext, cid: str, params: Mapping[str, Any]) -> CheckResult:
    s = ctx.settings
    monitor = ctx.stack.security_monitor if ctx.stack is not None else None
    enabled = bool(monitor is not None and monitor.enabled and s.enable_security_monitoring)
    detectors = [type(d).__name__ for d in monitor.detectors] if monitor is not None else []
    ok = enabled and bool(detectors)
    return ctx.result(
        cid, _verdict(ok),
        f"the security monitor runs {len(detectors)} detectors" if ok
        else "the security monitor is off",
        observed={"enabled": enabled, "detectors": detectors},
        expected={"enabled": True}, how="read from the stack's SecurityMonitor",
    )  # fmt: skip


async def input_inspection(ctx: CheckContext, cid: str, params: Mapping[str, Any]) -> CheckResult:
    s = ctx.settings
    inspector = ctx.stack.inspector if ctx.stack is not None else None
    ok = inspector is not None and s.detection_mode == "block"
    return ctx.result(
        cid, _verdict(ok),
        f"request inspection {'on' if inspector is not None else 'off'}, mode {s.detection_mode}",
        observed={"inspection_installed": inspector is not None,
                  "detection_mode": s.detection_mode, "detection_level": s.detection_level,
                  "mode_overrides": dict(s.detection_mode_overrides)},
        expected={"installed": True, "detection_mode": "block"}, how=_HOW,
    )  # fmt: skip


CONFIG_KINDS: dict[str, CheckKind] = {
    "hsts_setting": CheckKind(hsts_setting),
    "csp_setting": CheckKind(csp_setting),
    "lockout_threshold": CheckKind(lockout_threshold),
    "jwt_settings": CheckKind(jwt_settings),
    "argon2_parameters": CheckKind(argon2_parameters),
    "audit_retention": CheckKind(audit_retention),
    "compliance_logging": CheckKind(compliance_logging),
    "monitor_active": CheckKind(monitor_active),
    "input_inspection": CheckKind(input_inspection),
}
