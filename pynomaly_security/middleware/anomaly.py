"""Behavioural anomaly layer: features on the request path, scores off it (issue 22).

Installed by the plugin only when ``ANOMALY_MODE`` is not ``off``, innermost (inside
inspection, whose refusals it never sees and whose buffered body it reads back
from memory): with the mode off there is no frame of it on any request. A path
not observed (``ANOMALY_ROUTES``, ``ANOMALY_EXCLUDE``) passes with no frame either.

For an observed request it extracts the features (method, path, query, a form or
JSON body up to ``ANOMALY_MAX_BODY_BYTES``, header names; a few microseconds),
serves it, and queues the features with the response status for the monitor's
task (:meth:`~pynomaly_security.anomaly.engine.AnomalyEngine.observe`). In
``prevent`` mode it first scores the request inline with the profile alone and
refuses it ``403 anomalous_request`` at or below ``ANOMALY_BLOCK_SCORE``
(:meth:`~pynomaly_security.anomaly.engine.AnomalyEngine.verdict`): the refusal
is written to the audit trail and the request's context (``anomaly``), and the
queued observation raises the alert with the explanation.
"""

from __future__ import annotations

from collections.abc import Awaitable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pynomaly_security._context import get_request_context
from pynomaly_security._log import get_logger
from pynomaly_security.anomaly.engine import AnomalyEngine, Observation
from pynomaly_security.anomaly.features import RequestFeatures
from pynomaly_security.anomaly.model import Assessment
from pynomaly_security.middleware._asgi import passes_through
from pynomaly_security.middleware._body import (
    BodyOutcome,
    content_length,
    read_body,
    replay_receive,
)
from pynomaly_security.middleware._refusal import refuse
from pynomaly_security.monitor.monitor import SecurityMonitor

__all__ = ["ANOMALOUS_REQUEST", "AnomalyMiddleware"]

log = get_logger(__name__)

ANOMALOUS_REQUEST = "anomalous_request"
_READ_TYPES = (b"application/x-www-form-urlencoded", b"application/json")


class AnomalyMiddleware:
    """Observe requests for the behavioural engine; refuse in prevent mode.

    Args:
        app: the ASGI app.
        engine: the worker's :class:`~pynomaly_security.anomaly.engine.AnomalyEngine`.
        monitor: receives the ``BLOCKED`` event of a refusal.
        body_read_timeout: seconds a body may take (the inspection layer, outside,
            usually buffered it already).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        engine: AnomalyEngine,
        monitor: SecurityMonitor | None = None,
        body_read_timeout: float = 30.0,
    ) -> None:
        self.app = app
        self.engine = engine
        self.monitor = monitor
        self.body_read_timeout = body_read_timeout
        self.max_body = engine.section.max_body_bytes

    @passes_through
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http" or not self.engine.wants(scope["path"]):
            return self.app(scope, receive, send)
        return self._observe(scope, receive, send)

    async def _observe(self, scope: Scope, receive: Receive, send: Send) -> None:
        engine = self.engine
        content_type = b""
        names: list[str] = []
        for name, value in scope["headers"]:
            if name == b"content-type" and not content_type:
                content_type = value
            names.append(name.decode("latin-1"))
        body = b""
        if content_type.startswith(_READ_TYPES):
            declared = content_length(scope)
            if declared is not None and declared <= self.max_body:
                buffered = await read_body(receive, self.max_body, self.body_read_timeout)
                if buffered.outcome is not BodyOutcome.COMPLETE:
                    # Not ours to refuse: the app reads (and answers) what is left.
                    receive = replay_receive(buffered.body, receive)
                else:
                    body = buffered.body
                    receive = replay_receive(body, receive)
        try:
            features = engine.features(
                scope["method"],
                scope["path"],
                scope["query_string"].decode("latin-1"),
                body.decode("latin-1"),
                content_type.decode("latin-1"),
                names,
            )
        except Exception:  # a fault of ours never costs the request: it goes unobserved
            log.exception("anomaly_features_failed")
            engine.counts["feature_errors"] += 1
            await self.app(scope, receive, send)
            return
        ctx = get_request_context(scope)
        if engine.mode == "prevent":
            verdict = engine.verdict(features)
            if verdict is not None:
                if ctx is not None:
                    ctx.extra["anomaly"] = verdict.to_dict()
                engine.observe(self._observation(scope, features, 403, verdict))
                await refuse(scope, receive, send, 403, ANOMALOUS_REQUEST, monitor=self.monitor)
                return
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            engine.observe(self._observation(scope, features, status, None))

    def _observation(
        self, scope: Scope, features: RequestFeatures, status: int, inline: Assessment | None
    ) -> Observation:
        ctx = get_request_context(scope)
        return Observation(
            features=features,
            status=status,
            path=scope["path"],
            user_id=ctx.user_id if ctx is not None else None,
            ip=ctx.client_ip if ctx is not None else None,
            request_id=ctx.request_id if ctx is not None else None,
            at=self.engine.now(),
            inline=inline,
        )
