"""Run results and their history in the stack's state backend (``state()``: memory,
SQLite, Redis, PostgreSQL), so every worker reads the same status.

* ``compliance_runs`` documents: one per full run (its results with evidence, digest,
  audit head), newest first, at most ``keep_runs``;
* ``compliance_status`` document ``latest``: the newest run and its control statuses
  (what the next run compares with to find pass -> fail);
* ``compliance_history`` log: one stream per check of ``[time, status]``, appended
  when the status changes and at least every ``heartbeat`` seconds, so a report can
  tell whether a check held throughout a period ("was HSTS on throughout Q3?")
  without keeping every minute's run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pynomaly_security.storage.base import DocumentStore, LogStore

__all__ = ["ComplianceStore"]

_LATEST = "latest"


class ComplianceStore:
    def __init__(
        self,
        state: Any,
        *,
        keep_runs: int = 2000,
        history_entries: int = 20_000,
        max_checks: int = 1000,
        heartbeat: float = 3600.0,
    ) -> None:
        if not isinstance(state, DocumentStore) or not isinstance(state, LogStore):
            raise TypeError("the compliance store needs a state() backend (documents and logs)")
        self.state = state
        self._runs = state.documents("compliance_runs", indexed=("kind",), keep=keep_runs)
        self._status = state.documents("compliance_status", indexed=(), keep=4)
        self._history = state.log(
            "compliance_history", max_entries=history_entries, max_streams=max_checks
        )
        self._heartbeat = heartbeat
        self._last: dict[str, tuple[str, float]] = {}  # bounded by the catalogue's checks

    async def latest(self) -> dict[str, Any] | None:
        return await self._status.get(_LATEST)

    async def save_run(self, run: Mapping[str, Any]) -> None:
        """The newest run of any kind is ``latest``; full runs are also kept by id (the
        minute's cheap runs would push them out; they are in the audit trail all the same)."""
        if run.get("kind") == "full":
            await self._runs.put(str(run["run_id"]), run)
        await self._status.put(_LATEST, run)

    async def run(self, run_id: str) -> dict[str, Any] | None:
        return await self._runs.get(run_id)

    async def recent_runs(self, limit: int = 100) -> list[dict[str, Any]]:
        return await self._runs.find(None, limit=limit)

    async def record_history(self, statuses: Mapping[str, str], at: float) -> None:
        chunks: list[tuple[str, Sequence[Any]]] = []
        for check_id, status in statuses.items():
            last = self._last.get(check_id)
            if last is None:
                found = await self._history.read(check_id, limit=1)
                if found:
                    entry = found[0]
                    last = (str(entry[1]), float(entry[0]))
            if last is None or last[0] != status or at - last[1] >= self._heartbeat:
                chunks.append((check_id, [[at, status]]))
                self._last[check_id] = (status, at)
        if chunks:
            await self._history.append(chunks)

    async def history(self, check_id: str) -> list[tuple[float, str]]:
        """The check's ``(time, status)`` samples, oldest first."""
        entries = await self._history.read(check_id)
        return sorted((float(e[0]), str(e[1])) for e in entries)
