"""The built-in correlation rules, over the events the stack reports.

Thresholds are set above what the shared lockout tolerates per key (5 failures by
default), so a rule sees the pattern the lockout alone does not: failures across
user names, networks, then a success.

Not built in, and why:

- impossible travel: events carry no location. Sign-in risk already scores it from
  a MaxMind file (``auth/risk.py``, the ``geoip`` extra); a rule over
  ``details.country`` can be written once an app reports locations.
"""

from __future__ import annotations

from typing import Any

from pynomaly_security.monitor.correlation.rules import CorrelationRule, load_rules

__all__ = ["BUILTIN_RULES", "builtin_rules"]

_SUCCESS = {"status_code|gte": 200, "status_code|lt": 300}

BUILTIN_RULES: tuple[dict[str, Any], ...] = (
    {
        "id": "brute_force",
        "title": "many failed sign-ins from one address",
        "type": "event_count",
        "severity": "high",
        "match": {"kind": "login_failure"},
        "group_by": ["source_ip"],
        "threshold": 10,
        "window": "5m",
        "suppress": "15m",
        "response": "dry_run",
        "playbook": "brute_force_response",
        "recommended_actions": ["block or throttle the address", "check the targeted accounts"],
    },
    {
        "id": "brute_force_success",
        "title": "failed sign-ins then a success from the same address",
        "type": "temporal_ordered",
        "severity": "critical",
        "steps": [{"rule": "brute_force"}, {"kind": "login_success"}],
        "group_by": ["source_ip"],
        "window": "10m",
        "suppress": "1h",
        "response": "dry_run",
        "playbook": "account_takeover_response",
        "recommended_actions": [
            "revoke the signed-in account's sessions and require MFA",
            "block the address",
        ],
    },
    {
        "id": "credential_stuffing",
        "title": "one address failing sign-in for many user names",
        "type": "value_count",
        "severity": "high",
        "match": {"kind": "login_failure"},
        "group_by": ["source_ip"],
        "field": "user_name",
        "threshold": 10,
        "window": "10m",
        "suppress": "30m",
        "response": "dry_run",
        "playbook": "credential_stuffing_response",
        "recommended_actions": ["block the address", "force resets of accounts that then succeed"],
    },
    {
        "id": "distributed_brute_force",
        "title": "one user name failing sign-in from many addresses",
        "type": "value_count",
        "severity": "high",
        "match": {"kind": "login_failure"},
        "group_by": ["user_name"],
        "field": "source_ip",
        "threshold": 10,
        "window": "10m",
        "suppress": "30m",
        "response": "dry_run",
        "playbook": "brute_force_response",
        "recommended_actions": ["require MFA for the account", "notify its owner"],
    },
    {
        "id": "password_spraying",
        "title": "slow guessing across many accounts from one network",
        "type": "value_count",
        "severity": "medium",
        "match": {"kind": "login_failure"},
        "group_by": ["source_net"],
        "field": "user_name",
        "threshold": 20,
        "window": "1h",
        "suppress": "1h",
        "response": "dry_run",
        "playbook": "credential_stuffing_response",
        "recommended_actions": ["throttle the network", "check for successes from it"],
    },
    {
        "id": "injection_campaign",
        "title": "injection attempts against many routes from one address",
        "type": "value_count",
        "severity": "high",
        "match": {"kind": "injection"},
        "group_by": ["source_ip"],
        "field": "path",
        "threshold": 3,
        "window": "10m",
        "suppress": "30m",
        "response": "dry_run",
        "playbook": "sql_injection_response",
        "recommended_actions": ["block the address", "review the targeted routes' queries"],
    },
    {
        "id": "injection_then_admin_success",
        "title": "an injection attempt, then a successful admin request from the same address",
        "type": "temporal_ordered",
        "severity": "critical",
        "steps": [
            {"kind": "injection"},
            {"kind": "request", "where": {"path|startswith": ["/admin", "/api/admin"], **_SUCCESS}},
        ],
        "group_by": ["source_ip"],
        "window": "30m",
        "suppress": "1h",
        "response": "dry_run",
        "playbook": "sql_injection_response",
        "description": "requests are reported for signed-in users only",
        "recommended_actions": ["revoke the user's sessions", "audit the admin actions taken"],
    },
    {
        "id": "scanner_sweep",
        "title": "many unknown paths requested by one address",
        "type": "event_count",
        "severity": "medium",
        "match": {"kind": "not_found"},
        "group_by": ["source_ip"],
        "threshold": 30,
        "window": "1m",
        "suppress": "30m",
        "response": "dry_run",
        "playbook": "scanner_response",
        "recommended_actions": ["throttle or block the address"],
    },
    {
        "id": "token_reuse",
        "title": "a spent refresh token was used again",
        "type": "event_count",
        "severity": "high",
        "match": {
            "kind": "custom",
            "where": {"details.type": "account_security", "details.action": "refresh_token_reuse"},
        },
        "group_by": ["user_id"],
        "threshold": 1,
        "window": "1h",
        "suppress": "1h",
        "response": "dry_run",
        "playbook": "account_takeover_response",
        "recommended_actions": ["revoke every session of the user", "require MFA"],
    },
)
"""The rules as data (the same shape a YAML file has). Each runs its playbook as a
dry run (``response``; ``CORRELATION_RESPONSES`` turns a rule ``on`` or ``off``)."""


def builtin_rules(disabled: tuple[str, ...] | list[str] = ()) -> tuple[CorrelationRule, ...]:
    """The built-in rules, validated, without the ``disabled`` ids (a rule that another
    needs as a step stays, as a step only, with ``alert: false``)."""
    off = set(disabled)
    needed = {
        step["rule"]
        for raw in BUILTIN_RULES
        if raw["id"] not in off
        for step in raw.get("steps", ())
        if "rule" in step
    }
    chosen = []
    for raw in BUILTIN_RULES:
        if raw["id"] in off:
            if raw["id"] not in needed:
                continue
            raw = {**raw, "alert": False}
        chosen.append(raw)
    return load_rules(chosen)
