"""An event loop in a daemon thread: the one way the package runs its coroutines for
callers that have no loop (the integration guide's sync calls). A self-started
``AuditLogger()`` lives on one (every call reaches it thread-safely, so a caller on its
own loop never waits for the store and a caller without one waits only for its own
commit), and ``_dual.SyncPortal`` makes one for a component nothing started."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import weakref
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

from pynomaly_security._log import get_logger

__all__ = ["BackgroundLoop", "close_at_exit"]

log = get_logger(__name__)

CLOSE_FAILED = "audit_close_failed"

T = TypeVar("T")
_JOIN_SECONDS = 10.0


class BackgroundLoop:
    """Args:
    name: the thread's name (shown in thread dumps).
    """

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` on the loop; its result, seen from any thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self) -> None:
        """Stop the loop and wait (bounded) for its thread."""
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        if threading.current_thread() is not self._thread:
            self._thread.join(_JOIN_SECONDS)


class _Closable(Protocol):
    def close(self) -> None: ...


def close_at_exit(owner: _Closable) -> None:
    """Call ``owner.close()`` when the interpreter exits, before thread pools stop.

    ``atexit`` is too late: threading's shutdown hooks run first and stop every
    ``ThreadPoolExecutor`` (the SQLite store's thread among them), so a close from
    ``atexit`` could no longer commit. ``concurrent.futures`` registers its own hook
    the same way; ours, registered later, runs before it. A weak reference, so the
    hook keeps nothing alive.
    """
    register = getattr(threading, "_register_atexit", None)
    ref = weakref.ref(owner)
    if register is None:  # not CPython's threading: the standard hook, best effort
        import atexit

        atexit.register(_close_ref, ref)
    else:
        register(_close_ref, ref)


def _close_ref(ref: weakref.ref[_Closable]) -> None:
    owner = ref()
    if owner is not None:
        try:
            owner.close()
        except Exception as exc:  # exiting: say so, never raise from the hook
            log.error(CLOSE_FAILED, error=type(exc).__name__)
