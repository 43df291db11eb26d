"""Property: the order of rules (and of policies) never changes a decision (issue 17,
item 7): the same outcome, deciding rule and reasons for any permutation."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pynomaly_security.policy import PolicySet, Principal, RequestFacts, Resource, load_policy

PRINCIPALS = ["*", "user:alice", "user:bob", "role:admin", "role:staff"]
ACTIONS = ["*", "orders:read", "orders:*", "DELETE", "GET"]
RESOURCES = ["*", "/orders/{id}", "/orders/**", "/items/*", "order:*", "order:1"]
CONDITIONS: list[dict[str, Any] | None] = [
    None,
    {"ip": ["10.0.0.0/8"]},
    {"user": {"mfa": True}},
    {"time": {"start": "22:00", "end": "06:00"}},
    {"methods": ["DELETE"]},
]

rules = st.lists(
    st.fixed_dictionaries(
        {
            "effect": st.sampled_from(["allow", "deny"]),
            "principals": st.lists(st.sampled_from(PRINCIPALS), min_size=1, max_size=2),
            "actions": st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=2),
            "resources": st.lists(st.sampled_from(RESOURCES), min_size=1, max_size=2),
            "when": st.sampled_from(CONDITIONS),
            "mode": st.sampled_from(["enforce", "enforce", "dry_run"]),
        }
    ),
    min_size=1,
    max_size=12,
)
requests = st.tuples(
    st.sampled_from(
        [
            Principal("alice", roles=frozenset({"staff"})),
            Principal("bob", roles=frozenset({"admin"}), mfa=True),
        ]
    ),
    st.sampled_from(["orders:read", "orders:write", "DELETE", "GET"]),
    st.sampled_from(
        [Resource(path="/orders/1"), Resource(path="/items/2"), Resource(type="order", id="1")]
    ),
    st.sampled_from(["10.1.1.1", "192.0.2.1", "::ffff:10.0.0.9"]),
    st.sampled_from([0.0, 12 * 3600.0, 23 * 3600.0]),
)


@settings(max_examples=200, deadline=None)
@given(rules=rules, request=requests, data=st.data())
def test_evaluation_is_independent_of_rule_order(
    rules: list[dict[str, Any]], request: Any, data: st.DataObject
) -> None:
    """Any permutation of the rules, split over two policies or not, decides alike."""
    named = [{**r, "id": f"r{i}", "when": r["when"]} for i, r in enumerate(rules)]
    named = [{k: v for k, v in r.items() if v is not None} for r in named]
    shuffled = data.draw(st.permutations(named))
    principal, action, resource, ip, now = request
    facts = RequestFacts(now=now, ip=ip, method=action if action.isupper() else "GET")
    one = PolicySet([(load_policy({"id": "p", "rules": named}), 1)])
    other = PolicySet([(load_policy({"id": "p", "rules": list(shuffled)}), 1)])
    a = one.evaluate(principal, action, resource, facts)
    b = other.evaluate(principal, action, resource, facts)
    assert a == b
