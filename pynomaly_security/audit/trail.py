"""AuditTrail: the read side (query, verify, retention), usable without a writer.

:class:`~pynomaly_security.audit.AuditLogger` extends it with writing; the
CLI's ``audit export`` uses it alone, so reading never starts a writer task.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pynomaly_security.audit.anchor import load_anchor_file
from pynomaly_security.audit.chain import Sealer
from pynomaly_security.audit.reader import AuditReader
from pynomaly_security.audit.records import ComplianceStandard
from pynomaly_security.audit.sealing import AuditKeys
from pynomaly_security.audit.stores import AuditStore, Checkpoint
from pynomaly_security.audit.tenants import scoped_subject
from pynomaly_security.audit.verify import Expectations, VerifyResult, verify_store
from pynomaly_security.tenancy.context import current_tenant

__all__ = ["AuditTrail"]

_DAY = 86_400.0


class AuditTrail:
    """Args:
    store: where records live (opened and closed by the caller or AuditLogger).
    keys: the key ring, to decrypt records and pin checkpoint keys.
    checkpoint_every / checkpoint_seconds: when to anchor a checkpoint (used by writers).
    retention_days: prune whole checkpointed segments older than this.
    clock: wall clock (seconds), injectable for tests.
    """

    def __init__(
        self,
        store: AuditStore,
        keys: AuditKeys,
        *,
        checkpoint_every: int = 1000,
        checkpoint_seconds: float = 60.0,
        retention_days: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.keys = keys
        self._sealer = Sealer(
            keys,
            checkpoint_every=checkpoint_every,
            checkpoint_seconds=checkpoint_seconds,
            clock=clock,
        )
        self._reader = AuditReader(store, self._sealer)
        self._checkpoint_seconds = checkpoint_seconds
        self._retention_s = None if retention_days is None else retention_days * _DAY
        self._clock = clock
        self.last_verification: tuple[float, VerifyResult] | None = None
        """When this process last verified the trail, and the result (the health
        endpoint shows it; the CLI's runs are another process's)."""
        self.anchor_file: Path | None = None
        """The file anchor (set by AuditLogger); :meth:`verify` checks against it."""

    async def query(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        user_id: str | None = None,
        event_type: str | None = None,
        standard: ComplianceStandard | str | None = None,
        limit: int = 100,
        offset: int = 0,
        tenant: str | None = None,
    ) -> list[dict[str, Any]]:
        """Decrypted entries, oldest first (times are Unix seconds); an access batch
        counts as one entry per request it holds. ``tenant``: only that tenant's."""
        return await self._reader.query(
            since=since,
            until=until,
            subject_refs=self._refs_of(user_id),
            event_type=event_type,
            standard=None if standard is None else ComplianceStandard(standard).value,
            limit=limit,
            offset=offset,
            tenant=tenant,
        )

    async def records_at(self, seqs: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The decrypted records at these sequence numbers (an incident's timeline),
        by number; what is missing (pruned, deleted) is absent."""
        return await self._reader.records_at(seqs)

    def iter_entries(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        user_id: str | None = None,
        event_type: str | None = None,
        standard: ComplianceStandard | str | None = None,
        tenant: str | None = None,
    ) -> AsyncGenerator[dict[str, Any]]:
        """Every matching entry as :meth:`query` returns them, streamed (no paging)."""
        return self._reader.iter_entries(
            since=since,
            until=until,
            subject_refs=self._refs_of(user_id),
            event_type=event_type,
            standard=None if standard is None else ComplianceStandard(standard).value,
            tenant=tenant,
        )

    def _refs_of(self, user_id: str | None) -> tuple[str, ...] | None:
        """The refs of a user (of the running tenant: ``audit/tenants.py``)."""
        if user_id is None:
            return None
        return tuple(self.keys.subject_refs(scoped_subject(current_tenant(), user_id)))

    async def verify(
        self,
        public_keys: Mapping[str, bytes] | None = None,
        anchors: Sequence[Checkpoint] = (),
        *,
        min_records: int | None = None,
        tenant: str | None = None,
    ) -> VerifyResult:
        """Walk the chain and checkpoints (pinned to our own public keys by default),
        against ``anchors`` and this trail's own anchor file, and check pruning
        against the retention period; with ``tenant``, also that tenant's records
        are all there (``audit/tenants.py``).

        With an ephemeral development key, earlier runs signed with keys we no
        longer hold, so the keys published in the store are used (not pinned).
        """
        pinned = public_keys
        if pinned is None and not self.keys.ephemeral:
            pinned = self.keys.public_keys
        held = list(anchors)
        given = bool(anchors)
        if self.anchor_file is not None and self.anchor_file.exists():
            held += load_anchor_file(self.anchor_file)
            given = True
        expect = Expectations(
            anchors=held,
            anchor_given=given,
            min_records=min_records,
            retention_days=None if self._retention_s is None else self._retention_s / _DAY,
            now=self._clock(),
            tenant=tenant,
        )
        result = await verify_store(self.store, public_keys=pinned, keys=self.keys, expect=expect)
        self.last_verification = (self._clock(), result)
        return result

    async def prune_expired(self) -> int:
        """Apply the retention now (writers also do it periodically); returns rows pruned."""
        if self._retention_s is None:
            return 0
        return await self._reader.prune_before(self._clock() - self._retention_s)

    def public_key_pem(self) -> bytes:
        """The current checkpoint public key (PEM), for pinning in the verifier."""
        return self.keys.public_key_pem()
