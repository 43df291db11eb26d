"""Checks of data: users' MFA, the field-encryption registry, the audit trail (chain,
head, checkpoint), key age, vulnerability findings, incidents past their deadline.

Each reads its source through the stack or :class:`ComplianceSources`; without one
the check is ``not_applicable`` and says what is missing.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

from pynomaly_security.compliance.checks.base import CheckContext, CheckKind
from pynomaly_security.compliance.results import CheckResult, Status, iso

__all__ = ["DATA_KINDS"]

P, F, NA, E = Status.PASS, Status.FAIL, Status.NOT_APPLICABLE, Status.ERROR
_DAY = 86_400.0


async def mfa_share(ctx: CheckContext, cid: str, params: Mapping[str, Any]) -> CheckResult:
    source = ctx.sources.users
    who = params.get("who", "users")
    floor = float(params["min_share"])
    how = "the application's users source, counted (enabled accounts only)"
    if source is None:
        return ctx.result(
            cid, NA, "no users source given (stack.compliance.sources.users)", method="data",
            how=how,
        )  # fmt: skip
    users = [u for u in await source() if not u.disabled]
    if who == "admins":
        users = [u for u in users if u.admin]
    if not users:
        return ctx.result(cid, NA, f"no {who} to count", method="data", how=how)
    with_mfa = sum(u.mfa for u in users)
    share = with_mfa / len(users)
    without = sorted(u.user_id for u in users if not u.mfa)
    return ctx.result(
        cid, P if share >= floor else F,
        f"{with_mfa} of {len(users)} {who} have MFA enrolled ({share:.0%}; at least "
        f"{floor:.0%})",
        observed={"who": who, "total": len(users), "with_mfa": with_mfa,
                  "share": round(share, 4), "without_mfa": without[:50]},
        expected={"min_share": floor}, method="data", how=how,
    )  # fmt: skip


async def encrypted_fields(ctx: CheckContext, cid: str, params: Mapping[str, Any]) -> CheckResult:
    registry = ctx.sources.field_encryption
    required = [str(r) for r in params.get("required", [])]
    how = "the FieldEncryption registry of the application (table.field)"
    if registry is None:
        return ctx.result(
            cid, NA, "no field-encryption registry given (stack.compliance.sources."
            "field_encryption)", method="data", how=how, expected={"required": required},
        )  # fmt: skip
    registered = sorted(
        f"{table}.{spec.field}" for table in registry.tables() for spec in registry.fields(table)
    )
    missing = [r for r in required if not fnmatch.filter(registered, r)]
    ok = bool(registered) and not missing
    return ctx.result(
        cid, P if ok else F,
        f"{len(registered)} fields encrypted" + (f"; required but missing: {missing}"
                                                 if missing else ""),
        observed={"registered": registered, "missing": missing},
        expected={"required": required, "at_least_one": True}, method="data", how=how,
    )  # fmt: skip


async def audit_chain(ctx: CheckContext, cid: str, params: Mapping[str, Any]) -> CheckResult:
    logger = ctx.stack.audit_logger if ctx.stack is not None else None
    how = (
        "AuditLogger.verify(): every record's hash and link, every checkpoint's Ed25519 "
        "signature (pinned keys), the file anchor, retention"
    )
    if logger is None:
        return ctx.result(cid, F, "no audit trail (audit logging off)", method="data", how=how)
    await logger.flush()  # this run's probes' access records are part of the chain
    result = await logger.verify()
    anchor = logger.anchor_file
    if result.problem == "empty" and not (anchor is not None and anchor.exists()
                                          and anchor.stat().st_size):  # fmt: skip
        # A new trail, and no anchor says records were ever written: nothing to verify.
        return ctx.result(
            cid, NA, "the audit trail holds no record yet", method="data", how=how,
            observed={"records": 0, "anchor_file": str(anchor) if anchor else None},
        )  # fmt: skip
    ctx.scratch["audit_head"] = (result.head_seq, result.head_hash)
    observed = {
        "ok": result.ok, "records": result.count, "problem": result.problem,
        "first_bad_seq": result.first_bad_seq, "head_seq": result.head_seq,
        "head_hash": result.head_hash, "checkpoints": result.checkpoints,
        "pinned_keys": result.pinned_keys, "anchored": result.anchored,
    }  # fmt: skip
    return ctx.result(
        cid, P if result.ok else F,
        (f"{result.count} records verify; head seq {result.head_seq} {result.head_hash}"
         if result.ok else f"the chain fails at seq {result.first_bad_seq}: {result.problem}: "
         f"{result.message}"),
        observed=observed, expected={"ok": True}, method="data", how=how,
    )  # fmt: skip


async def checkpoint_age(ctx: CheckContext, cid: str, params: Mapping[str, Any]) -> CheckResult:
    logger = ctx.stack.audit_logger if ctx.stack is not None else None
    cap = float(params["max_age_seconds"])
    how = "the audit store's newest signed checkpoint and head, read in one transaction"
    if logger is None:
        return ctx.result(cid, F, "no audit trail (audit logging off)", method="data", how=how)
    async with logger.store.transaction() as txn:
        head_seq, head_hash = await txn.head()
        cp = await txn.last_checkpoint()
    if head_seq == 0:
        return ctx.result(cid, NA, "the audit trail is empty", method="data", how=how)
    if cp is None:
        return ctx.result(
            cid, F, f"no signed checkpoint; head at seq {head_seq}", method="data", how=how,
            observed={"head_seq": head_seq},
        )  # fmt: skip
    age = max(0.0, ctx.now - cp.ts_us / 1e6)
    covers = cp.seq >= head_seq
    ok = covers or age <= cap
    return ctx.result(
        cid, P if ok else F,
        f"newest checkpoint at seq {cp.seq} ({age:.0f} s old), head at seq {head_seq}"
        + (" (covered)" if covers else ""),
        observed={"checkpoint_seq": cp.seq, "checkpoint_at": iso(cp.ts_us / 1e6),
                  "age_seconds": round(age, 1), "head_seq": head_seq,
                  "head_hash": head_hash.hex(), "key_id": cp.key_id},
        expected={"covers_head_or_max_age_seconds": cap}, method="data", how=how,
    )  # fmt: skip


async def key_age(ctx: CheckContext, cid: str, params: Mapping[str, Any]) -> CheckResult:
    s = ctx.settings
    cap_days = float(params["max_rotation_days"])
    how = (
        "key_version from the settings; its age is counted from when a validator first saw it "
        "(kept in the state backend), a lower bound for keys older than the validator"
    )
    first_seen = ctx.now
    if ctx.state is not None:
        docs = ctx.state.documents("compliance_keys", indexed=(), keep=1000)
        doc_id = f"v{s.key_version}"
        await docs.add(doc_id, {"key_version": s.key_version, "first_seen": ctx.now})
        found = await docs.get(doc_id)
        if found is not None:
            first_seen = float(found["first_seen"])
    age_days = (ctx.now - first_seen) / _DAY
    problems = []
    if not s.enable_key_rotation:
        problems.append("key rotation off")
    if s.key_rotation_days > cap_days:
        problems.append(f"rotation period {s.key_rotation_days} d > {cap_days:g} d")
    if age_days > s.key_rotation_days:
        problems.append(f"key version {s.key_version} is {age_days:.0f} d old")
    return ctx.result(
        cid, F if problems else P,
        "; ".join(problems) or f"key version {s.key_version}, {age_days:.1f} d old (rotate "
        f"every {s.key_rotation_days} d)",
        observed={"enable_key_rotation": s.enable_key_rotation, "key_version": s.key_version,
                  "key_rotation_days": s.key_rotation_days, "age_days": round(age_days, 2),
                  "first_seen": iso(first_seen)},
        expected={"max_rotation_days": cap_days, "age_days": "<= key_rotation_days"},
        method="data", how=how,
    )  # fmt: skip


async def vulnerabilities(ctx: CheckContext, cid: str, params: Mapping[str, Any]) -> CheckResult:
    provider = ctx.sources.vulnerabilities
    how = "the vulnerability scanner's latest result (stack.compliance.sources.vulnerabilities)"
    if provider is None:
        return ctx.result(
            cid, NA, "no vulnerability scanner configured", method="data", how=how,
            expected=dict(params),
        )  # fmt: skip
    summary = await provider()
    if summary is None:
        return ctx.result(cid, F, "the scanner has never run", method="data", how=how)
    counts = {k.lower(): int(v) for k, v in summary.open_by_severity.items()}
    age_days = (ctx.now - summary.scanned_at) / _DAY
    problems = []
    if counts.get("critical", 0) > int(params["max_critical"]):
        problems.append(f"{counts['critical']} open critical")
    if counts.get("high", 0) > int(params["max_high"]):
        problems.append(f"{counts['high']} open high")
    if age_days > float(params["max_scan_age_days"]):
        problems.append(f"last scan {age_days:.1f} d ago")
    return ctx.result(
        cid, F if problems else P,
        "; ".join(problems) or f"no open critical or high findings (scanned {age_days:.1f} d ago)",
        observed={"open_by_severity": counts, "critical_and_high": list(summary.critical)[:50],
                  "scanned_at": iso(summary.scanned_at), "source": summary.source},
        expected=dict(params), method="data", how=how,
    )  # fmt: skip


async def incidents_overdue(ctx: CheckContext, cid: str, params: Mapping[str, Any]) -> CheckResult:
    automation = ctx.stack.incidents if ctx.stack is not None else None
    store = getattr(automation, "store", None)
    deadlines = {str(k): float(v) for k, v in dict(params["deadline_hours"]).items()}
    how = (
        "open incidents (new .. recovered) in the state backend; an incident's deadline is "
        "its own when it has one, else created_at + the hours of its severity"
    )
    if store is None:
        return ctx.result(cid, NA, "no incident system", method="data", how=how)
    from pynomaly_security.incidents.model import CLOSED_STATES, IncidentStatus

    overdue: list[dict[str, Any]] = []
    open_count = 0
    for status in IncidentStatus:
        if status in CLOSED_STATES:
            continue
        for inc in await store.list(status=status, limit=1000):
            open_count += 1
            own = getattr(inc, "deadline", None)
            hours = deadlines.get(inc.severity.value)
            due = float(own) if own else (inc.created_at + hours * 3600 if hours else None)
            if due is not None and ctx.now > due:
                overdue.append(
                    {
                        "incident_id": inc.incident_id,
                        "severity": inc.severity.value,
                        "status": inc.status.value,
                        "due": iso(due),
                    }
                )
    return ctx.result(
        cid, F if overdue else P,
        f"{len(overdue)} of {open_count} open incidents past their deadline",
        observed={"open": open_count, "overdue": overdue[:50]},
        expected={"deadline_hours": deadlines}, method="data", how=how,
    )  # fmt: skip


DATA_KINDS: dict[str, CheckKind] = {
    "mfa_share": CheckKind(mfa_share, "full"),
    "encrypted_fields": CheckKind(encrypted_fields),
    "audit_chain": CheckKind(audit_chain, "full"),
    "checkpoint_age": CheckKind(checkpoint_age),
    "key_age": CheckKind(key_age),
    "vulnerabilities": CheckKind(vulnerabilities, "full"),
    "incidents_overdue": CheckKind(incidents_overdue),
}
