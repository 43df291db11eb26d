"""The compliance score's static analysis (issue 17, item 5): duplicates, allows a deny
makes unreachable, allows another allow covers, and allow/deny overlaps, each with an
explanation; and what is not a finding."""

from __future__ import annotations

from typing import Any

import pytest

from pynomaly_security.policy import load_policy
from pynomaly_security.policy.compliance import compliance_report


def rule(rid: str, effect: str, **fields: Any) -> dict[str, Any]:
    return {"id": rid, "effect": effect, "principals": ["*"], "actions": ["*"], **fields}


OFF_HOURS = {"time": {"start": "09:00", "end": "18:00"}}


def findings(*rules: dict[str, Any]) -> set[tuple[str, str, str]]:
    report = compliance_report([(load_policy({"id": "p", "rules": list(rules)}), 1)], [], set())
    for f in report["static_findings"]:
        assert f["explanation"] and f["of"] in f["explanation"]
    return {(f["kind"], f["rule"], f["of"]) for f in report["static_findings"]}


def k(kind: str, rule_id: str, of: str) -> tuple[str, str, str]:
    return (kind, f"p@v1/{rule_id}", f"p@v1/{of}")


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        # -- unreachable ------------------------------------------------------------
        pytest.param(
            [rule("a", "allow", actions=["GET"]), rule("b", "allow", actions=["GET"])],
            {k("duplicate", "b", "a")},
            id="duplicate",
        ),
        pytest.param(
            [
                rule("read", "allow", actions=["GET"], resources=["/items/{id}"]),
                rule("block", "deny", actions=["GET", "DELETE"], resources=["/items/*"]),
            ],
            {k("shadowed_by_deny", "read", "block")},
            id="deny-covers-template",
        ),
        pytest.param(
            [
                rule("read", "allow", actions=["orders:read"], resources=["/a/b/c"]),
                rule("block", "deny", actions=["orders:*"], resources=["/a/**"]),
            ],
            {k("shadowed_by_deny", "read", "block")},
            id="deny-covers-named-action-and-subtree",
        ),
        pytest.param(
            [
                rule(
                    "narrow",
                    "allow",
                    principals=["role:staff"],
                    actions=["GET"],
                    resources=["/items/1"],
                ),
                rule("broad", "allow", actions=["GET"], resources=["/items/*"]),
            ],
            {k("covered_by_allow", "narrow", "broad")},
            id="allow-covered-by-broader-allow",
        ),
        pytest.param(
            [
                rule("one", "allow", actions=["GET"], resources=["/x/*"]),
                rule("two", "allow", actions=["GET"], resources=["/x/{id}"]),
            ],
            {k("covered_by_allow", "two", "one")},
            id="equal-reach-counted-once",
        ),
        # -- overlaps (the way an exception is written) --------------------------------
        pytest.param(
            [
                rule("all", "allow"),
                rule(
                    "late", "deny", actions=["DELETE"], resources=["/items/*"], unless=[OFF_HOURS]
                ),
            ],
            {k("overlaps_deny", "all", "late")},
            id="conditional-deny-inside-allow",
        ),
        pytest.param(
            [
                rule("read", "allow", actions=["GET"], resources=["/items/*"]),
                rule("block", "deny", principals=["user:eve"], actions=["GET"]),
            ],
            {k("overlaps_deny", "read", "block")},
            id="deny-for-one-user",
        ),
        # -- not findings --------------------------------------------------------------
        pytest.param(
            [rule("read", "allow", actions=["GET"]), rule("del", "deny", actions=["DELETE"])],
            set(),
            id="disjoint-actions",
        ),
        pytest.param(
            [rule("a", "allow", resources=["/items/*"]), rule("b", "deny", resources=["/users/*"])],
            set(),
            id="disjoint-paths",
        ),
        pytest.param(
            [
                rule("a", "allow", principals=["user:bob"], actions=["GET"]),
                rule("b", "deny", principals=["role:intern"], actions=["GET"]),
            ],
            set(),
            id="role-never-assumed-to-hold-a-user",
        ),
        pytest.param(
            [
                rule("a", "allow", actions=["GET"], when=OFF_HOURS),
                rule("b", "allow", actions=["GET"], resources=["/items/*"], when=OFF_HOURS),
            ],
            set(),
            id="conditional-allow-covers-nothing",
        ),
        pytest.param(
            [
                rule("a", "allow", actions=["GET"], resources=["/items/*"]),
                rule("b", "deny", actions=["GET"], resources=["/items/*/parts"]),
            ],
            set(),
            id="different-depth",
        ),
    ],
)
def test_static_findings(rules: list[dict[str, Any]], expected: set[tuple[str, str, str]]) -> None:
    """Each table row: the findings the analysis reports, no more, no fewer."""
    assert findings(*rules) == expected


def test_findings_lower_the_score_unreachable_more_than_overlaps() -> None:
    """Same coverage and matches: an unreachable rule costs more than an overlap, and a
    clean policy scores highest."""

    def score(*rules: dict[str, Any]) -> float:
        policy = load_policy({"id": "p", "rules": list(rules)})
        matched = {("p", 1, r["id"]) for r in rules}
        return float(compliance_report([(policy, 1)], ["/items/{id}"], matched)["score"])

    clean = score(rule("a", "allow", actions=["GET"]), rule("b", "deny", actions=["DELETE"]))
    overlap = score(rule("a", "allow"), rule("b", "deny", actions=["DELETE"], unless=[OFF_HOURS]))
    unreachable = score(rule("a", "allow", actions=["GET"]), rule("b", "deny"))
    assert clean == 100.0 and clean > overlap > unreachable
