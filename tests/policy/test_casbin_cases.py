"""pycasbin's example models (ACL, RBAC, RBAC with deny, ipMatch, RBAC with domains)
written as our policies, with the decisions pycasbin's examples expect (issue 17,
item 7). Casbin's ``g`` (role assignment) is the principal's roles here; a domain's
role is the role ``<role>@<domain>``."""

from __future__ import annotations

from typing import Any

import pytest

from pynomaly_security.policy import PolicySet, Principal, RequestFacts, Resource, load_policy


def allow(rid: str, who: str, obj: str, act: str, **extra: Any) -> dict[str, Any]:
    return {"id": rid, "effect": "allow", "principals": [who], "actions": [f"data:{act}"],
            "resources": [f"data:{obj}"], **extra}  # fmt: skip


def deny(rid: str, who: str, obj: str, act: str) -> dict[str, Any]:
    return {**allow(rid, who, obj, act), "effect": "deny"}


ACL = [allow("a1", "user:alice", "data1", "read"), allow("b1", "user:bob", "data2", "write")]
RBAC = [
    *ACL,
    allow("r1", "role:data2_admin", "data2", "read"),
    allow("r2", "role:data2_admin", "data2", "write"),
]
RBAC_DENY = [*RBAC, deny("d1", "user:alice", "data2", "write")]
IP_MATCH = [
    allow("i1", "*", "data1", "read", when={"ip": ["192.168.2.0/24"]}),
    allow("i2", "*", "data2", "write", when={"ip": ["10.0.0.0/16"]}),
]
DOMAINS = [
    allow("d1r", "role:admin@domain1", "data1", "read"),
    allow("d1w", "role:admin@domain1", "data1", "write"),
    allow("d2r", "role:admin@domain2", "data2", "read"),
    allow("d2w", "role:admin@domain2", "data2", "write"),
]
ALICE = Principal("alice")
BOB = Principal("bob")
ALICE_ADMIN = Principal("alice", roles=frozenset({"data2_admin"}))
ALICE_D1 = Principal("alice", roles=frozenset({"admin@domain1"}))
BOB_D2 = Principal("bob", roles=frozenset({"admin@domain2"}))
ANYONE = Principal("someone")


@pytest.mark.parametrize(
    ("rules", "principal", "obj", "act", "ip", "expected"),
    [
        # -- basic_model (ACL) --
        pytest.param(ACL, ALICE, "data1", "read", None, True, id="acl-alice-read-data1"),
        pytest.param(ACL, ALICE, "data1", "write", None, False, id="acl-alice-write-data1"),
        pytest.param(ACL, ALICE, "data2", "read", None, False, id="acl-alice-read-data2"),
        pytest.param(ACL, BOB, "data2", "write", None, True, id="acl-bob-write-data2"),
        pytest.param(ACL, BOB, "data1", "read", None, False, id="acl-bob-read-data1"),
        # -- rbac_model: alice has data2_admin --
        pytest.param(RBAC, ALICE_ADMIN, "data1", "read", None, True, id="rbac-alice-read-data1"),
        pytest.param(RBAC, ALICE_ADMIN, "data2", "read", None, True, id="rbac-alice-read-data2"),
        pytest.param(RBAC, ALICE_ADMIN, "data2", "write", None, True, id="rbac-alice-write-data2"),
        pytest.param(RBAC, BOB, "data2", "read", None, False, id="rbac-bob-read-data2"),
        # -- rbac_with_deny_model: alice is denied writing data2 despite her role --
        pytest.param(RBAC_DENY, ALICE_ADMIN, "data2", "write", None, False, id="deny-wins"),
        pytest.param(RBAC_DENY, ALICE_ADMIN, "data2", "read", None, True, id="deny-read-kept"),
        pytest.param(RBAC_DENY, BOB, "data2", "write", None, True, id="deny-bob-unaffected"),
        # -- ipmatch_model --
        pytest.param(IP_MATCH, ANYONE, "data1", "read", "192.168.2.123", True, id="ip-in-24"),
        pytest.param(IP_MATCH, ANYONE, "data1", "read", "192.168.3.1", False, id="ip-outside"),
        pytest.param(IP_MATCH, ANYONE, "data2", "write", "10.0.255.1", True, id="ip-in-16"),
        pytest.param(IP_MATCH, ANYONE, "data2", "write", "10.1.0.1", False, id="ip-next-16"),
        pytest.param(IP_MATCH, ANYONE, "data1", "write", "192.168.2.1", False, id="ip-other-act"),
        # -- rbac_with_domains_model --
        pytest.param(DOMAINS, ALICE_D1, "data1", "read", None, True, id="dom-alice-data1"),
        pytest.param(DOMAINS, ALICE_D1, "data2", "read", None, False, id="dom-alice-data2"),
        pytest.param(DOMAINS, BOB_D2, "data2", "write", None, True, id="dom-bob-data2"),
        pytest.param(DOMAINS, BOB_D2, "data1", "write", None, False, id="dom-bob-data1"),
    ],
)
def test_casbin_example_models(
    rules: list[dict[str, Any]],
    principal: Principal,
    obj: str,
    act: str,
    ip: str | None,
    expected: bool,
) -> None:
    """Each case decides as pycasbin's example expects."""
    policies = PolicySet([(load_policy({"id": "casbin", "rules": rules}), 1)])
    facts = RequestFacts(now=0.0, ip=ip)
    decision = policies.evaluate(principal, f"data:{act}", Resource(type="data", id=obj), facts)
    assert decision.allowed is expected
