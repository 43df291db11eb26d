"""One method for sync and async callers, without ever blocking an event loop.

The integration guide calls the monitor, the orchestrator and data protection
synchronously (``summary = monitor.get_security_summary()``); our core is async
and its state may live in Redis. A method answers each caller with what that
caller's thread can have without blocking an event loop, from one implementation:

* awaited (``await monitor.get_security_summary()``): the coroutine's answer,
  read from the store;
* called from a thread with no running loop (a script, a sync FastAPI endpoint
  in the thread pool): the same coroutine run to completion on the component's
  loop (the one it was started on, or a private one in a daemon thread when it
  never was), the caller's thread waiting at most ``timeout`` seconds;
* called without ``await`` inside a running loop: a getter returns the
  component's snapshot (see the component for its staleness), an action starts
  as a task (:class:`AwaitableBool`) or, when it cannot start safely unawaited,
  is :class:`Deferred` and refuses to be read until awaited.

Getter results are plain values (:class:`AwaitableDict`, :class:`AwaitableList`:
a ``dict``/``list`` with ``__await__``), so ``summary["active_alerts_count"]``
and ``await`` both work on the same call. The coroutine is made only when
awaited: an unawaited result leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable, Mapping
from typing import Any, Generic, NoReturn, TypeVar

from pynomaly_security._background import BackgroundLoop
from pynomaly_security.exceptions import StorageError

__all__ = [
    "AwaitableBool",
    "AwaitableDict",
    "AwaitableList",
    "Deferred",
    "SyncPortal",
    "in_running_loop",
]

T = TypeVar("T")


def in_running_loop() -> bool:
    """Whether this thread runs an event loop (a sync wait here would block it)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _runs_here(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


class AwaitableDict(dict[str, Any]):
    """A plain ``dict`` now; awaiting it gives the fresh ``dict``."""

    __slots__ = ("_fresh",)

    def __init__(
        self, now: Mapping[str, Any], fresh: Callable[[], Awaitable[dict[str, Any]]]
    ) -> None:
        super().__init__(now)
        self._fresh = fresh

    def __await__(self) -> Generator[Any, None, dict[str, Any]]:
        return self._fresh().__await__()


class AwaitableList(list[T]):
    """A plain ``list`` now; awaiting it gives the fresh ``list``."""

    __slots__ = ("_fresh",)

    def __init__(self, now: Iterable[T], fresh: Callable[[], Awaitable[list[T]]]) -> None:
        super().__init__(now)
        self._fresh = fresh

    def __await__(self) -> Generator[Any, None, list[T]]:
        return self._fresh().__await__()


class AwaitableBool:
    """An action's answer: ``bool()`` is what is known now (the task's result once
    done, else the caller's best knowledge); awaiting it waits for the action."""

    __slots__ = ("_now", "_task")

    def __init__(self, now: bool, task: asyncio.Task[bool] | None = None) -> None:
        self._now = now
        self._task = task

    def __bool__(self) -> bool:
        task = self._task
        if task is not None and task.done() and not task.cancelled() and not task.exception():
            return task.result()
        return self._now

    def __await__(self) -> Generator[Any, None, bool]:
        if self._task is None:
            return _value(self._now).__await__()
        return self._task.__await__()

    def __eq__(self, other: object) -> bool:
        return bool(self) == other if isinstance(other, bool | AwaitableBool) else NotImplemented

    def __hash__(self) -> int:
        return hash(bool(self))

    def __repr__(self) -> str:
        return f"AwaitableBool({bool(self)})"


async def _value(value: T) -> T:
    return value


class Deferred(Generic[T]):
    """An action called without ``await`` inside a running loop: nothing has run;
    awaiting it runs it. Reading it unawaited is an error that says so, rather
    than a silent no-op or a blocked loop."""

    __slots__ = ("_factory", "_name")

    def __init__(self, name: str, factory: Callable[[], Coroutine[Any, Any, T]]) -> None:
        self._name = name
        self._factory = factory

    def __await__(self) -> Generator[Any, None, T]:
        return self._factory().__await__()

    def _refuse(self, *_: object) -> NoReturn:
        raise RuntimeError(
            f"{self._name}() was called inside a running event loop without await: "
            f"nothing was done; use 'await {self._name}(...)' there"
        )

    __getitem__ = _refuse
    __getattr__ = _refuse
    __bool__ = _refuse
    __iter__ = _refuse

    def __repr__(self) -> str:
        return f"<Deferred {self._name}(): await it>"


class SyncPortal:
    """Runs a component's coroutines for callers outside any event loop.

    The component's I/O (a Redis connection, an aiosqlite thread) belongs to one
    loop: the one that started it (:meth:`adopt`), else a private loop in a daemon
    thread made on first use and stopped when the portal is collected or closed.

    Args:
        timeout: seconds a sync caller waits; past it, :class:`StorageError`
            (never a hang).
    """

    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._own: BackgroundLoop | None = None
        self._lock = threading.Lock()
        self._finalizer: weakref.finalize[Any, Any] | None = None

    def adopt(self) -> None:
        """Remember the running loop as the component's (called from its async start)."""
        self._loop = asyncio.get_running_loop()

    def run(self, factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """``factory()`` run to completion for a thread without a running loop."""
        if in_running_loop():  # the caller's own loop would wait on itself
            raise RuntimeError("SyncPortal.run() inside a running event loop")
        loop = self._loop
        if loop is None or loop.is_closed() or not loop.is_running():
            loop = self._own_loop()
        future = asyncio.run_coroutine_threadsafe(factory(), loop)
        try:
            return future.result(self.timeout)
        except TimeoutError:
            future.cancel()
            raise StorageError(f"no answer within {self.timeout} s") from None

    def call(self, fn: Callable[..., object], *args: object) -> None:
        """Call a loop-bound sync function (``monitor.submit``: an asyncio queue is
        not thread-safe) in the component's loop when that loop runs in another
        thread; at once otherwise."""
        loop = self._loop
        if loop is not None and loop.is_running() and not _runs_here(loop):
            loop.call_soon_threadsafe(fn, *args)
        else:
            fn(*args)

    def _own_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._own is None or self._own.loop.is_closed():
                self._own = BackgroundLoop("pynomaly-security-sync")
                # Stops the loop when the portal is collected; the finalizer holds
                # the BackgroundLoop, never the portal.
                self._finalizer = weakref.finalize(self, self._own.stop)
            self._loop = self._own.loop
            return self._own.loop

    def close(self) -> None:
        """Stop the private loop, if one was made."""
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None
        if self._own is not None and self._loop is self._own.loop:
            self._loop = None
        self._own = None
