"""Compliance handlers that forward events to a SIEM: webhook (httpx) and syslog.

Register them with :meth:`AuditLogger.register_compliance_handler`; they run
in the dispatcher's background task, never on the request path. Each takes the
:class:`~pynomaly_security.audit.events.AuditEvent` a compliance handler receives, or
a document (a checkpoint, when used as an anchor sink).

References:
    RFC 5424 (syslog protocol), RFC 5426 (syslog over UDP).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from collections.abc import Mapping
from typing import Any

import httpx

from pynomaly_security.audit.events import AuditEvent
from pynomaly_security.exceptions import ConfigurationError

__all__ = ["SyslogHandler", "WebhookHandler"]

# RFC 5424 section 6.2.1 severities.
_SEVERITY = {"critical": 2, "error": 3, "warning": 4, "info": 6, "debug": 7}


class WebhookHandler:
    """POST each event as JSON to ``url``.

    Args:
        url: the SIEM's HTTP collector (https in production).
        client: an ``httpx.AsyncClient`` to use (tests inject a MockTransport);
            by default one is created and closed by :meth:`aclose`.
        headers: e.g. the collector's token; never logged.
        timeout: seconds per delivery.
    """

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
    ) -> None:
        if not url.startswith(("https://", "http://")):
            raise ConfigurationError(f"webhook url must be http(s)://..., got {url[:40]!r}")
        self._url = url
        self._own = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._headers = dict(headers or {})

    async def __call__(self, event: AuditEvent | Mapping[str, Any]) -> None:
        response = await self._client.post(self._url, json=_document(event), headers=self._headers)
        response.raise_for_status()

    async def aclose(self) -> None:
        if self._own:
            await self._client.aclose()


class SyslogHandler:
    """Send each event as an RFC 5424 message over UDP (fire and forget).

    Args:
        host / port: the syslog collector.
        facility: 13 ("log audit") by default.
        app_name: the APP-NAME field.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 514,
        *,
        facility: int = 13,
        app_name: str = "pynomaly-security",
    ) -> None:
        if not 0 <= facility <= 23:
            raise ConfigurationError(f"syslog facility must be 0..23, got {facility}")
        self._address = (host, port)
        self._facility = facility
        self._app = app_name
        self._hostname = socket.gethostname() or "-"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.setblocking(False)

    def format(self, event: AuditEvent | Mapping[str, Any]) -> bytes:
        event = _document(event)
        severity = _SEVERITY.get(str(event.get("level", "info")), 6)
        ts = event.get("ts")
        when = (
            dt.datetime.fromtimestamp(float(ts), tz=dt.UTC)
            if ts is not None
            else dt.datetime.now(dt.UTC)
        )
        msgid = str(event.get("event_type", "-"))[:32] or "-"
        body = json.dumps(event, sort_keys=True, separators=(",", ":"), default=str)
        header = (
            f"<{self._facility * 8 + severity}>1 {when.isoformat().replace('+00:00', 'Z')}"
            f" {self._hostname} {self._app} {os.getpid()} {msgid} -"
        )
        return (header + " " + body).encode()

    def __call__(self, event: AuditEvent | Mapping[str, Any]) -> None:
        # Non-blocking UDP: a full socket buffer raises (logged by the dispatcher)
        # instead of waiting; RFC 5426 syslog is lossy by design.
        self._sock.sendto(self.format(event), self._address)

    async def aclose(self) -> None:
        self._sock.close()


def _document(event: AuditEvent | Mapping[str, Any]) -> Mapping[str, Any]:
    return event.model_dump() if isinstance(event, AuditEvent) else event
