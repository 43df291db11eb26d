"""Live settings: the few settings safe to change while the app serves.

:data:`LIVE_FIELDS` is the allow-list (detection level and mode, the monitor's
thresholds, the global rate limits, the header policy); every other
setting is read once at start-up and a change is refused naming the field
(:class:`NotLiveError`). A change is validated by :class:`SecuritySettings`
itself (the model the start-up settings went through, not a second schema) and
stored as one versioned document in the stack's store, so every worker sharing
that store (Redis) sees it: each worker reads the document's version every
:data:`POLL_SECONDS` from a background task of the lifespan, and applies a new
version by calling the appliers the composition root subscribed (the inspector,
the rate limiter, the lockout and detectors, the header policy); nothing on the
request path reads the store. With a store of one process (memory) a change is
applied where it is made and no task runs.

The document holds only the overrides (fields changed live), never whole
settings: a field nobody changed keeps each worker's start-up value, and a
``null`` in a change (JSON merge patch, RFC 7396) drops the override. Versions
increase by one per change; a change names the version it was made against and
loses to any other change made since (:class:`VersionConflict`), decided by the
store's compare-and-set.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from pydantic import ValidationError

from pynomaly_security._poller import StorePoller
from pynomaly_security.exceptions import ConfigurationError, SecurityError
from pynomaly_security.settings import SecuritySettings
from pynomaly_security.storage.base import DocumentStore, KeyValueStore, missing_capability

__all__ = [
    "LIVE_FIELDS",
    "POLL_SECONDS",
    "InvalidLiveValue",
    "LiveSettings",
    "LiveVersion",
    "NotLiveError",
    "VersionConflict",
]

log = structlog.get_logger(__name__)

LIVE_FIELDS: Mapping[str, str] = {
    "detection_level": "the inspection layer's rules and blocking threshold",
    "detection_mode": "the inspection layer: block or only report",
    "detection_mode_overrides": "the inspection layer's mode per attack family",
    "brute_force_max_attempts": "failed sign-ins that lock (the brute-force alert)",
    "credential_stuffing_threshold": "distinct names per IP (or IPs per name) that alert",
    "account_max_attempts": "failed sign-ins per account from any address",
    "anomaly_min_history": "a user's requests before a new IP raises anomalous_access",
    "anomaly_hour_min_history": "a user's requests before a new hour raises anomalous_access",
    "rate_limits": "the global rate limits",
    "route_rate_limits": "the rate limits per route",
    "rate_limit_exempt_paths": "paths the global rate limits skip",
    "csp_enabled": "the Content-Security-Policy header",
    "hsts_enabled": "the Strict-Transport-Security header (never in development mode)",
    "hsts_max_age": "its max-age",
}
"""Setting -> what a live change of it changes. Nothing else changes live: secrets and
keys (a key ring is derived once), stores and URLs (connections are opened at start-up),
the hosts, proxies and limits that fence every request (a mistake there is a hole in
every worker at once), and which layers are installed at all."""

POLL_SECONDS = 0.5
"""How often a worker sharing the store reads the version: a change reaches every
worker within about this (plus one store round trip)."""

_COLLECTION = "live_settings"
_DOC_ID = "current"
_CREATED = "live_settings:created"
# Long enough for the claimant to write version 1; a claimant that died in between
# blocks the first change for no longer than this.
_CREATED_TTL = 60.0

Applier = Callable[[SecuritySettings], None]


class NotLiveError(SecurityError):
    """A change names settings that are not live (or do not exist)."""

    def __init__(self, fields: Mapping[str, str]) -> None:
        super().__init__("not changeable live: " + ", ".join(sorted(fields)))
        self.fields = dict(fields)
        """Field -> why it cannot change live."""


class InvalidLiveValue(SecurityError):
    """A change that :class:`SecuritySettings` refuses; ``errors`` name field and reason."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("invalid live settings")
        self.errors = errors


class VersionConflict(SecurityError):
    """The change was made against a version that is no longer the current one."""

    def __init__(self, expected: int, current: int) -> None:
        super().__init__(f"version {expected} is not current ({current})")
        self.expected = expected
        self.current = current


@dataclass(frozen=True)
class LiveVersion:
    """One version of the live settings: the settings in effect and what made them."""

    version: int
    settings: SecuritySettings
    overrides: Mapping[str, Any] = field(default_factory=dict)
    """Field -> value (JSON) changed live; the rest are start-up values."""
    changed_at: float | None = None
    changed_by: str | None = None

    def values(self) -> dict[str, Any]:
        """Every live field's value in effect (JSON)."""
        return self.settings.model_dump(mode="json", include=set(LIVE_FIELDS))


def _refusal(name: str) -> str:
    if name not in SecuritySettings.model_fields:
        return "unknown setting"
    return "set at start-up only (not in the live allow-list)"


class LiveSettings:
    """The live settings of one stack, shared through its store.

    Args:
        settings: the start-up settings; live overrides apply on top of them.
        store: the stack's store (``documents`` and ``add``: memory or Redis).
        poll_seconds: how often a worker sharing the store reads the version.
    """

    def __init__(
        self,
        settings: SecuritySettings,
        store: object,
        *,
        poll_seconds: float = POLL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(store, DocumentStore):
            raise missing_capability(store, DocumentStore, "live settings")
        if not isinstance(store, KeyValueStore):
            raise missing_capability(store, KeyValueStore, "live settings")
        if poll_seconds <= 0:
            raise ConfigurationError(f"poll_seconds must be > 0, got {poll_seconds}")
        self._base = settings
        self._kv: KeyValueStore = store
        self._docs = store.documents(_COLLECTION, indexed=("version",), keep=1)
        self._clock = clock
        self._appliers: list[Applier] = []
        self._poller = StorePoller(
            self.refresh,
            interval=poll_seconds,
            shared=bool(getattr(store, "shared", False)),
            name="live_settings",
            memory_hint="a change applies to the worker that answered it only; "
            "set PYNOMALY_SECURITY__REDIS_URL",
        )
        self.current = LiveVersion(0, settings)

    # -- who reads the live values ------------------------------------------------------
    def subscribe(self, applier: Applier) -> None:
        """Call ``applier`` with the settings of every new version (and now, when a
        version other than the start-up one is already in effect)."""
        self._appliers.append(applier)
        if self.current.version:
            applier(self.current.settings)

    def _apply(self, version: LiveVersion) -> None:
        self.current = version
        for applier in self._appliers:
            try:
                applier(version.settings)
            except Exception as exc:  # one component's failure must not stop the others
                log.error("live_settings_apply_failed", version=version.version, error=repr(exc))
        log.info("live_settings_applied", version=version.version, fields=sorted(version.overrides))

    # -- validation -------------------------------------------------------------------
    def validate(self, overrides: Mapping[str, Any]) -> SecuritySettings:
        """The start-up settings with ``overrides``, validated by :class:`SecuritySettings`.

        Raises:
            NotLiveError: a field is not in :data:`LIVE_FIELDS`.
            InvalidLiveValue: the model refuses a value.
        """
        refused = {name: _refusal(name) for name in overrides if name not in LIVE_FIELDS}
        if refused:
            raise NotLiveError(refused)
        try:
            return SecuritySettings.model_validate({**self._base.model_dump(), **overrides})
        except ValidationError as exc:
            errors = [
                {"field": ".".join(map(str, e["loc"])), "message": e["msg"]}
                for e in exc.errors(include_url=False, include_input=False)
            ]
            raise InvalidLiveValue(errors) from None

    def _version_of(self, document: Mapping[str, Any]) -> LiveVersion:
        overrides = dict(document.get("overrides") or {})
        return LiveVersion(
            version=int(document["version"]),
            settings=self.validate(overrides),
            overrides=overrides,
            changed_at=document.get("changed_at"),
            changed_by=document.get("changed_by"),
        )

    # -- changes ----------------------------------------------------------------------
    async def update(
        self, changes: Mapping[str, Any], *, expected_version: int, actor: str | None
    ) -> tuple[LiveVersion, dict[str, dict[str, Any]]]:
        """Apply a JSON merge patch of live fields (``None`` drops an override) made
        against ``expected_version``; the new version and, per field whose value
        changed, ``{"old": ..., "new": ...}``.

        Raises:
            NotLiveError, InvalidLiveValue: the change is refused as a whole.
            VersionConflict: another change was made since ``expected_version``.
            StorageError: the store failed (nothing changed, or the change is
                seen by the next read).
        """
        await self.refresh()  # against the store's version, not only this worker's
        current = self.current
        if expected_version != current.version:
            raise VersionConflict(expected_version, current.version)
        refused = {name: _refusal(name) for name in changes if name not in LIVE_FIELDS}
        if refused:
            raise NotLiveError(refused)
        overrides = {k: v for k, v in current.overrides.items() if k not in changes}
        overrides.update({k: v for k, v in changes.items() if v is not None})
        settings = self.validate(overrides)
        # Stored normalized (a comma-separated limit becomes its list), as the model reads it.
        normalized = settings.model_dump(mode="json", include=set(overrides))
        old, new = current.values(), settings.model_dump(mode="json", include=set(LIVE_FIELDS))
        diff = {k: {"old": old[k], "new": new[k]} for k in sorted(new) if new[k] != old[k]}
        revision, changed_at = uuid.uuid4().hex, self._clock()
        document = {
            "version": current.version + 1,
            "overrides": normalized,
            "revision": revision,
            "changed_at": changed_at,
            "changed_by": actor,
        }
        if current.version == 0:
            # put() is not conditional: one claim key decides who writes version 1.
            if not await self._kv.add(_CREATED, revision, _CREATED_TTL):
                await self.refresh()
                raise VersionConflict(expected_version, self.current.version)
            await self._docs.put(_DOC_ID, document)
        else:
            stored = await self._docs.update(
                _DOC_ID, document, only_if={"version": current.version}
            )
            if stored is None or stored.get("revision") != revision:
                await self.refresh()
                raise VersionConflict(expected_version, self.current.version)
        version = LiveVersion(current.version + 1, settings, normalized, changed_at, actor)
        self._apply(version)
        return version, diff

    async def refresh(self) -> bool:
        """Read the store's version and apply it when it is new; True if applied.

        A stored version this worker's model refuses (written by a newer release,
        say) is logged and skipped: the worker keeps the last version it could apply.
        """
        document = await self._docs.get(_DOC_ID)
        if document is None or document.get("version") == self.current.version:
            return False
        try:
            version = self._version_of(document)
        except (NotLiveError, InvalidLiveValue, KeyError, TypeError, ValueError) as exc:
            log.error("live_settings_refused", version=document.get("version"), error=str(exc))
            return False
        self._apply(version)
        return True

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        """Apply the stored version before serving; with a shared store, start the
        task that applies later versions (idempotent)."""
        await self._poller.start()

    async def aclose(self) -> None:
        await self._poller.aclose()
