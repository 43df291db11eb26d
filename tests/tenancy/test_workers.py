"""The example app's users per tenant are shared by its workers (issue 21): under
``uvicorn --workers 2`` on the real Redis, a session started on one worker, and a user
signed up on one, are known to both."""

from __future__ import annotations

from pathlib import Path

from examples.app import DEMO_USERS
from tests._uvicorn import example_app_workers, example_env, send, until_both_answer

KEY = "test-admin-key-0123456789abcdef-users"
ACME = {"X-Tenant": "acme"}


def test_a_session_or_user_made_on_one_worker_is_known_to_the_other(
    redis_db: str, tmp_path: Path
) -> None:
    env = example_env(
        KEY, redis_db, tmp_path, tenancy_enabled="true", tenancy_plans='{"free": {}, "pro": {}}'
    )
    with example_app_workers(env, tmp_path) as base:
        alice = {"username": "alice", "password": DEMO_USERS["alice"]}
        dora = {"username": "dora", "password": "explorer-passphrase-2024"}
        assert send("POST", base, "/signup", headers=ACME, json=dora).status_code == 201
        for who in (alice, dora):
            login = send("POST", base, "/login", headers=ACME, json=who)
            assert login.status_code == 200, login.text
            bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
            until_both_answer(lambda h=bearer: send("GET", base, "/me", headers=h), 200, 40)
        # Another tenant's alice is another account: acme's token is refused there.
        crossed = send("GET", base, "/me", headers={**bearer, "X-Tenant": "globex"})
        assert crossed.status_code == 403
