"""The example app as each uvicorn worker of the four-worker test serves it.

Settings come from the environment the test sets (one Redis, one master key, one
admin key for every worker). Every response carries the worker's process id in
``X-Test-Worker``, so the test knows which worker answered each request.
"""

from __future__ import annotations

import os

from starlette.types import Message, Receive, Scope, Send

from examples.app import create_app

_example = create_app()
_PID = str(os.getpid()).encode()


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        await _example(scope, receive, send)
        return

    async def tagged(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), (b"x-test-worker", _PID)]
        await send(message)

    await _example(scope, receive, tagged)
