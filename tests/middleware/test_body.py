"""Raw-ASGI tests of body buffering and replay (no HTTP client in between)."""

from __future__ import annotations

import pytest
from starlette.types import Message

from pynomaly_security.middleware._body import BodyOutcome, read_body, replay_receive


def _receiver(messages: list[Message]):  # type: ignore[no-untyped-def]
    queue = list(messages)

    async def receive() -> Message:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    return receive


@pytest.mark.anyio
async def test_chunked_body_is_joined_and_replayed_once_then_disconnect() -> None:
    """Chunks are joined; the app gets the whole body once, then the server's messages."""
    receive = _receiver(
        [
            {"type": "http.request", "body": b"ab", "more_body": True},
            {"type": "http.request", "body": b"cd", "more_body": False},
        ]
    )
    buffered = await read_body(receive, 10)
    assert buffered.outcome is BodyOutcome.COMPLETE and buffered.body == b"abcd"
    replay = replay_receive(buffered.body, receive)
    assert await replay() == {"type": "http.request", "body": b"abcd", "more_body": False}
    assert (await replay())["type"] == "http.disconnect"


@pytest.mark.anyio
async def test_body_over_limit_stops_reading() -> None:
    """A chunked body that passes the limit is reported without reading the rest."""
    receive = _receiver(
        [
            {"type": "http.request", "body": b"x" * 8, "more_body": True},
            {"type": "http.request", "body": b"x" * 8, "more_body": True},
            {"type": "http.request", "body": b"never read", "more_body": False},
        ]
    )
    buffered = await read_body(receive, 10)
    assert buffered.outcome is BodyOutcome.TOO_LARGE
    assert (await receive())["body"] == b"never read"


@pytest.mark.anyio
async def test_disconnect_mid_body() -> None:
    """A client that disconnects mid-body yields DISCONNECTED, not a partial body."""
    receive = _receiver([{"type": "http.request", "body": b"part", "more_body": True}])
    buffered = await read_body(receive, 100)
    assert buffered.outcome is BodyOutcome.DISCONNECTED and buffered.body == b""


@pytest.mark.anyio
async def test_a_body_that_never_completes_times_out() -> None:
    """A client that sends part of a body and then nothing is cut off after the
    timeout (tiny here) instead of holding the request forever."""
    import anyio

    sent = False

    async def stalling() -> Message:  # the outside world: a client that stops sending
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"part", "more_body": True}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    buffered = await read_body(stalling, 100, timeout=0.01)
    assert buffered.outcome is BodyOutcome.TIMED_OUT and buffered.body == b""
