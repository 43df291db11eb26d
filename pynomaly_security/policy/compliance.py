"""The compliance score of ``GET /api/security/policies/stats`` (issue 17, item 5).

Three findings over the active policies, each a share in [0, 1]:

* **coverage**: the share of the app's routes some enforced rule names (a rule whose
  resources match the route template, ``*`` included);
* **never matched**: the share of active rules no decision on this worker applied;
* **static findings** (each with an explanation): rules that can never change a
  decision (``unreachable``): a rule written twice (same effect, who, what, where,
  conditions and mode); an allow every request of which an unconditional enforced
  deny covers (``shadowed_by_deny``: deny wins); an allow another unconditional allow
  covers (``covered_by_allow``). And ``overlap``: an allow and a deny that both apply
  to some requests, where the deny wins; how an exception is written, so it weighs a
  quarter. Coverage is by names and patterns (``*``, ``name:*``, ``/items/*`` covers
  ``/items/{id}``, ``/**`` the rest); a role never covers a user (membership is not
  known statically), so a finding is never a guess.

score = 100 x (0.6 coverage + 0.2 (1 - never matched) + 0.2 (1 - findings)), rounded:
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


# Beyond this many enforced rules the pairwise analysis stops (it is quadratic); the
# report says how many it read, so a truncated analysis never reads as a clean one.
MAX_ANALYSED = 2_000


def _segments(pattern: str) -> list[str]:
    return [
        ("*" if s.startswith("{") and s.endswith("}") else s) for s in pattern.strip("/").split("/")
    ]


def _path_covers(outer: list[str], inner: list[str]) -> bool:
    """Every path ``inner`` matches, ``outer`` matches (``*`` one segment, ``**`` the rest)."""
    for i, seg in enumerate(outer):
        if seg == "**":
            return True
        if i >= len(inner) or inner[i] == "**":
            return False
        if seg != "*" and seg != inner[i]:
            return False
    return len(inner) == len(outer)


def _path_meets(a: list[str], b: list[str]) -> bool:
    """Some path matches both."""
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else None
        y = b[i] if i < len(b) else None
        if x == "**" or y == "**":
            return True
        if x is None or y is None:
            return False
        if x != "*" and y != "*" and x != y:
            return False
    return True


def _name_covers(outer: str, inner: str) -> bool:
    """Actions and ``type:id`` resources: ``*``, ``name:*`` or the same name."""
    if outer == "*" or outer == inner:
        return True
    return outer.endswith(":*") and inner.startswith(outer[:-1]) and inner != "*"


def _one_covers(outer: str, inner: str) -> bool:
    if outer.startswith("/") and inner.startswith("/"):
        return _path_covers(_segments(outer), _segments(inner))
    return _name_covers(outer, inner)


def _one_meets(a: str, b: str) -> bool:
    if a.startswith("/") and b.startswith("/"):
        return _path_meets(_segments(a), _segments(b))
    return _name_covers(a, b) or _name_covers(b, a)


def _covers(outer: list[str], inner: list[str]) -> bool:
    """Every item of ``inner`` is within some item of ``outer``."""
    return all(any(_one_covers(o, i) for o in outer) for i in inner)


def _meets(a: list[str], b: list[str]) -> bool:
    return any(_one_meets(x, y) for x in a for y in b)


def _who_covers(outer: list[str], inner: list[str]) -> bool:
    # Names only: a role may or may not hold a given user, so role:x never covers user:y.
    return "*" in outer or set(inner) <= set(outer)


def _who_meets(a: list[str], b: list[str]) -> bool:
    return "*" in a or "*" in b or bool(set(a) & set(b))


def _unconditional(rule: PolicyRule) -> bool:
    return rule.mode is Mode.ENFORCE and rule.when is None and not rule.unless


def _within(outer: PolicyRule, inner: PolicyRule) -> bool:
    return (
        _who_covers(outer.principals, inner.principals)
        and _covers(outer.actions, inner.actions)
        and _covers(outer.resources, inner.resources)
    )


def _overlap(a: PolicyRule, b: PolicyRule) -> bool:
    return (
        _who_meets(a.principals, b.principals)
        and _meets(a.actions, b.actions)
        and _meets(a.resources, b.resources)
    )


def _static(policies: list[tuple[Policy, int]]) -> tuple[list[dict[str, Any]], int]:
    """The findings, and how many enforced rules the pairwise analysis read."""
    rules = [(f"{p.id}@v{v}/{r.id}", r) for p, v in policies for r in p.rules]
    findings: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for name, rule in rules:
        shape = rule.model_dump_json(exclude={"id", "description"})
        if shape in seen:
            findings.append(
                {
                    "rule": name,
                    "kind": "duplicate",
                    "of": seen[shape],
                    "severity": "unreachable",
                    "explanation": f"{name} repeats {seen[shape]} (same effect, principals, "
                    "actions, resources, conditions and mode): it never decides anything "
                    "the other does not",
                }
            )
        else:
            seen[shape] = name
    duplicates = {f["rule"] for f in findings}
    enforced = [(n, r) for n, r in rules if r.mode is Mode.ENFORCE and n not in duplicates]
    analysed = enforced[:MAX_ANALYSED]
    for name, rule in analysed:
        if rule.effect is not Effect.ALLOW:
            continue
        finding = None
        for other_name, other in analysed:
            if other_name == name or not _unconditional(other) or not _within(other, rule):
                continue
            if other.effect is Effect.DENY:
                finding = {
                    "rule": name,
                    "kind": "shadowed_by_deny",
                    "of": other_name,
                    "severity": "unreachable",
                    "explanation": f"{other_name} denies, without conditions, every "
                    f"principal, action and resource {name} allows; a deny wins, so "
                    f"{name} never allows anything",
                }
                break
            if finding is None and not (_within(rule, other) and other_name > name):
                # Two allows covering each other (equal reach): only the later-named
                # one is reported, so the pair counts once.
                finding = {
                    "rule": name,
                    "kind": "covered_by_allow",
                    "of": other_name,
                    "severity": "unreachable",
                    "explanation": f"{other_name} allows, without conditions, everything "
                    f"{name} allows: removing {name} changes no decision",
                }
        if finding is not None:
            findings.append(finding)
    unreachable = {f["rule"] for f in findings}
    for name, rule in analysed:
        if rule.effect is not Effect.DENY or name in unreachable:
            continue
        for other_name, other in analysed:
            if other.effect is not Effect.ALLOW or other_name in unreachable:
                continue
            if _overlap(rule, other):
                when = "" if _unconditional(rule) else " when its conditions hold"
                findings.append(
                    {
                        "rule": other_name,
                        "kind": "overlaps_deny",
                        "of": name,
                        "severity": "overlap",
                        "explanation": f"{other_name} and {name} both apply to some "
                        f"requests (principals, actions and resources intersect); there "
                        f"{name} wins{when}. Intended for an exception, a smell otherwise",
                    }
                )
    return findings, len(analysed)


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
    findings, analysed = _static(policies)
    # An unreachable rule is a defect; an overlap is how a deny-wins policy writes an
    # exception ("deny DELETE off hours unless admin"), so it weighs a quarter.
    weight = sum(1.0 if f["severity"] == "unreachable" else 0.25 for f in findings)
    shadow_share = weight / len(all_rules) if all_rules else 0.0
    score = 100 * (0.6 * coverage + 0.2 * (1 - never_share) + 0.2 * (1 - min(shadow_share, 1.0)))
    return {
        "score": round(score, 1) if policies else 0.0,
        "routes": len(routes),
        "routes_covered": len(routes) - len(uncovered),
        "uncovered_routes": uncovered[:100],
        "rules": len(all_rules),
        "rules_never_matched": never[:100],
        "static_findings": findings[:100],
        "rules_analysed": analysed,
        "analysis_truncated": analysed >= MAX_ANALYSED,
    }
