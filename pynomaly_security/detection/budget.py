"""The CPU budget of one request's inspection (``InspectionLimits.budget_ms``).

Every step of inspection that can grow with the request (parsing, normalizing,
scanning) counts its work in units, roughly characters, through
:meth:`Budget.spend`; every :data:`BUDGET_CHECK_UNITS` units the thread's CPU
clock is read, and past the budget the request is refused 413
``inspection_budget_exceeded``. CPU time, not wall time: a request is not
refused because other processes ran.

The one way a verdict depends on the process's state: CPU time is not the same
for the same request twice. RE2 builds its DFA states lazily, as values meet
them, so the first requests after start-up (or after a level change, which
compiles new rule sets) run a cold DFA, many times the CPU of a warm one, and a
request with very long values can then exceed the budget where warm it stays far
below (the developer corpora's longest browsing rows, inspected first in a fresh
process: up to 34 ms of CPU cold, under 2 ms warm, against the default 50 ms; on
a slower run two of them exceeded it cold). Such a request is refused 413
``inspection_budget_exceeded`` like any other past the budget, and audited as a
``request_refused``: it fails closed, never passes uninspected. Nothing else
carries over between requests (memos hold only what the same value would give
again; ``tests/detection/test_state.py``).

A small request never reads the clock: a budget made with ``started=False``
starts timing at its first check, so the first :data:`BUDGET_CHECK_UNITS`
units (far below the budget) are free of system calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pynomaly_security.detection.types import InspectionRefused

__all__ = ["BUDGET_CHECK_UNITS", "Budget"]

BUDGET_CHECK_UNITS = 8192
"""Work units between two reads of the CPU clock: ``time.thread_time`` is a system
call (~2 µs), so it is not read per value."""


class Budget:
    """The CPU time one request's inspection may take.

    Args:
        budget_ms: CPU milliseconds.
        clock: the CPU clock in seconds (``time.thread_time``; tests inject one).
        started: time from now; ``False``: from the first check.
    """

    __slots__ = ("_clock", "_deadline", "_limit", "_units")

    def __init__(
        self,
        budget_ms: float,
        *,
        clock: Callable[[], float] = time.thread_time,
        started: bool = True,
    ) -> None:
        self._clock = clock
        self._limit = budget_ms / 1000
        self._deadline: float | None = clock() + self._limit if started else None
        self._units = 0

    def spend(self, units: int) -> None:
        """Count ``units`` of work; raises :class:`InspectionRefused` past the budget."""
        self._units += units
        if self._units >= BUDGET_CHECK_UNITS:
            self._units = 0
            now = self._clock()
            if self._deadline is None:
                self._deadline = now + self._limit
            elif now > self._deadline:
                raise InspectionRefused(413, "inspection_budget_exceeded")
