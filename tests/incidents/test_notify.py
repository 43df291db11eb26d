"""Playbook messages reach real far ends: a local HTTP server stands for the webhook,
the Slack-compatible webhook and the ticket system, a local SMTP sink for the mail
server (issue 16, item 4). Messages name the incident, never an observable's value;
a far end that fails makes the step ``failed`` and a later run sends it again."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from examples.app import DEMO_USERS
from pynomaly_security import IncidentResponseAutomation
from pynomaly_security.settings import SecuritySettings
from tests.incidents.test_api import ADMIN, BASE, admin_session
from tests.incidents.test_playbooks import _app, _client

ATTACKER = "203.0.113.44"


class _Hooks(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, Any]]]
    fail: list[bool]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        failing = self.fail and self.fail[0]
        if not failing:
            self.received.append((self.path, json.loads(body)))
        self.send_response(503 if failing else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


class _SMTPSink(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) for smtplib to deliver one message."""

    mails: list[str]

    def handle(self) -> None:
        self.wfile.write(b"220 sink\r\n")
        while line := self.rfile.readline():
            verb = line[:4].upper()
            if verb == b"DATA":
                self.wfile.write(b"354 go on\r\n")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk
                self.mails.append(data.decode())
                self.wfile.write(b"250 queued\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def far_ends() -> Iterator[tuple[str, int, list[Any], list[str], list[bool]]]:
    received: list[Any] = []
    mails: list[str] = []
    fail = [False]
    hooks = type("Hooks", (_Hooks,), {"received": received, "fail": fail})
    sink = type("Sink", (_SMTPSink,), {"mails": mails})
    http = ThreadingHTTPServer(("127.0.0.1", 0), hooks)
    smtp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), sink)
    smtp.daemon_threads = True
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (http, smtp)]
    for t in threads:
        t.start()
    try:
        yield (
            f"http://127.0.0.1:{http.server_address[1]}",
            smtp.server_address[1],
            received,
            mails,
            fail,
        )
    finally:
        for s in (http, smtp):
            s.shutdown()
            s.server_close()


def test_notifications_reach_webhook_slack_ticket_and_mail(
    far_ends: tuple[str, int, list[Any], list[str], list[bool]],
) -> None:
    """The account takeover playbook's three messages and sql_injection's ticket arrive,
    each with the incident's id and no address; a failing webhook is ``failed``, and
    the next run sends it."""
    url, smtp_port, received, mails, fail = far_ends
    settings = SecuritySettings(
        _env_file=None,
        enable_audit_logging=False,
        playbook_webhook_url=f"{url}/hook",
        playbook_slack_webhook_url=f"{url}/slack/T000/B000/secret",
        playbook_ticket_webhook_url=f"{url}/tickets",
        playbook_smtp_url=f"smtp://127.0.0.1:{smtp_port}",
        playbook_email_to=["soc@example.org"],
    )
    automation = IncidentResponseAutomation(settings)
    try:
        incident_id = automation.create_incident(
            "Account takeover", observables={"ips": [ATTACKER], "users": ["bob"]}
        )
        run = automation.execute_containment_playbook(incident_id, "account_takeover_response")
        steps = {s["step"]: s for s in run["steps"]}
        assert steps["revoke_sessions"]["status"] == "skipped"  # no authenticator here
        for name in ("notify_team", "notify_slack", "notify_email"):
            assert steps[name]["status"] == "done", steps[name]
        assert "secret" not in json.dumps(steps["notify_slack"])  # the URL's token stays put
        paths = [path for path, _ in received]
        assert paths == ["/hook", "/slack/T000/B000/secret"]
        assert received[0][1]["incident_id"] == incident_id
        assert incident_id in received[1][1]["text"]
        [mail] = mails
        assert f"incident {incident_id}" in mail and "soc@example.org" in mail
        assert ATTACKER not in json.dumps(received) + mail

        fail[0] = True
        ticket = automation.execute_containment_playbook(incident_id, "sql_injection_response")
        assert [s["status"] for s in ticket["steps"]][2:] == ["failed", "failed"]
        fail[0] = False
        again = automation.execute_containment_playbook(incident_id, "sql_injection_response")
        assert [s["status"] for s in again["steps"]] == ["already_done", "skipped", "done", "done"]
        assert received[-1][0] == "/tickets" and received[-1][1]["incident_id"] == incident_id
    finally:
        automation.close()


ROTATE = {
    "name": "rotate_after_leak",
    "steps": [{"id": "rotate", "action": "rotate_key", "params": {"channel": "webhook"}}],
}


@pytest.mark.anyio
async def test_rotate_key_ends_the_users_sessions_and_asks_the_operator(
    far_ends: tuple[str, int, list[Any], list[str], list[bool]], tmp_path: Path
) -> None:
    """``rotate_key`` through the admin API: bob's session ends (``/me`` 401), the
    webhook gets the incident with the operator's instructions (``keys rotate``), the
    step is on the timeline, and a second run is ``already_done`` (one message)."""
    url, _, received, _, _ = far_ends
    async for app in _app(tmp_path, playbook_webhook_url=f"{url}/hook"):
        app.state.pynomaly_security.incidents.playbooks.add(ROTATE)
        async with _client(app, "198.51.100.9") as admin:
            bob = {"username": "bob", "password": DEMO_USERS["bob"]}
            token = (await admin.post("/login", json=bob)).json()["access_token"]
            bearer = {"Authorization": f"Bearer {token}"}
            assert (await admin.get("/me", headers=bearer)).status_code == 200
            session = await admin_session(admin)
            made = await admin.post(
                BASE, json={"title": "Key leak", "observables": {"users": ["bob"]}}, headers=ADMIN
            )
            incident_id = made.json()["incident_id"]
            run_url = f"{BASE}/{incident_id}/playbooks/rotate_after_leak"
            run = await admin.post(run_url, headers=session)
            assert run.status_code == 200, run.text
            [step] = run.json()["steps"]
            assert step["status"] == "done", step
            assert [r["done"] for r in step["results"]] == [True, True]
            assert (await admin.get("/me", headers=bearer)).status_code == 401
            [(path, message)] = received
            assert path == "/hook" and message["incident_id"] == incident_id
            assert "keys rotate" in message["operator_action"]
            assert "bob" not in json.dumps(message)

            again = await admin.post(run_url, headers=session)
            assert again.json()["steps"][0]["status"] == "already_done"
            assert len(received) == 1
            timeline = (await admin.get(f"{BASE}/{incident_id}/timeline", headers=ADMIN)).json()
            assert timeline["verified"] is True
            assert [
                e["details"]["status"]
                for e in timeline["entries"]
                if e["action"] == "playbook_step"
            ] == ["done", "already_done"]
