"""Mitigation advice per alert type: one sentence an alert and an incident carry.

Alert types are the monitor's detectors' and the built-in correlation rules' (a
rule's alert type is its id); an unknown type gets none rather than a guess.
"""

from __future__ import annotations

__all__ = ["MITIGATION_ADVICE", "mitigation_advice"]

MITIGATION_ADVICE: dict[str, str] = {
    "brute_force": "Ban the address for a while (ban decision) and require MFA for the "
    "targeted account; check whether any attempt succeeded.",
    "credential_stuffing": "Ban the address, require MFA for accounts it tried, and "
    "check the tried user names against breach lists.",
    "password_spraying": "Ban the address or its network (cidr decision) and enforce "
    "password policy on the targeted accounts.",
    "distributed_brute_force": "Require MFA for the targeted account and ban the "
    "addresses (or import a reputation list they are on).",
    "injection_attack": "Raise the detection level for the address, ban it on repeats, "
    "and review the targeted route's queries for parameterization.",
    "injection_attempt": "Raise the detection level for the address, ban it on repeats, "
    "and review the targeted route's queries for parameterization.",
    "injection_campaign": "Ban the address or its network and review the targeted "
    "routes' queries for parameterization.",
    "scanner_sweep": "Throttle or ban the address; scanners come back from new ones, "
    "so consider importing a reputation list.",
    "token_reuse": "Revoke the session's tokens and require MFA for its user.",
    "impossible_travel": "Require MFA for the user and review the session's recent actions.",
    "anomalous_access": "Require MFA for the user on its next request and confirm with them.",
}


def mitigation_advice(alert_type: str) -> str | None:
    """The advice for ``alert_type``; the built-in correlation rules' ids may carry a
    suffix (``brute_force_success``): the longest known prefix applies. A correlation
    alert's type is ``correlation:<rule id>``."""
    alert_type = alert_type.removeprefix("correlation:")
    if alert_type in MITIGATION_ADVICE:
        return MITIGATION_ADVICE[alert_type]
    best = max((k for k in MITIGATION_ADVICE if alert_type.startswith(k)), key=len, default=None)
    return MITIGATION_ADVICE[best] if best is not None else None
