"""AuditReceipt: what ``log_security_event`` and ``log_audit_event`` return (issue 14).

The integration guide calls the logger synchronously and never looks at the result;
our async users ``await`` it for the record's sequence number. One method serves both:
the call queues the record (or, outside any event loop, commits it) and returns this
receipt, which may be awaited (it resolves once the record is committed) or dropped
(the record is committed all the same; a failure is logged by the writer).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Generator
from typing import Any, TypeVar

from pynomaly_security.exceptions import StorageError

__all__ = ["AuditReceipt", "result_within"]

T = TypeVar("T")


class AuditReceipt:
    """The commit of one record: awaitable (gives its sequence number) or not.

    Args:
        future: the commit, on the logger's loop (an ``asyncio`` future) or seen from
            another thread (a ``concurrent.futures`` future).
    """

    __slots__ = ("_future",)

    def __init__(self, future: asyncio.Future[int] | concurrent.futures.Future[int]) -> None:
        self._future = future
        # Nobody may ever look at a dropped receipt: mark a failure retrieved, so it is
        # reported once (by the writer's log), not again as "never retrieved".
        future.add_done_callback(_retrieve)

    def __await__(self) -> Generator[Any, None, int]:
        future = self._future
        if isinstance(future, concurrent.futures.Future):
            return asyncio.wrap_future(future).__await__()
        return future.__await__()

    def done(self) -> bool:
        """Whether the commit finished (committed or failed)."""
        return self._future.done()

    @property
    def seq(self) -> int | None:
        """The record's sequence number once committed; ``None`` before or on failure."""
        future = self._future
        if not future.done() or future.cancelled() or future.exception() is not None:
            return None
        return future.result()

    def wait(self, timeout: float) -> int:
        """Block until committed (a thread without an event loop only); the sequence number.

        Raises:
            StorageError: the commit failed, or did not finish within ``timeout`` seconds.
        """
        future = self._future
        if not isinstance(future, concurrent.futures.Future):
            raise RuntimeError("wait() blocks: await the receipt on its event loop")
        return result_within(future, timeout)

    def __repr__(self) -> str:
        state = "pending" if not self.done() else f"seq={self.seq}"
        return f"AuditReceipt({state})"


def result_within(future: concurrent.futures.Future[T], timeout: float) -> T:
    """``future``'s result, waiting at most ``timeout`` seconds (a thread without an
    event loop only); past it :class:`StorageError`, never a hang."""
    try:
        return future.result(timeout)
    except concurrent.futures.TimeoutError:
        raise StorageError(f"the audit store did not answer within {timeout:g} s") from None


def _retrieve(future: asyncio.Future[int] | concurrent.futures.Future[int]) -> None:
    if not future.cancelled():
        future.exception()
