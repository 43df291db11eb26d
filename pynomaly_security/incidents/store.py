"""Where incidents are kept: documents in the stack's state, changed by compare-and-set.

The ``incidents`` collection of the state (``StorageRegistry.state()``: memory,
SQLite, Redis, PostgreSQL; ``STATE_URL``, else the stack's store), indexed by
status, severity and dedup digest, like the monitor's alerts (``monitor/alerts.py``).

Every change is read, applied in Python and written back only if the document's
``rev`` token is still the one read (``DocumentCollection.update(only_if=...)``),
retried a few times: two admins (or workers) changing one incident at once both
land, in some order, or the loser gets :class:`IncidentConflict`. A new incident is
``DocumentCollection.add`` (insert if absent), so two workers creating one id
make one document.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import Callable
from typing import Any

from pynomaly_security.exceptions import StorageError
from pynomaly_security.incidents.model import Incident, IncidentSeverity, IncidentStatus
from pynomaly_security.storage.base import DocumentStore

__all__ = ["MAX_INCIDENTS", "IncidentConflict", "IncidentNotFound", "IncidentStore"]

MAX_INCIDENTS = 10_000
"""Incidents kept; beyond, the oldest created go first (their audit records stay)."""
_ATTEMPTS = 16


class IncidentNotFound(LookupError):
    """No incident has this id (the API answers 404)."""


class IncidentConflict(StorageError):
    """An incident kept changing under a writer (its retries ran out): try again."""


def new_rev() -> str:
    return secrets.token_hex(8)


class IncidentStore:
    """Incidents on a :class:`~pynomaly_security.storage.base.DocumentStore`.

    Args:
        state: the stack's state (or any store with documents).
        keep: most incidents kept, oldest dropped first.
    """

    def __init__(self, state: DocumentStore, *, keep: int = MAX_INCIDENTS) -> None:
        self._docs = state.documents(
            "incidents", indexed=("status", "severity", "dedup"), keep=keep
        )

    async def get(self, incident_id: str) -> Incident | None:
        found = await self._docs.get(incident_id)
        return Incident.from_dict(found) if found is not None else None

    async def add(self, incident: Incident) -> bool:
        """Store a new incident; False (nothing written) if its id exists."""
        incident.rev = new_rev()
        return await self._docs.add(incident.incident_id, incident.to_dict())

    async def latest_for(self, dedup: str) -> Incident | None:
        """The newest incident of a dedup digest (the others are older generations)."""
        found = await self._docs.find({"dedup": dedup}, limit=1)
        return Incident.from_dict(found[0]) if found else None

    async def list(
        self,
        *,
        status: IncidentStatus | None = None,
        severity: IncidentSeverity | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Incident]:
        """Newest first; ``offset`` skips that many matches (both bounded by the caller)."""
        where: dict[str, Any] = {}
        if status is not None:
            where["status"] = status.value
        if severity is not None:
            where["severity"] = severity.value
        found = await self._docs.find(where, limit=offset + limit)
        return [Incident.from_dict(d) for d in found[offset:]]

    async def count(self, group_by: str = "status") -> dict[str, int]:
        """Incidents per status (or severity)."""
        counts = await self._docs.count(group_by=group_by)
        return {str(k): v for k, v in counts.items()}

    async def change(self, incident_id: str, apply: Callable[[Incident], None]) -> Incident:
        """Apply ``apply`` to the stored incident and write it back atomically.

        ``apply`` may raise (an invalid transition) and is re-run on a fresh read
        when another writer got there first.

        Raises:
            IncidentNotFound: no such incident.
            IncidentConflict: other writers kept winning.
        """
        for attempt in range(_ATTEMPTS):
            if attempt:
                # Writers that lost together would read and collide together again:
                # a random pause, growing with the losses, spreads them out (ten
                # workers recording one repeating pattern at once exhausted the
                # attempts without it on a loaded machine).
                await asyncio.sleep(random.random() * min(0.05, 0.001 * 2**attempt))  # noqa: S311  # jitter, not a secret
            incident = await self.get(incident_id)
            if incident is None:
                raise IncidentNotFound(incident_id)
            read = incident.rev
            apply(incident)
            incident.rev = new_rev()
            after = await self._docs.update(incident_id, incident.to_dict(), only_if={"rev": read})
            if after is None:
                raise IncidentNotFound(incident_id)
            if after.get("rev") == incident.rev:
                return Incident.from_dict(after)
        raise IncidentConflict(f"incident {incident_id} changed concurrently; try again")
