"""The leak suite (issue 21, item 8): many tenants, concurrent requests through the
example app under ``uvicorn --workers 2`` on the real Redis (shared state) and the real
PostgreSQL (items under row-level security, read and written by a role that is not a
superuser). Every read must return only the caller's tenant's rows and lockouts; a
lockout in one tenant must not lock the same name in another.

The default is 12 tenants and 600 requests (CI time); the issue's figure is
``TENANCY_LEAK_TENANTS=50 TENANCY_LEAK_REQUESTS=10000`` (see the README)."""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests._uvicorn import example_app_workers, example_env, send

KEY = "test-admin-key-0123456789abcdef-leak"
ADMIN = {"X-API-Key": KEY}
TENANTS = int(os.environ.get("TENANCY_LEAK_TENANTS", "12"))
REQUESTS = int(os.environ.get("TENANCY_LEAK_REQUESTS", "600"))


def tenant_ids(n: int) -> list[str]:
    # Ids that are prefixes of one another ("t1", "t1-0", "t10"): a naive key join or
    # prefix scan would mix them.
    base = ["t1", "t1-0", "t10", "t1-1", "t11"]
    return (base + [f"tenant-{i}" for i in range(n)])[:n]


def test_no_tenant_sees_another_tenants_rows_or_lockouts(
    redis_db: str, pg: tuple[str, str, str], tmp_path: Path
) -> None:
    _, app_url, schema = pg
    env = example_env(
        KEY,
        redis_db,
        tmp_path,
        tenancy_enabled="true",
        tenancy_cache_seconds="1",
        tenancy_plans='{"free": {}, "pro": {}}',
        brute_force_max_attempts="3",
        rate_limit_exempt_paths='["/api/security", "/db/items", "/health"]',
    )
    env["PYNOMALY_DEMO_ITEMS_DB"] = app_url
    env["PYNOMALY_DEMO_ITEMS_TABLE"] = f"{schema}.items"
    tenants = tenant_ids(TENANTS)
    with example_app_workers(env, tmp_path) as base:
        for t in tenants:
            made = send("POST", base, "/api/security/tenants", headers=ADMIN, json={"id": t})
            assert made.status_code == 201, made.text

        def one(i: int) -> tuple[str, int, int]:
            """Request i: (kind, status, foreign records seen)."""
            t = tenants[i % len(tenants)]
            head = {"X-Tenant": t}
            if i % 3 == 0:
                answer = send("POST", base, "/db/items", headers=head, json={"name": f"{t}#{i}"})
                foreign = int(answer.status_code == 201 and answer.json()["tenant_id"] != t)
                return "write", answer.status_code, foreign
            if i % 7 == 1:
                # A failed sign-in for a name every tenant shares and one of its own.
                user = "shared|name" if i % 2 else f"only|{t}"
                answer = send(
                    "POST", base, "/login", headers=head, json={"username": user, "password": "x"}
                )
                return "login", answer.status_code, 0
            answer = send("GET", base, "/db/items", headers=head)
            rows: list[dict[str, Any]] = answer.json() if answer.status_code == 200 else []
            foreign = sum(r["tenant_id"] != t or not r["name"].startswith(t + "#") for r in rows)
            return "read", answer.status_code, foreign

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(one, range(REQUESTS)))

        statuses = Counter((kind, status) for kind, status, _ in results)
        foreign = sum(f for _, _, f in results)
        assert foreign == 0, statuses
        assert statuses[("read", 200)] + statuses[("write", 201)] >= REQUESTS * 0.7, statuses
        assert all(s in (401, 423, 429) for k, s in statuses if k == "login"), statuses

        # Lockouts, read by the platform admin inside each tenant: its own names only.
        locked_names: set[tuple[str, str]] = set()
        for t in tenants:
            listed = send("GET", base, "/api/security/lockouts", headers={**ADMIN, "X-Tenant": t})
            assert listed.status_code == 200, listed.text
            for lock in listed.json()["lockouts"]:
                assert lock["username"] in ("shared|name", f"only|{t}"), (t, lock)
                locked_names.add((t, lock["username"]))
        assert any(name == "shared|name" for _, name in locked_names)
        # The same name locked in one tenant still signs in elsewhere: alice of acme.
        alice = {"username": "alice", "password": "wonderland-2024"}
        fine = send("POST", base, "/login", headers={"X-Tenant": "acme"}, json=alice)
        assert fine.status_code == 200, fine.text
    print(  # the figure the README quotes
        f"\nleak suite: {len(tenants)} tenants, {REQUESTS} requests,"
        f" {foreign} foreign records, statuses {dict(statuses)}"
    )
