"""Account lockout with django-axes semantics, in the shared store.

* Failures are counted per *lock key*: the user name, the client IP, or the
  pair (``lockout_by``). ``max_attempts`` failures within ``window`` seconds
  lock the key; while locked every attempt is refused with 429 (even with the
  right password, so a lock cannot be probed).
* Locks are progressive: each lock of the same key within a day doubles the
  lock time, up to ``max_lock_seconds``.
* A success resets the failure count of its key (not the progression).
* Credential stuffing is watched independently of the lock key: one IP
  failing for many user names, or one user name failing from many IPs, raises
  its own alert once per window.

Unknown user names are counted like real ones, so lockouts do not reveal which
accounts exist. References: django-axes (``AXES_FAILURE_LIMIT``,
``AXES_COOLOFF_TIME``, ``AXES_LOCKOUT_PARAMETERS``, ``AXES_RESET_ON_SUCCESS``);
OWASP Authentication Cheat Sheet ("Account Lockout"); OWASP Credential
Stuffing Prevention Cheat Sheet.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import structlog

from pynomaly_security.auth.users import normalize_username
from pynomaly_security.exceptions import ConfigurationError, StorageError
from pynomaly_security.monitor.events import SecurityAlert, ThreatLevel
from pynomaly_security.storage.base import FailurePolicy, Store, failure_policy

if TYPE_CHECKING:
    from pynomaly_security.settings import SecuritySettings

__all__ = ["LOCKOUT_REPORTED", "AlertSink", "LockRecord", "LockoutManager", "LockoutStatus"]

log = structlog.get_logger(__name__)

AlertSink = Callable[[SecurityAlert], Awaitable[None]]
LockoutBy = Literal["user", "ip", "user_and_ip"]

# The same alert type as the monitor's BruteForceDetector: one name per threat,
# whichever component saw it (the audit trail maps it to brute_force_detected).
ACCOUNT_LOCKED = "brute_force"
CREDENTIAL_STUFFING = "credential_stuffing"
LOCKOUT_STORE_FAILED = "lockout_store_failed"
LOCKOUT_REPORTED = "lockout_reported"
"""``RequestContext.extra`` flag: this login was already reported to the lockout."""
_STRIKE_MEMORY = 86_400  # how long a past lock makes the next one longer


@dataclass(frozen=True, slots=True)
class LockoutStatus:
    locked: bool
    retry_after: int = 0
    failures: int = 0
    unavailable: bool = False
    """The store is down and lockout fails closed: refuse with 503."""


@dataclass(frozen=True, slots=True)
class LockRecord:
    """One current lock, as the admin endpoint lists it."""

    key: str
    username: str | None
    ip: str | None
    failures: int
    locked_at: float
    locked_until: float
    lock_number: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LockoutManager:
    """Count authentication failures and lock keys that exceed the limit.

    Args:
        store: shared counters and lock records.
        by: ``user``, ``ip`` or ``user_and_ip`` (django-axes' lockout parameters).
        max_attempts: failures within ``window`` that lock.
        window: seconds the failures are counted over.
        lock_seconds: first lock duration; doubled per repeat when ``progressive``.
        max_lock_seconds: longest lock.
        stuffing_threshold: distinct user names per IP (or IPs per user name)
            failing within ``window`` that raise a credential-stuffing alert.
        alert_sink: awaited with each alert (e.g. ``SecurityMonitor.raise_alert``).
        clock: seconds since the epoch.
        failure_policy: ``fail_closed`` refuses logins while the store is down.
    """

    def __init__(
        self,
        store: Store,
        *,
        by: LockoutBy = "user_and_ip",
        max_attempts: int = 5,
        window: int = 300,
        lock_seconds: int = 900,
        progressive: bool = True,
        max_lock_seconds: int = 86_400,
        stuffing_threshold: int = 10,
        alert_sink: AlertSink | None = None,
        clock: Callable[[], float] = time.time,
        failure_policy: FailurePolicy = "fail_closed",
    ) -> None:
        if by not in ("user", "ip", "user_and_ip"):
            raise ConfigurationError(f"lockout_by must be user, ip or user_and_ip, got {by!r}")
        if max_attempts < 1 or window < 1 or lock_seconds < 1 or stuffing_threshold < 2:
            raise ConfigurationError(
                "need max_attempts >= 1, window >= 1, lock_seconds >= 1, stuffing_threshold >= 2"
            )
        if max_lock_seconds < lock_seconds:
            raise ConfigurationError("max_lock_seconds must be >= lock_seconds")
        self._store = store
        self.by: LockoutBy = by
        self.max_attempts = max_attempts
        self.window = window
        self._lock_seconds = lock_seconds
        self._progressive = progressive
        self._max_lock = max_lock_seconds
        self._stuffing = stuffing_threshold
        self._alert = alert_sink
        self._clock = clock
        self._policy = failure_policy

    @classmethod
    def from_settings(
        cls, settings: SecuritySettings, store: Store, **kwargs: Any
    ) -> LockoutManager:
        return cls(
            store,
            by=settings.lockout_by,
            max_attempts=settings.brute_force_max_attempts,
            window=settings.brute_force_time_window,
            lock_seconds=settings.lockout_duration,
            progressive=settings.lockout_progressive,
            max_lock_seconds=settings.lockout_max_duration,
            stuffing_threshold=settings.credential_stuffing_threshold,
            failure_policy=failure_policy(settings.store_failure_policy, "lockout"),
            **kwargs,
        )

    def lock_key(self, username: str | None, ip: str | None) -> str:
        """The key a failure counts against: a digest, safe in URLs and logs."""
        user = normalize_username(username) if username else "-"
        address = ip or "-"
        material = {"user": f"u:{user}", "ip": f"i:{address}"}.get(self.by, f"u:{user}|i:{address}")
        return hashlib.sha256(material.encode()).hexdigest()[:24]

    def _unavailable(self, exc: StorageError) -> LockoutStatus:
        log.warning(LOCKOUT_STORE_FAILED, policy=self._policy, error=str(exc))
        return LockoutStatus(
            locked=self._policy == "fail_closed", unavailable=self._policy == "fail_closed"
        )

    async def check(self, username: str | None, ip: str | None) -> LockoutStatus:
        """Whether attempts for this user/IP are currently refused."""
        key = self.lock_key(username, ip)
        try:
            raw = await self._store.get(f"lock:rec:{key}")
            failures = await self._store.get_count(f"lock:fail:{key}")
        except StorageError as exc:
            return self._unavailable(exc)
        if raw is not None:
            until = float(json.loads(raw)["locked_until"])
            remaining = until - self._clock()
            if remaining > 0:
                return LockoutStatus(True, max(1, math.ceil(remaining)), failures)
        return LockoutStatus(False, 0, failures)

    async def report_auth_failure(self, username: str | None, ip: str | None) -> LockoutStatus:
        """Count a failed attempt; lock when it reaches the limit; watch for stuffing."""
        key = self.lock_key(username, ip)
        user = normalize_username(username) if username else None
        try:
            failures = await self._store.incr(f"lock:fail:{key}", self.window)
            await self._watch_stuffing(user, ip)
            if failures < self.max_attempts:
                return LockoutStatus(False, 0, failures)
            existing = await self._store.get(f"lock:rec:{key}")
            if existing is not None and float(json.loads(existing)["locked_until"]) > self._clock():
                until = float(json.loads(existing)["locked_until"])
                return LockoutStatus(True, max(1, math.ceil(until - self._clock())), failures)
            record = await self._lock(key, user, ip, failures)
        except StorageError as exc:
            return self._unavailable(exc)
        await self._raise(
            SecurityAlert(
                alert_type=ACCOUNT_LOCKED,
                threat_level=ThreatLevel.HIGH,
                message=f"{failures} failed sign-ins: locked for "
                f"{int(record.locked_until - record.locked_at)} s",
                source_ip=ip,
                user_id=user,
                details={"lock_key": key, "lock_number": record.lock_number, "by": self.by},
            )
        )
        return LockoutStatus(True, math.ceil(record.locked_until - record.locked_at), failures)

    async def _lock(self, key: str, user: str | None, ip: str | None, failures: int) -> LockRecord:
        strikes = await self._store.incr(f"lock:strikes:{key}", _STRIKE_MEMORY)
        factor = 2 ** (strikes - 1) if self._progressive else 1
        duration = min(self._max_lock, self._lock_seconds * factor)
        now = self._clock()
        record = LockRecord(
            key=key,
            username=user if self.by != "ip" else None,
            ip=ip if self.by != "user" else None,
            failures=failures,
            locked_at=now,
            locked_until=now + duration,
            lock_number=strikes,
        )
        await self._store.put(f"lock:rec:{key}", json.dumps(record.to_dict()), duration)
        # The count restarts after the lock: the next lock needs max_attempts again.
        await self._store.delete(f"lock:fail:{key}")
        log.warning("account_locked", lock_key=key, duration=duration, lock_number=strikes)
        return record

    async def _watch_stuffing(self, user: str | None, ip: str | None) -> None:
        if ip is not None and user is not None:
            users = await self._store.add_member(f"lock:users_by_ip:{ip}", user, self.window)
            if users >= self._stuffing:
                await self._stuffing_alert("ip", ip, users, source_ip=ip)
            ips = await self._store.add_member(f"lock:ips_by_user:{user}", ip, self.window)
            if ips >= self._stuffing:
                await self._stuffing_alert("user", user, ips, user_id=user)

    async def _stuffing_alert(
        self,
        kind: str,
        subject: str,
        count: int,
        *,
        source_ip: str | None = None,
        user_id: str | None = None,
    ) -> None:
        # One alert per subject per window, whatever the number of workers.
        if not await self._store.add(f"lock:stuffing_alerted:{kind}:{subject}", "1", self.window):
            return
        message = (
            f"one IP failed sign-in for {count} user names"
            if kind == "ip"
            else f"one user name failed sign-in from {count} IPs"
        )
        log.warning(CREDENTIAL_STUFFING, kind=kind, count=count)
        await self._raise(
            SecurityAlert(
                alert_type=CREDENTIAL_STUFFING,
                threat_level=ThreatLevel.HIGH,
                message=message,
                source_ip=source_ip,
                user_id=user_id,
                details={
                    "pattern": f"one_{kind}_many_{'users' if kind == 'ip' else 'ips'}",
                    "distinct": count,
                    "window": self.window,
                },
            )
        )

    async def _raise(self, alert: SecurityAlert) -> None:
        if self._alert is None:
            return
        try:
            await self._alert(alert)
        except Exception:  # an alert sink failure must never break sign-in
            log.exception("lockout_alert_sink_failed", alert_type=alert.alert_type)

    async def report_auth_success(self, username: str | None, ip: str | None) -> None:
        """Reset the failure count of this key (django-axes ``AXES_RESET_ON_SUCCESS``)."""
        try:
            await self._store.delete(f"lock:fail:{self.lock_key(username, ip)}")
        except StorageError as exc:
            log.warning(LOCKOUT_STORE_FAILED, policy=self._policy, error=str(exc))

    async def list_lockouts(self, limit: int = 1000) -> list[LockRecord]:
        """Current locks, newest first."""
        now = self._clock()
        records = [
            LockRecord(**json.loads(value))
            for _, value in await self._store.scan("lock:rec:", limit)
        ]
        return sorted((r for r in records if r.locked_until > now), key=lambda r: -r.locked_at)

    async def unlock(self, key: str) -> bool:
        """Lift the lock of ``key`` and forget its failures and progression."""
        existed = await self._store.delete(f"lock:rec:{key}")
        await self._store.delete(f"lock:fail:{key}")
        await self._store.delete(f"lock:strikes:{key}")
        if existed:
            log.info("account_unlocked", lock_key=key)
        return existed
