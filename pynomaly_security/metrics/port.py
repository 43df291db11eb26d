"""``METRICS_PORT``: the exposition also served on a port of its own.

A small asyncio server started in the app's lifespan (``SecurityStack.start``) answers
``GET <METRICS_PATH>`` on ``METRICS_HOST:METRICS_PORT`` (127.0.0.1 by default) with
the same exposition as the app's route: every worker's counts, read from the shared
state by whichever worker the scraper reached. prometheus-client's
``start_http_server`` was not used: it serves a registry from a thread, where the
counts here are read by an async snapshot on the worker's loop.

Several workers: each binds the port with ``SO_REUSEPORT`` where the platform has it
(Linux: the kernel spreads the scrapes over the workers, and any of them gives the
same aggregate); without it the first worker binds, the others log once at INFO and
serve nothing there. The port asks for the token or the admin key like the route,
unless ``METRICS_PORT_AUTH=false`` is set explicitly.

The server reads one request head (at most 8 KB, within 5 seconds), answers it and
closes the connection: no keep-alive, no body, nothing else served.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from pynomaly_security._log import get_logger
from pynomaly_security.metrics.hub import MetricsHub
from pynomaly_security.metrics.scrape import ScrapeAuth, exposition

__all__ = ["MetricsPort"]

log = get_logger(__name__)

PORT_TAKEN = "metrics_port_taken"
PORT_SERVING = "metrics_port_serving"
_HEAD_LIMIT = 8192
_HEAD_SECONDS = 5.0
_REUSE_PORT = hasattr(socket, "SO_REUSEPORT")
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            405: "Method Not Allowed", 503: "Service Unavailable"}  # fmt: skip


class MetricsPort:
    """The metrics port of one worker.

    Args:
        hub: the worker's metrics hub (its snapshot is every worker's counts).
        host, port: where to listen.
        path: the one path served (``METRICS_PATH``).
        auth: the credentials asked for; ``None`` only when ``METRICS_PORT_AUTH=false``.
    """

    def __init__(
        self, hub: MetricsHub, *, host: str, port: int, path: str, auth: ScrapeAuth | None
    ) -> None:
        self.hub = hub
        self.host = host
        self.port = port
        self.path = path
        self.auth = auth
        self._server: asyncio.Server | None = None

    @property
    def serving(self) -> bool:
        """Whether this worker listens on the port."""
        return self._server is not None

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(
                self._serve, self.host, self.port, limit=_HEAD_LIMIT, reuse_port=_REUSE_PORT
            )
        except OSError as exc:  # another worker holds it (no SO_REUSEPORT here)
            log.info(PORT_TAKEN, host=self.host, port=self.port, error=exc.strerror)
            return
        log.info(PORT_SERVING, host=self.host, port=self.port, shared=_REUSE_PORT)

    async def aclose(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_HEAD_SECONDS):
                head = await reader.readuntil(b"\r\n\r\n")
            status, body, content_type = await self._answer(head)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            status, body, content_type = 400, b"bad request\n", "text/plain"
        except ConnectionError:
            writer.close()
            return
        except Exception:  # the shared state did not answer: never a hung scrape
            status, body, content_type = 503, b"metrics unavailable\n", "text/plain"
        extra = "WWW-Authenticate: Bearer\r\n" if status == 401 else ""
        writer.write(
            f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n{extra}"
            "Connection: close\r\n\r\n".encode()
            + body
        )
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    async def _answer(self, head: bytes) -> tuple[int, bytes, str]:
        """The status, body and content type for one request head."""
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return 400, b"bad request\n", "text/plain"
        method, target = parts[0], parts[1]
        if target.split("?", 1)[0] != self.path:
            return 404, b"not found\n", "text/plain"
        if method != "GET":
            return 405, b"method not allowed\n", "text/plain"
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers.setdefault(name.strip().lower(), value.strip())
        if self.auth is not None and not self.auth.allows(
            headers.get("x-api-key"), headers.get("authorization")
        ):
            return 401, b"metrics credential required\n", "text/plain"
        body, content_type = await exposition(self.hub, headers.get("accept"))
        return 200, body, content_type
