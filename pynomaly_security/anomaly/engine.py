"""The live side of behavioural detection: learn, detect, prevent (issue 22, item 3).

The request path (:class:`~pynomaly_security.middleware.anomaly.AnomalyMiddleware`,
installed only when ``ANOMALY_MODE`` is not ``off``) extracts a request's features
and hands them to :meth:`AnomalyEngine.observe` with its status: a bounded queue,
no store, no model. The monitor's background task calls :meth:`AnomalyEngine.process`
(a batch job of the monitor) and works through the queue in micro-batches:

``learn``
    requests answered below 400 are counted into the profile, and the counts are
    added every ``flush_seconds`` to the shared backend's tallies (``STATE_URL``,
    else ``REDIS_URL``; ``TallyStore.add_tallies``: additions, so workers never
    overwrite each other), then the merged profile is read back. A restart reads
    it at start-up: nothing learned is forgotten, and memory stays within the
    profile's bounds whatever the traffic.
``detect``
    each batch is scored (profile, plus the Isolation Forest of the model file);
    a request scoring at or below ``ANOMALY_ALERT_SCORE`` raises a
    ``behavioural_anomaly`` alert with its score and the features that drove it,
    once per endpoint and client per minute across workers.
``prevent``
    as detect, and the request path scores each request inline with the profile
    alone (about 10 us, ``bench/anomaly.py``) and refuses it 403
    ``anomalous_request`` at or below ``ANOMALY_BLOCK_SCORE``, once its endpoint
    has ``ANOMALY_MIN_REQUESTS`` learned requests (below that the profile has not
    earned the confidence to block).

A model file (``ANOMALY_MODEL_PATH``, written by ``anomaly train``) is loaded only
from that path and checked (:func:`~pynomaly_security.anomaly.model.load`); the
profile learned live adds to its counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pynomaly_security._log import get_logger
from pynomaly_security.anomaly.features import RequestFeatures, extract, secret_names
from pynomaly_security.anomaly.model import AnomalyModel, Assessment, assess_profile, load
from pynomaly_security.anomaly.principals import PrincipalWindows
from pynomaly_security.anomaly.profile import Profile, ProfileBounds
from pynomaly_security.exceptions import ConfigurationError, StorageError
from pynomaly_security.logsafe import safe_text
from pynomaly_security.monitor.events import SecurityAlert, ThreatLevel

if TYPE_CHECKING:
    from pynomaly_security.monitor.monitor import SecurityMonitor
    from pynomaly_security.settings import AnomalySection, SecuritySettings
    from pynomaly_security.storage.base import KeyValueStore, TallyStore

__all__ = ["ALERT_TYPE", "MODES", "TALLY_NAME", "AnomalyEngine", "Observation"]

log = get_logger(__name__)

MODES = ("off", "learn", "detect", "prevent")
TALLY_NAME = "anomaly:profile"
ALERT_TYPE = "behavioural_anomaly"
RECENT = 200
"""Latest assessments kept for the read API (``/api/security/anomaly``)."""
_SALT_PREFIX = "salt|"


@dataclass(frozen=True, slots=True)
class Observation:
    """One request as the request path saw it (features, never values)."""

    features: RequestFeatures
    status: int
    path: str
    user_id: str | None
    ip: str | None
    request_id: str | None
    at: float
    inline: Assessment | None = None


class AnomalyEngine:
    """Behavioural profiles and scores for one worker (module docstring).

    Args:
        section: the ``ANOMALY_*`` settings.
        tallies: where learned counts are shared (the monitor's state).
        store: the cool-downs of alerts (shared with the other detectors).
        monitor: raises the alerts; runs :meth:`process` in its task.
        secret_fields: credential field names (no value digest is kept for them).
        max_principals: bound of the per-principal windows.
    """

    def __init__(
        self,
        section: AnomalySection,
        *,
        tallies: TallyStore,
        store: KeyValueStore,
        monitor: SecurityMonitor,
        secret_fields: frozenset[str] = frozenset(),
        max_principals: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from pynomaly_security.monitor.detectors import _Cooldown

        self.section = section
        self.mode = section.mode
        self._tallies = tallies
        self._monitor = monitor
        self._clock = clock
        self._secrets = secret_names(secret_fields)
        self._cooldown = _Cooldown(store, "behavioural", 60.0)
        self._bounds = ProfileBounds(endpoints=section.max_endpoints)
        self.model: AnomalyModel | None = None
        self._base: dict[str, int] = {}
        if section.model_path:
            self.model = load(Path(section.model_path), bounds=self._bounds)
            self._base = self.model.profile.to_tallies()
        self.salt = self.model.salt if self.model is not None else b""
        self.profile = Profile(self._bounds, min_requests=section.min_requests)
        if self.model is not None:
            self.profile = Profile.from_tallies(
                self._base, self._bounds, min_requests=section.min_requests
            )
        self._queue: deque[Observation] = deque(maxlen=section.queue_size)
        self._delta: Counter[str] = Counter()
        self._flushed_at = clock()
        self.principals = PrincipalWindows(max_principals=max_principals)
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT)
        self.counts: Counter[str] = Counter()
        self._routes = tuple(section.routes)
        self._exclude = tuple(section.exclude)
        self._ready = False
        self._processing = asyncio.Lock()
        self._flushing = asyncio.Lock()
        self._writing: asyncio.Future[None] | None = None

    @classmethod
    def from_settings(
        cls,
        settings: SecuritySettings,
        *,
        tallies: TallyStore,
        store: KeyValueStore,
        monitor: SecurityMonitor,
    ) -> AnomalyEngine:
        if not settings.enable_security_monitoring:
            raise ConfigurationError(
                "PYNOMALY_SECURITY__ANOMALY_MODE needs the monitor "
                "(PYNOMALY_SECURITY__ENABLE_SECURITY_MONITORING): it scores in its task"
            )
        return cls(
            settings.anomaly,
            tallies=tallies,
            store=store,
            monitor=monitor,
            secret_fields=frozenset(settings.credential_fields),
            max_principals=settings.max_tracked_keys,
        )

    # -- the request path ---------------------------------------------------------------
    def now(self) -> float:
        return self._clock()

    def wants(self, path: str) -> bool:
        """Whether this path is observed: opted in (``ANOMALY_ROUTES``, every path when
        empty) and not excluded (``ANOMALY_EXCLUDE``); prefixes."""
        if self._exclude and path.startswith(self._exclude):
            return False
        return not self._routes or path.startswith(self._routes)

    def features(
        self,
        method: str,
        path: str,
        query: str,
        body: str,
        content_type: str,
        header_names: list[str],
    ) -> RequestFeatures:
        return extract(
            method,
            path,
            query,
            body,
            content_type,
            header_names,
            salt=self.salt,
            secret_fields=self._secrets,
        )

    def verdict(self, features: RequestFeatures) -> Assessment | None:
        """Prevent mode, inline: the profile's assessment when the request should be
        refused (its endpoint learned enough, its score at or below the block score)."""
        ep = self.profile.endpoints.get(features.endpoint)
        known = ep is not None and ep.n >= self.section.min_requests
        if not known and self.profile.n < self.section.min_requests * 10:
            return None  # an unknown endpoint is judged once the site is well learned
        assessment = assess_profile(self.profile, features)
        return assessment if assessment.score <= self.section.block_score else None

    def observe(self, observation: Observation) -> None:
        """Queue a served (or refused) request for the batch job; never blocks (the
        oldest queued request is dropped when the queue is full, and counted)."""
        if len(self._queue) == self._queue.maxlen:
            self.counts["dropped"] += 1
        self._queue.append(observation)

    # -- the monitor's task -----------------------------------------------------------------
    async def start(self) -> None:
        """Read what the workers learned so far (and the value-digest salt)."""
        if self._ready:
            return
        self._ready = True
        try:
            await self._refresh()
        except StorageError as exc:
            log.warning("anomaly_store_failed", what="profile", error=safe_text(str(exc)))

    async def process(self) -> None:
        """Work through the queue in micro-batches; share learned counts when due.
        One at a time: the monitor's task and its ``stop()`` may both call it."""
        async with self._processing:
            await self._process()

    async def _process(self) -> None:
        if not self._ready:
            await self.start()
        size = self.section.batch_size
        while self._queue:
            batch = [self._queue.popleft() for _ in range(min(size, len(self._queue)))]
            if self.mode == "learn":
                for obs in batch:
                    if obs.status < 400:
                        self.profile.learn(obs.features, self._delta)
                    self._principal(obs, None)
                self.counts["learned"] += len(batch)
            else:
                await self._detect(batch)
        if self._clock() - self._flushed_at >= self.section.flush_seconds:
            await self.flush()  # also reads what the other workers added

    async def flush(self) -> None:
        """Add this worker's learned counts to the shared tallies, then read them back.

        The addition runs shielded: cancelled (the monitor stopping), it still lands
        once, and the next flush (the stack's, at shutdown) waits for it first."""
        async with self._flushing:
            if self._writing is not None:
                with contextlib.suppress(StorageError):
                    await self._writing
                self._writing = None
            delta, self._delta = self._delta, Counter()
            try:
                if delta:
                    self._writing = asyncio.ensure_future(
                        self._tallies.add_tallies(TALLY_NAME, delta)
                    )
                    await asyncio.shield(self._writing)
                    self._writing = None
                await self._refresh()
            except StorageError as exc:  # kept for the next flush
                if self._writing is not None:
                    self._writing = None
                    self._delta.update(delta)
                log.warning("anomaly_store_failed", what="profile", error=safe_text(str(exc)))
            self._flushed_at = self._clock()

    async def _refresh(self) -> None:
        shared = await self._tallies.tallies(TALLY_NAME)
        if self.model is None:
            salts = sorted(k for k in shared if k.startswith(_SALT_PREFIX))
            if not salts:  # the first worker to start (or the first to reach the store)
                import secrets

                await self._tallies.add_tallies(
                    TALLY_NAME, {_SALT_PREFIX + secrets.token_hex(16): 1}
                )
                shared = await self._tallies.tallies(TALLY_NAME)
                salts = sorted(k for k in shared if k.startswith(_SALT_PREFIX))
            if salts:  # the smallest: every worker settles on the same one
                self.salt = bytes.fromhex(salts[0][len(_SALT_PREFIX) :])
        merged = Counter(self._base)
        merged.update({k: v for k, v in shared.items() if not k.startswith(_SALT_PREFIX)})
        self.profile = Profile.from_tallies(
            merged, self._bounds, min_requests=self.section.min_requests
        )

    async def _detect(self, batch: list[Observation]) -> None:
        model = self.model
        if model is not None:
            model.profile = self.profile
            assessments = model.assess([o.features for o in batch])
        else:
            assessments = [assess_profile(self.profile, o.features) for o in batch]
        self.counts["scored"] += len(batch)
        for obs, a in zip(batch, assessments, strict=True):
            if obs.inline is not None:  # refused inline: that verdict stands
                a = obs.inline
            window = self._principal(obs, a)
            alerted = a.score <= self.section.alert_score
            self.recent.appendleft(
                {
                    "at": obs.at,
                    "request_id": obs.request_id,
                    "method": obs.features.method,
                    "endpoint": safe_text(obs.features.endpoint),
                    "status": obs.status,
                    "user_id": obs.user_id,
                    **a.to_dict(),
                    "alert": alerted,
                    "blocked": obs.inline is not None,
                }
            )
            if alerted:
                await self._alert(obs, a, window)

    def _principal(self, obs: Observation, a: Assessment | None) -> dict[str, Any] | None:
        who = obs.user_id or (f"ip:{obs.ip}" if obs.ip else None)
        if who is None:
            return None
        return self.principals.observe(
            who,
            endpoint=obs.features.endpoint,
            status=obs.status,
            ip=obs.ip,
            at=obs.at,
            score=a.score if a is not None else None,
            explanation=a.explanation() if a is not None else None,
        )

    async def _alert(self, obs: Observation, a: Assessment, window: dict[str, Any] | None) -> None:
        if not await self._cooldown.ready(obs.features.endpoint, obs.ip or ""):
            return
        self.counts["alerts"] += 1
        level = ThreatLevel.HIGH if a.score <= 20 else ThreatLevel.MEDIUM
        blocked = obs.inline is not None
        await self._monitor.raise_alert(
            SecurityAlert(
                alert_type=ALERT_TYPE,
                threat_level=level,
                message=(
                    f"request unlike its endpoint's traffic (score {a.score}"
                    + (", blocked)" if blocked else ")")
                ),
                source_ip=obs.ip,
                user_id=obs.user_id,
                details={
                    "score": a.score,
                    "surprisal": round(a.surprisal, 2),
                    "explanation": a.explanation(),
                    "endpoint": obs.features.endpoint,
                    "method": obs.features.method,
                    "status": obs.status,
                    "request_id": obs.request_id,
                    "mode": self.mode,
                    "blocked": blocked,
                    "principal": window,
                },
                timestamp=obs.at,
            )
        )

    # -- reading ----------------------------------------------------------------------------
    def behaviour(self, user_id: str) -> dict[str, Any] | None:
        """A known user's recent behaviour: window features and lowest request score."""
        return self.principals.behaviour(user_id, self._clock())

    def status(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "model": None
            if self.model is None
            else {
                "path": self.section.model_path,
                "forest": self.model.forest is not None,
            },
            "profile": self.profile.summary(),
            "queued": len(self._queue),
            "counts": dict(self.counts),
            "alert_score": self.section.alert_score,
            "block_score": self.section.block_score,
            "principals": len(self.principals),
        }

    def latest(self, limit: int = 50, *, alerts_only: bool = False) -> list[dict[str, Any]]:
        rows = [r for r in self.recent if r["alert"] or not alerts_only]
        return rows[:limit]
