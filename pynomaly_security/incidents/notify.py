"""Where playbook notifications go: a webhook (JSON), a Slack-compatible webhook
(``{"text": ...}``), e-mail over SMTP, and a ticket opened through a webhook.

Real clients (httpx, :mod:`smtplib` in a worker thread so the loop never blocks);
tests fake only the far end (a local HTTP server, a local SMTP sink). A message
names the incident, its title, severity and the counts of its observables, never
an observable's value nor any secret: it leaves the app for systems the audit
trail does not cover. Destinations come from the ``PLAYBOOK_*`` settings; a
channel without one is reported as skipped by the step, not as a failure.
"""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.settings import SecuritySettings

__all__ = ["NotConfigured", "Notifier"]

_TIMEOUT = 10.0


class NotConfigured(LookupError):
    """The channel has no destination in the settings."""


class Notifier:
    """Sends a playbook's messages.

    Args:
        settings: the ``PLAYBOOK_*`` destinations.
        client: an httpx client to send with (default: one per message).
    """

    def __init__(self, settings: SecuritySettings, client: httpx.AsyncClient | None = None) -> None:
        # The URLs are secrets (a Slack webhook's path is its token): read here only.
        self.webhook_url = _secret(settings.playbook_webhook_url)
        self.slack_url = _secret(settings.playbook_slack_webhook_url)
        self.ticket_url = _secret(settings.playbook_ticket_webhook_url)
        self.smtp_url = _secret(settings.playbook_smtp_url)
        self.email_from = settings.playbook_email_from
        self.email_to = list(settings.playbook_email_to)
        self._client = client
        if self.smtp_url is not None and urlsplit(self.smtp_url).scheme not in ("smtp", "smtps"):
            raise ConfigurationError("PLAYBOOK_SMTP_URL must be smtp://host:port or smtps://...")

    def destination(self, channel: str) -> str:
        """Where ``channel`` goes (for a plan), or :class:`NotConfigured`."""
        if channel == "email":
            if self.smtp_url is None or not self.email_to:
                raise NotConfigured("email needs PLAYBOOK_SMTP_URL and PLAYBOOK_EMAIL_TO")
            return f"{len(self.email_to)} recipient(s)"
        url, setting = {
            "webhook": (self.webhook_url, "PLAYBOOK_WEBHOOK_URL"),
            "slack": (self.slack_url, "PLAYBOOK_SLACK_WEBHOOK_URL"),
            "ticket": (self.ticket_url, "PLAYBOOK_TICKET_WEBHOOK_URL"),
        }[channel]
        if url is None:
            raise NotConfigured(f"no {setting} set")
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname}"  # never the path: it often holds a token

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        """Deliver ``message``; raises on a refused or failed delivery."""
        self.destination(channel)
        if channel == "email":
            await asyncio.to_thread(self._mail, message)
            return
        if channel == "slack":
            payload: dict[str, Any] = {"text": _text(message)}
            url = self.slack_url
        elif channel == "ticket":
            payload = {
                "title": f"[{message['severity']}] {message['title']}",
                "description": _text(message),
                "incident_id": message["incident_id"],
                "severity": message["severity"],
            }
            url = self.ticket_url
        else:
            payload, url = message, self.webhook_url
        assert url is not None  # destination() checked it
        if self._client is not None:
            answer = await self._client.post(url, json=payload, timeout=_TIMEOUT)
        else:
            async with httpx.AsyncClient(timeout=_TIMEOUT) as client:
                answer = await client.post(url, json=payload)
        answer.raise_for_status()

    def _mail(self, message: dict[str, Any]) -> None:
        assert self.smtp_url is not None
        parts = urlsplit(self.smtp_url)
        mail = EmailMessage()
        mail["Subject"] = f"[{message['severity']}] incident {message['incident_id']}"
        mail["From"] = self.email_from
        mail["To"] = ", ".join(self.email_to)
        mail.set_content(_text(message))
        smtp_class = smtplib.SMTP_SSL if parts.scheme == "smtps" else smtplib.SMTP
        port = parts.port or (465 if parts.scheme == "smtps" else 25)
        with smtp_class(parts.hostname or "127.0.0.1", port, timeout=_TIMEOUT) as smtp:
            if parts.username and parts.password:
                smtp.login(parts.username, parts.password)
            smtp.send_message(mail)


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def _text(message: dict[str, Any]) -> str:
    counts = ", ".join(f"{k}: {v}" for k, v in message.get("observables", {}).items())
    return (
        f"Incident {message['incident_id']} ({message['severity']}): {message['title']}. "
        f"Playbook {message['playbook']} v{message['version']}, step {message['step']}."
        + (f" Observables: {counts}." if counts else "")
        + (f" Operator: {message['operator_action']}." if "operator_action" in message else "")
    )
