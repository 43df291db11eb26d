"""The policy statistics and decision log every worker shares (issue 17, items 3 and 5).

Each worker counts in memory (:class:`~pynomaly_security.policy.stats.PolicyStats`,
nothing on the request path touches the store) and a background flush, run with the
engine's poll, adds what it counted since the last one to the stack's state, as the
monitor does with its counters (``monitor/monitor.py``):

* counters are tallies of ``policy_stats`` (totals, and ``<kind>|policy|version|rule``
  per rule): additive, so two workers' flushes never overwrite each other;
* the decisions ``replay`` reads and the shadow disagreements are two bounded logs
  (the oldest dropped beyond ``max_logged`` / ``max_disagreements``);
* a rule's last match is a document per rule. Last writer wins: with several workers
  the value can be older than the newest match by at most one flush interval, which
  is all "last matched" is read for (a rule that never matches).

``GET /policies/stats`` and ``replay`` flush this worker first, so an admin sees their
own requests at once and the other workers' within a poll interval.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pynomaly_security._log import get_logger
from pynomaly_security.exceptions import StorageError
from pynomaly_security.policy.conditions import Principal, RequestFacts, Resource
from pynomaly_security.policy.stats import LoggedDecision, PolicyStats, RuleCounts, rule_field

__all__ = ["PolicyLedger", "SharedStats"]

log = get_logger(__name__)

TALLY = "policy_stats"
_STREAM = "all"
_TOTALS = ("evaluations", "allows", "denies", "shadow_evaluations", "shadow_disagreements")


class SharedStats:
    """The statistics as every worker's flushes left them."""

    def __init__(
        self,
        totals: dict[str, int],
        rules: dict[tuple[str, int, str], RuleCounts],
        disagreements: list[dict[str, Any]],
    ) -> None:
        self.totals = totals
        self.rules = rules
        self.disagreements = disagreements
        """Newest last, like the worker's own deque."""

    def rule_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "policy_id": p,
                "version": v,
                "rule_id": r,
                "applied": c.applied,
                "allows": c.allows,
                "denies": c.denies,
                "disagreements": c.disagreements,
                "last_matched": c.last_matched,
            }
            for (p, v, r), c in sorted(self.rules.items())
        ]


class PolicyLedger:
    """Flushes a worker's :class:`PolicyStats` to the state and reads them back.

    Args:
        state: tallies, logs and documents (``storage/base.py``: ``MonitorState``).
        stats: this worker's counts.
    """

    def __init__(self, state: Any, stats: PolicyStats) -> None:
        self.stats = stats
        self._state = state
        self._decisions = state.log(
            "policy_decisions", max_entries=max(stats.max_logged, 1), max_streams=1
        )
        self._disagreements = state.log(
            "policy_disagreements", max_entries=max(stats.max_disagreements, 1), max_streams=1
        )
        self._seen = state.documents("policy_rule_seen", indexed=(), keep=stats.max_rules)
        self._lock = asyncio.Lock()

    async def flush(self) -> None:
        """Add this worker's counts and decisions since the last flush to the state.
        Counts a failed write kept come back for the next flush; if the counts went out
        but the log did not, the log entries are lost rather than the counts doubled."""
        async with self._lock:  # two flushes at once would add the same counts twice
            stats = self.stats
            counts, stats.pending = stats.pending, {}
            logged = list(stats.pending_logged)
            listed = list(stats.pending_disagreements)
            seen, stats.pending_seen = stats.pending_seen, {}
            stats.pending_logged.clear()
            stats.pending_disagreements.clear()
            try:
                if counts:
                    await self._state.add_tallies(TALLY, counts)
            except StorageError as exc:
                for name, amount in counts.items():
                    stats._add(name, amount)
                stats.pending_logged.extendleft(reversed(logged))
                stats.pending_disagreements.extendleft(reversed(listed))
                for key, at in seen.items():
                    stats._seen(key, max(at, stats.pending_seen.get(key, at)))
                log.warning("policy_stats_flush_failed", error=str(exc))
                return
            try:
                if logged:
                    await self._decisions.append([(_STREAM, [_encode(d) for d in logged])])
                if listed:
                    await self._disagreements.append([(_STREAM, listed)])
                for key, at in seen.items():
                    await self._seen.put(rule_field("seen", key), {"key": list(key), "at": at})
            except StorageError as exc:
                log.warning("policy_log_flush_failed", error=str(exc), lost=len(logged))

    async def read(self) -> SharedStats:
        """Every worker's flushed statistics (flush this one first)."""
        tallies = await self._state.tallies(TALLY)
        totals = {name: int(tallies.get(name, 0)) for name in _TOTALS}
        rules: dict[tuple[str, int, str], RuleCounts] = {}
        for name, value in tallies.items():
            parts = name.split("|")
            if len(parts) != 4 or not parts[2].isdigit():
                continue
            kind, policy_id, version, rule_id = parts
            counts = rules.setdefault((policy_id, int(version), rule_id), RuleCounts())
            if kind in ("applied", "allows", "denies", "disagreements"):
                setattr(counts, kind, int(value))
        for doc in await self._seen.find(limit=self.stats.max_rules):
            try:
                p, v, r = doc["key"]
                key = (str(p), int(v), str(r))
                at = float(doc["at"])
            except (KeyError, TypeError, ValueError):
                continue
            if key in rules:
                rules[key].last_matched = at
        listed = await self._disagreements.read(_STREAM, limit=100)
        return SharedStats(totals, rules, [d for d in reversed(listed) if isinstance(d, dict)])

    async def decisions(
        self, *, since: float | None = None, until: float | None = None
    ) -> list[LoggedDecision]:
        """The logged decisions made in [since, until], oldest first."""
        found = []
        for entry in reversed(await self._decisions.read(_STREAM)):
            decision = _decode(entry)
            if decision is None:
                continue
            if since is not None and decision.at < since:
                continue
            if until is not None and decision.at > until:
                continue
            found.append(decision)
        return found


def _encode(d: LoggedDecision) -> dict[str, Any]:
    p, r, f = d.principal, d.resource, d.facts
    return {
        "at": d.at,
        "allowed": d.allowed,
        "action": d.action,
        "principal": {
            "id": p.id,
            "roles": sorted(p.roles),
            "groups": sorted(p.groups),
            "tenant": p.tenant,
            "api_key": p.api_key,
            "mfa": p.mfa,
            "risk": p.risk,
            "device_known": p.device_known,
        },
        "resource": {
            "path": r.path,
            "type": r.type,
            "id": r.id,
            "owner": r.owner,
            "classification": r.classification,
        },
        "facts": {
            "now": f.now,
            "ip": f.ip,
            "method": f.method,
            "headers": sorted(f.headers),
            "request_id": f.request_id,
        },
    }


def _decode(entry: Any) -> LoggedDecision | None:
    """A logged decision, or None for an entry this version cannot read (skipped)."""
    try:
        p, r, f = entry["principal"], entry["resource"], entry["facts"]
        principal = Principal(
            str(p["id"]),
            roles=frozenset(p["roles"]),
            groups=frozenset(p["groups"]),
            tenant=p["tenant"],
            api_key=p["api_key"],
            mfa=bool(p["mfa"]),
            risk=float(p["risk"]),
            device_known=bool(p["device_known"]),
        )
        resource = Resource(**{k: r[k] for k in ("path", "type", "id", "owner", "classification")})
        facts = RequestFacts(
            now=float(f["now"]),
            ip=f["ip"],
            method=f["method"],
            headers=frozenset(f["headers"]),
            request_id=f["request_id"],
        )
        return LoggedDecision(
            float(entry["at"]), principal, str(entry["action"]), resource, facts,
            bool(entry["allowed"]),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError):
        return None
