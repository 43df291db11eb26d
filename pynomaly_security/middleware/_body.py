"""Read a request body with a bound, and replay it to the app.

Like ``_CachedRequest.wrapped_receive`` in Starlette's ``middleware/base.py``:
the app receives the buffered body once, as a single ``http.request`` with
``more_body: False``, and every later ``receive()`` goes to the server so the
app still sees ``http.disconnect``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import Enum

from starlette.types import Message, Receive, Scope

__all__ = ["BodyOutcome", "BufferedBody", "content_length", "read_body", "replay_receive"]


class BodyOutcome(Enum):
    COMPLETE = "complete"
    TOO_LARGE = "too_large"
    DISCONNECTED = "disconnected"
    TIMED_OUT = "timed_out"


@dataclass(slots=True)
class BufferedBody:
    outcome: BodyOutcome
    body: bytes


def content_length(scope: Scope) -> int | None:
    """The declared ``Content-Length``, or ``None`` when absent or unparsable."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def read_body(receive: Receive, limit: int, timeout: float | None = None) -> BufferedBody:
    """Buffer ``http.request`` messages until ``more_body`` is false.

    Stops early, without reading the rest, when the body passes ``limit``
    bytes (chunked bodies have no length to check up front), the client
    disconnects, or the whole body has not arrived within ``timeout`` seconds
    (a slow client would otherwise hold the request, and its buffer, forever).
    """
    chunks: list[bytes] = []
    try:
        async with asyncio.timeout(timeout):
            return await _read(receive, limit, chunks)
    except TimeoutError:
        return BufferedBody(BodyOutcome.TIMED_OUT, b"")


async def _read(receive: Receive, limit: int, chunks: list[bytes]) -> BufferedBody:
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return BufferedBody(BodyOutcome.DISCONNECTED, b"")
        if message["type"] != "http.request":
            continue
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                return BufferedBody(BodyOutcome.TOO_LARGE, b"")
            chunks.append(chunk)
        if not message.get("more_body", False):
            return BufferedBody(BodyOutcome.COMPLETE, b"".join(chunks))


def replay_receive(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields ``body`` once, then delegates to ``receive``."""
    sent = False

    async def wrapped() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return wrapped
