"""Mask sensitive fields in JSON responses of selected routes (pure ASGI).

Only responses that are all of: on a configured route, ``application/json`` (or
``+json``), not content-encoded, and with a ``Content-Length`` of at most
``max_body_size`` are buffered, masked and re-sent. Everything else -- other
routes, other types, streaming responses (no ``Content-Length``), compressed
bodies -- passes through untouched, message by message, so streaming and SSE
keep working and memory stays bounded. Put this middleware *inside* any
compression middleware, so it sees plain JSON.

Route configuration: ``{"/customers/*": ["card", "contact.email", "items.iban"],
"/export": ["*"]}`` -- an exact path or a prefix ending in ``*``, mapped to dot
paths of fields (``*`` as a segment matches any key; lists are traversed). A
listed field is masked by its classification, or redacted whole when nothing
is recognised; the path ``"*"`` masks every classified value in the body.

References:
    Starlette ``middleware/gzip.py`` (responder per request, held start message);
    OWASP Top 10 A02:2021 (sensitive data exposure).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pynomaly_security._log import get_logger
from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.protection.masking import Masker

__all__ = ["ResponseMaskingMiddleware"]

log = get_logger(__name__)

MASKING_SKIPPED = "response_masking_skipped"


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class ResponseMaskingMiddleware:
    """Mask configured fields of JSON responses per route.

    Args:
        app: the ASGI app.
        routes: path (exact, or prefix ending in ``*``) -> field paths to mask.
        masker: the masking policy (default :class:`Masker`).
        max_body_size: largest response body (bytes) that is buffered; larger
            ones pass through unmasked and a warning is logged.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Mapping[str, Sequence[str]],
        masker: Masker | None = None,
        max_body_size: int = 1_048_576,
    ) -> None:
        if max_body_size < 1:
            raise ConfigurationError("max_body_size must be >= 1")
        exact: dict[str, tuple[tuple[str, ...], ...]] = {}
        prefixes: list[tuple[str, tuple[tuple[str, ...], ...]]] = []
        for route, fields in routes.items():
            if isinstance(fields, str) or not fields or not all(fields):
                raise ConfigurationError(
                    f"routes[{route!r}] must be a non-empty list of field paths"
                )
            paths = tuple(tuple(f.split(".")) for f in fields)
            if route.endswith("*"):
                prefixes.append((route[:-1], paths))
            else:
                exact[route] = paths
        # Longest prefix first, so "/a/b/*" wins over "/a/*".
        prefixes.sort(key=lambda item: len(item[0]), reverse=True)
        self.app = app
        self.masker = masker or Masker()
        self.max_body_size = max_body_size
        self._exact = exact
        self._prefixes = tuple(prefixes)

    def _fields_for(self, path: str) -> tuple[tuple[str, ...], ...] | None:
        if path in self._exact:
            return self._exact[path]
        for prefix, fields in self._prefixes:
            if path.startswith(prefix):
                return fields
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # HEAD responses declare the GET body's length but send none: nothing to mask.
        if scope["type"] != "http" or scope.get("method") == "HEAD":
            await self.app(scope, receive, send)
            return
        fields = self._fields_for(scope["path"])
        if fields is None:
            await self.app(scope, receive, send)
            return
        responder = _MaskingResponder(self, fields, send)
        await self.app(scope, receive, responder.send)

    def mask_document(self, document: Any, fields: tuple[tuple[str, ...], ...]) -> Any:
        """Mask ``fields`` of a parsed JSON document."""
        for path in fields:
            if path == ("*",):
                document = self.masker.mask(document)
            else:
                document = self._mask_path(document, path)
        return document

    def _mask_path(self, node: Any, path: tuple[str, ...], name: str | None = None) -> Any:
        if isinstance(node, list):
            return [self._mask_path(item, path, name) for item in node]
        if not path:
            return self.masker.mask_field(node, field=name)
        if not isinstance(node, dict):
            return node
        head, rest = path[0], path[1:]
        keys = list(node) if head == "*" else [head] if head in node else []
        return {
            key: self._mask_path(value, rest, key) if key in keys else value
            for key, value in node.items()
        }


class _MaskingResponder:
    """Per-request state: the held start message and the buffered body."""

    def __init__(
        self, middleware: ResponseMaskingMiddleware, fields: tuple[tuple[str, ...], ...], send: Send
    ) -> None:
        self.middleware = middleware
        self.fields = fields
        self.downstream = send
        self.start: Message | None = None
        self.buffering = False
        self.chunks: list[bytes] = []

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(raw=list(message.get("headers", [])))
            self.buffering = self._should_buffer(headers)
            if self.buffering:
                self.start = message
                return
        elif message["type"] == "http.response.body" and self.buffering:
            self.chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                await self._flush()
            return
        await self.downstream(message)

    def _should_buffer(self, headers: MutableHeaders) -> bool:
        if not _is_json(headers.get("content-type", "")) or headers.get("content-encoding"):
            return False
        try:
            length = int(headers.get("content-length", ""))
        except ValueError:
            return False  # no length: a streaming response, passed through
        if length > self.middleware.max_body_size:
            log.warning(MASKING_SKIPPED, reason="too_large", size=length)
            return False
        return True

    async def _flush(self) -> None:
        assert self.start is not None  # set whenever buffering is true
        body = b"".join(self.chunks)
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            log.warning(MASKING_SKIPPED, reason="invalid_json")
        else:
            masked = self.middleware.mask_document(document, self.fields)
            body = json.dumps(masked, ensure_ascii=False, separators=(",", ":")).encode()
        headers = MutableHeaders(scope=self.start)
        headers["content-length"] = str(len(body))
        await self.downstream(self.start)
        await self.downstream({"type": "http.response.body", "body": body, "more_body": False})
