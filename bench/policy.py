"""Policy decisions per second and p50/p99 at 10, 1,000 and 100,000 rules (issue 17),
side by side in one run with pycasbin and cedarpy when they are installed
(``pip install -e '.[bench]'``; a missing one is skipped with a message).

    python bench/policy.py [--sizes 10,1000,100000] [--seconds 1.5]

The same access-control list in each engine: rule ``i`` lets ``user<i>`` read
``doc<i>`` (pycasbin: the basic ACL model ``r.sub == p.sub && r.obj == p.obj &&
r.act == p.act``; cedarpy: one ``permit`` per rule in a prepared ``PolicySet``; ours:
one policy of allow rules, plus one conditional deny so the deny path is exercised).
Each engine answers requests for random rules (hits) and one in ten for an unknown
user (a default deny), one at a time, timed per call with ``perf_counter_ns`` for
``--seconds`` (at least 20 calls). Printed: decisions per second (1 / mean), p50 and
p99 in microseconds, and the ratio of ours to each.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pynomaly_security.policy import PolicySet, Principal, RequestFacts, Resource, load_policy

Check = Callable[[int], bool]


def ours(n: int) -> Check:
    rules: list[dict[str, Any]] = [
        {"id": f"r{i}", "effect": "allow", "principals": [f"user:user{i}"],
         "actions": ["docs:read"], "resources": [f"doc:{i}"]}
        for i in range(n)
    ]  # fmt: skip
    rules.append(
        {"id": "night", "effect": "deny", "principals": ["*"], "actions": ["docs:write"],
         "when": {"time": {"start": "22:00", "end": "06:00", "tz": "Europe/Paris"}}}
    )  # fmt: skip
    policies = PolicySet([(load_policy({"id": "acl", "rules": rules}), 1)])
    principals = [Principal(f"user{i}") for i in range(n)] + [Principal("stranger")]
    resources = [Resource(type="doc", id=str(i)) for i in range(n)]
    facts = RequestFacts(now=time.time(), ip="10.0.0.1", method="GET")

    def check(i: int) -> bool:
        who = principals[i] if i >= 0 else principals[-1]
        return policies.evaluate(who, "docs:read", resources[abs(i)], facts).allowed

    return check


def casbin_acl(n: int) -> Check | str:
    try:
        import casbin
    except ImportError:
        return "pycasbin not installed (pip install pycasbin)"
    model = casbin.Enforcer.new_model(
        text="""
[request_definition]
r = sub, obj, act
[policy_definition]
p = sub, obj, act
[policy_effect]
e = some(where (p.eft == allow))
[matchers]
m = r.sub == p.sub && r.obj == p.obj && r.act == p.act
"""
    )
    # Loaded from a CSV file, as casbin apps usually are: add_policies checks each rule
    # against those already there, quadratic in the count (minutes at 100,000).
    from casbin.persist.adapters import FileAdapter

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "policy.csv"
        path.write_text("".join(f"p, user{i}, doc{i}, read\n" for i in range(n)))
        enforcer = casbin.Enforcer(model, FileAdapter(str(path)))

    def check(i: int) -> bool:
        who = f"user{i}" if i >= 0 else "stranger"
        return bool(enforcer.enforce(who, f"doc{abs(i)}", "read"))

    return check


def cedar(n: int) -> Check | str:
    try:
        import cedarpy
    except ImportError:
        return "cedarpy not installed (pip install cedarpy)"
    text = "\n".join(
        f'permit(principal == User::"user{i}", action == Action::"read", '
        f'resource == Doc::"doc{i}");'
        for i in range(n)
    )
    policies = cedarpy.PolicySet.from_str(text)
    entities = cedarpy.Entities.from_json_str("[]")

    def check(i: int) -> bool:
        who = f"user{i}" if i >= 0 else "stranger"
        request = {
            "principal": f'User::"{who}"',
            "action": 'Action::"read"',
            "resource": f'Doc::"doc{abs(i)}"',
            "context": {},
        }
        return bool(cedarpy.is_authorized(request, policies, entities).allowed)

    return check


def measure(check: Check, n: int, seconds: float) -> tuple[float, float, float]:
    rng = random.Random(17)
    times: list[int] = []
    gc.collect()
    deadline = time.perf_counter() + seconds
    clock = time.perf_counter_ns
    while time.perf_counter() < deadline or len(times) < 20:
        i = rng.randrange(n)
        if rng.random() < 0.1:
            i = -i  # an unknown user: default deny
        t0 = clock()
        allowed = check(i)
        times.append(clock() - t0)
        if allowed != (i >= 0 or i == 0):
            raise SystemExit(f"wrong decision for {i}")
    times.sort()
    mean = statistics.fmean(times)
    p50 = times[len(times) // 2] / 1000
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))] / 1000
    return 1e9 / mean, p50, p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,1000,100000")
    parser.add_argument("--seconds", type=float, default=1.5)
    args = parser.parse_args()
    engines: list[tuple[str, Callable[[int], Check | str]]] = [
        ("pynomaly", ours),
        ("pycasbin", casbin_acl),
        ("cedarpy", cedar),
    ]
    print(f"{'rules':>8} {'engine':<10} {'build s':>8} {'decisions/s':>12} "
          f"{'p50 µs':>9} {'p99 µs':>9} {'ours x':>7}")  # fmt: skip
    for n in (int(s) for s in args.sizes.split(",")):
        base: float | None = None
        for name, build in engines:
            started = time.perf_counter()
            check = build(n)
            built = time.perf_counter() - started
            if isinstance(check, str):
                print(f"{n:>8} {name:<10} skipped: {check}")
                continue
            rate, p50, p99 = measure(check, n, args.seconds)
            if base is None:
                base = rate
            ratio = f"{base / rate:.0f}" if name != "pynomaly" else "-"
            print(
                f"{n:>8} {name:<10} {built:>8.2f} {rate:>12,.0f} {p50:>9.1f} {p99:>9.1f} {ratio:>7}"
            )


if __name__ == "__main__":
    main()
