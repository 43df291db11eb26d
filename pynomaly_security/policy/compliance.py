"""The compliance score of ``GET /api/security/policies/stats`` (issue 17, item 5).

Three findings over the active policies, each a share in [0, 1]:

* **coverage**: the share of the app's routes some enforced rule names (a rule whose
  resources match the route template, ``*`` included);
* **never matched**: the share of active rules no decision on this worker applied;
* **shadowed**: rules that can never decide, by static analysis: an allow whose
  principals, actions and resources an unconditional enforced deny covers, and rules
  written twice (same effect, who, what, where and conditions).

score = 100 x (0.6 coverage + 0.2 (1 - never matched) + 0.2 (1 - shadowed)), rounded:
coverage weighs most because an unguarded route is the gap a policy exists to close.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.routing import Route

from pynomaly_security.policy.model import Effect, Mode, Policy, PolicyRule, route_pattern

__all__ = ["app_routes", "compliance_report"]


def app_routes(app: Any) -> list[str]:
    """The route templates of ``app`` a policy should cover: its own, not the security
    API's or the docs' (those have their own guard)."""
    return [
        r.path
        for r in getattr(app, "routes", ())
        if isinstance(r, Route)
        and not r.path.startswith(("/api/security", "/docs", "/openapi", "/redoc"))
    ]


def _covers(outer: list[str], inner: list[str]) -> bool:
    return "*" in outer or set(inner) <= set(outer)


def _unconditional_deny(rule: PolicyRule) -> bool:
    return (
        rule.effect is Effect.DENY
        and rule.mode is Mode.ENFORCE
        and rule.when is None
        and not rule.unless
    )


def _static(policies: list[tuple[Policy, int]]) -> list[dict[str, Any]]:
    rules = [(p.id, v, r) for p, v in policies for r in p.rules]
    denies = [(pid, r) for pid, _, r in rules if _unconditional_deny(r)]
    findings: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for pid, version, rule in rules:
        name = f"{pid}@v{version}/{rule.id}"
        shape = rule.model_dump_json(exclude={"id", "description"})
        if shape in seen:
            findings.append({"rule": name, "kind": "duplicate", "of": seen[shape]})
            continue
        seen[shape] = name
        if rule.effect is not Effect.ALLOW:
            continue
        for dpid, deny in denies:
            if (
                _covers(deny.principals, rule.principals)
                and _covers(deny.actions, rule.actions)
                and _covers(deny.resources, rule.resources)
            ):
                findings.append(
                    {"rule": name, "kind": "shadowed_by_deny", "of": f"{dpid}/{deny.id}"}
                )
                break
    return findings


def _covered(route: str, policies: list[tuple[Policy, int]]) -> bool:
    for policy, _ in policies:
        for rule in policy.rules:
            if rule.mode is not Mode.ENFORCE:
                continue
            for pattern in rule.resources:
                if pattern == "*" or (
                    pattern.startswith("/") and route_pattern(pattern).fullmatch(route)
                ):
                    return True
    return False


def compliance_report(
    policies: list[tuple[Policy, int]],
    routes: Iterable[str],
    matched: set[tuple[str, int, str]],
) -> dict[str, Any]:
    """The score and what it is made of."""
    routes = sorted(set(routes))
    uncovered = [r for r in routes if not _covered(r, policies)]
    coverage = 1.0 - len(uncovered) / len(routes) if routes else 1.0
    all_rules = [(p.id, v, r.id) for p, v in policies for r in p.rules]
    never = [f"{p}@v{v}/{r}" for p, v, r in all_rules if (p, v, r) not in matched]
    never_share = len(never) / len(all_rules) if all_rules else 0.0
    findings = _static(policies)
    shadow_share = len(findings) / len(all_rules) if all_rules else 0.0
    score = 100 * (0.6 * coverage + 0.2 * (1 - never_share) + 0.2 * (1 - min(shadow_share, 1.0)))
    return {
        "score": round(score, 1) if policies else 0.0,
        "routes": len(routes),
        "routes_covered": len(routes) - len(uncovered),
        "uncovered_routes": uncovered[:100],
        "rules": len(all_rules),
        "rules_never_matched": never[:100],
        "static_findings": findings[:100],
    }
