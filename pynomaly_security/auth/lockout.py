"""Account lockout with django-axes semantics, in the shared store.

* Failures are counted per *lock key*: the user name, the client IP, or the
  pair (``lockout_by``). ``max_attempts`` failures within ``window`` seconds
  lock the key; while locked every attempt is refused with 429 (even with the
  right password, so a lock cannot be probed).
* Locks are progressive: each lock of the same key within a day doubles the
  lock time, up to ``max_lock_seconds``.
* A success resets the failure count of its key (not the progression).
* Credential stuffing is watched independently of the lock key: one IP
  failing for many user names, or one user name failing from many IPs, is
  reported once per window.
* What the lockout sees is reported as a ``LOCKOUT`` :class:`SecurityEvent`
  (``details["reason"]``: ``brute_force`` for a lock, ``credential_stuffing``,
  ``distributed_guessing``) to its ``event_sink`` (the monitor's ``submit``),
  each once across workers (set-if-absent keys in the store); the monitor's
  brute-force detector turns it into the alert. Failures are counted here only.
* Attempts are *reserved* before the password is checked (:meth:`reserve`):
  one atomic increment in the shared store per key, refused when it passes the
  limit, so however many guesses arrive at once, on however many workers, at
  most ``max_attempts`` of them are checked (issue 12, item 9). Checking first
  and counting after the answer let 50 concurrent guesses through. The
  reservation is then settled (:meth:`settle`): a failure keeps it (it is the
  failure), a success resets the key, anything else (the password was never
  checked, or was right but a second factor is needed) gives it back.
* Each account also has a limit across all addresses (``account_max_attempts``
  failures within ``account_window``), so a new source address does not buy
  new guesses; reaching it raises a ``distributed_guessing`` alert. A success
  does not reset it (the owner signing in must not hand an attacker a fresh
  budget). Trade-off: whoever spends an account's budget keeps its owner out
  until the window ends (the price of a cap on distributed guessing; OWASP
  Authentication Cheat Sheet, "Account Lockout").

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
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pynomaly_security._log import get_logger
from pynomaly_security.auth.users import normalize_username
from pynomaly_security.exceptions import ConfigurationError, StorageError
from pynomaly_security.logsafe import safe_text
from pynomaly_security.monitor.events import (
    ACCOUNT_LOCKED,
    CREDENTIAL_STUFFING,
    DISTRIBUTED_GUESSING,
    EventKind,
    SecurityAlert,
    SecurityEvent,
)
from pynomaly_security.storage.base import FailurePolicy, Store, failure_policy
from pynomaly_security.tenancy.context import current_overrides, narrowed

if TYPE_CHECKING:
    from pynomaly_security.settings import SecuritySettings

__all__ = [
    "ACCOUNT_LOCKED",
    "CREDENTIAL_STUFFING",
    "DISTRIBUTED_GUESSING",
    "LOCKOUT_REPORTED",
    "AlertSink",
    "EventSink",
    "LockRecord",
    "LockoutManager",
    "LockoutStatus",
    "Outcome",
    "Reservation",
]

log = get_logger(__name__)

# The authenticator awaits its own alerts (high-risk sign-ins, session changes)
# with an AlertSink; the lockout reports through an EventSink (the monitor's submit).
AlertSink = Callable[[SecurityAlert], Awaitable[None]]
EventSink = Callable[[SecurityEvent], object]
LockoutBy = Literal["user", "ip", "user_and_ip"]
Outcome = Literal["failure", "success", "void"]

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


@dataclass(slots=True)
class Reservation:
    """Attempts held in the store for one login, until :meth:`LockoutManager.settle`.

    ``status.locked`` means the attempt was refused and nothing is held.
    """

    names: tuple[str | None, ...]
    ip: str | None
    status: LockoutStatus
    keys: tuple[tuple[str | None, str], ...] = ()
    """(user name, lock key) of each attempt held under a lock key."""
    accounts: tuple[tuple[str, str], ...] = ()
    """(user name, account key) of each attempt held under an account."""
    settled: bool = field(default=False)

    def covers(self, username: str | None) -> bool:
        """Whether this reservation holds an attempt for ``username``."""
        name = normalize_username(username) if username else None
        return name in self.names


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
            failing within ``window`` that are reported as credential stuffing.
        event_sink: called with each ``LOCKOUT`` event (e.g. ``SecurityMonitor.submit``:
            synchronous, never blocks).
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
        account_max_attempts: int = 20,
        account_window: int = 900,
        event_sink: EventSink | None = None,
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
        if account_max_attempts < 1 or account_window < 1:
            raise ConfigurationError("need account_max_attempts >= 1 and account_window >= 1")
        self._store = store
        self.by: LockoutBy = by
        self.max_attempts = max_attempts
        self.window = window
        self._lock_seconds = lock_seconds
        self._progressive = progressive
        self._max_lock = max_lock_seconds
        self._stuffing = stuffing_threshold
        self.account_max_attempts = account_max_attempts
        self.account_window = account_window
        self._event = event_sink
        self._clock = clock
        self._policy = failure_policy

    def set_thresholds(
        self, *, max_attempts: int, stuffing_threshold: int, account_max_attempts: int
    ) -> None:
        """Change the thresholds while serving (a live settings change): the next
        failure is judged by them; counts already made are kept."""
        if max_attempts < 1 or stuffing_threshold < 2 or account_max_attempts < 1:
            raise ConfigurationError(
                "need max_attempts >= 1, stuffing_threshold >= 2 and account_max_attempts >= 1"
            )
        self.max_attempts = max_attempts
        self._stuffing = stuffing_threshold
        self.account_max_attempts = account_max_attempts

    def _max_attempts(self) -> int:
        """Failures that lock, for the running request: a tenant's lower override
        (issue 21) or the global value."""
        tenant = current_overrides()
        if tenant is None:
            return self.max_attempts
        return narrowed(self.max_attempts, tenant.brute_force_max_attempts)

    def _account_max_attempts(self) -> int:
        tenant = current_overrides()
        if tenant is None:
            return self.account_max_attempts
        return narrowed(self.account_max_attempts, tenant.account_max_attempts)

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
            account_max_attempts=settings.account_max_attempts,
            account_window=settings.account_lockout_window,
            failure_policy=failure_policy(settings.store_failure_policy, "lockout"),
            **kwargs,
        )

    def lock_key(self, username: str | None, ip: str | None) -> str:
        """The key a failure counts against: a digest, safe in URLs and logs."""
        user = normalize_username(username) if username else "-"
        address = ip or "-"
        material = {"user": f"u:{user}", "ip": f"i:{address}"}.get(self.by, f"u:{user}|i:{address}")
        return hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()[:24]

    @property
    def store(self) -> Store:
        return self._store

    @staticmethod
    def account_key(username: str) -> str:
        """The per-account counter's key part: a digest of the normalized name."""
        name = normalize_username(username).encode("utf-8", "surrogatepass")  # never raises
        return hashlib.sha256(name).hexdigest()[:24]

    async def reserve(self, usernames: Iterable[str | None], ip: str | None) -> Reservation:
        """Hold one attempt for each of ``usernames`` (normalized, at most 4) from ``ip``,
        atomically in the store, before the password is checked; refused
        (``status.locked``) when a key is locked or its attempts are all taken."""
        names: list[str | None] = []
        for username in usernames:
            name = normalize_username(username) if username else None
            if name not in names:
                names.append(name)
        if not names:
            names.append(None)
        names = names[:4]
        keys: list[tuple[str | None, str]] = []
        accounts: list[tuple[str, str]] = []
        held = Reservation(tuple(names), ip, LockoutStatus(False))
        try:
            refusal: LockoutStatus | None = None
            for name in names:
                key = self.lock_key(name, ip)
                # With lockout_by=ip every name shares the address's key: count it once.
                if all(k != key for _, k in keys):
                    count = await self._store.incr(f"lock:fail:{key}", self.window)
                    keys.append((name, key))
                    if count > self._max_attempts():
                        # Every attempt is taken by guesses still being checked (a
                        # confirmed Nth failure becomes a lock record instead).
                        refusal = LockoutStatus(True, 1, count - 1)
                        break
                if name is not None:
                    account = self.account_key(name)
                    used = await self._store.incr(f"lock:acct:{account}", self.account_window)
                    accounts.append((name, account))
                    if used > self._account_max_attempts():
                        refusal = LockoutStatus(True, self.account_window, used - 1)
                        break
            if refusal is None:
                # Read the lock records after counting: _lock() writes the record
                # before it clears the count, so an attempt counted on a cleared
                # count sees the record here.
                now = self._clock()
                for raw in await self._store.get_many([f"lock:rec:{k}" for _, k in keys]):
                    if raw is not None:
                        remaining = float(json.loads(raw)["locked_until"]) - now
                        if remaining > 0:
                            refusal = LockoutStatus(True, max(1, math.ceil(remaining)))
                            break
        except StorageError as exc:
            held.keys, held.accounts = tuple(keys), tuple(accounts)
            await self._give_back(held)
            held.status, held.settled = self._unavailable(exc), True
            return held
        held.keys, held.accounts = tuple(keys), tuple(accounts)
        if refusal is not None:
            await self._give_back(held)
            held.status, held.settled = refusal, True
            return held
        failures = await self._count_or_zero(keys[0][1])
        held.status = LockoutStatus(False, 0, max(0, failures - 1))
        return held

    async def _count_or_zero(self, key: str) -> int:
        try:
            return await self._store.get_count(f"lock:fail:{key}")
        except StorageError:
            return 0

    async def _give_back(self, held: Reservation) -> None:
        """Release every attempt ``held`` holds (best effort: the store may be down)."""
        pairs = [(f"lock:fail:{k}", self.window) for _, k in held.keys]
        pairs += [(f"lock:acct:{a}", self.account_window) for _, a in held.accounts]
        for key, ttl in pairs:
            try:
                if await self._store.incr(key, ttl, -1) < 0:
                    # The counter expired while the attempt was held: undo the -1.
                    await self._store.incr(key, ttl, 1)
            except StorageError as exc:
                self._store_failed(exc)
                return

    async def settle(self, held: Reservation, outcome: Outcome) -> LockoutStatus:
        """End a reservation: ``failure`` keeps the attempt (and may lock),
        ``success`` resets the keys' failures and gives the account attempt back,
        ``void`` gives everything back. Settling twice does nothing."""
        if held.settled:
            return held.status
        held.settled = True
        if outcome == "void":
            await self._give_back(held)
            return LockoutStatus(False)
        if outcome == "success":
            for _, key in held.keys:
                try:
                    await self._store.delete(f"lock:fail:{key}")
                except StorageError as exc:
                    self._store_failed(exc)
            await self._give_back(Reservation(held.names, held.ip, held.status, (), held.accounts))
            return LockoutStatus(False)
        status = LockoutStatus(False)
        for name, key in held.keys:
            result = await self._failed(key, name, held.ip)
            if result.locked or result.unavailable:
                status = result
        for user, account in held.accounts:
            await self._account_failed(user, account, held.ip)
        return status

    async def _failed(self, key: str, user: str | None, ip: str | None) -> LockoutStatus:
        """A reserved attempt failed: it is already counted; lock at the limit."""
        try:
            failures = await self._store.get_count(f"lock:fail:{key}")
            await self._watch_stuffing(user, ip)
            if failures < self._max_attempts():
                return LockoutStatus(False, 0, failures)
            # One worker builds the lock (concurrent failures all see the limit).
            if not await self._store.add(f"lock:locking:{key}", "1", 5):
                return LockoutStatus(True, 1, failures)
            record = await self._lock(key, user, ip, failures)
        except StorageError as exc:
            return self._unavailable(exc)
        self._report_lock(record, key, user, ip, failures)
        return LockoutStatus(True, math.ceil(record.locked_until - record.locked_at), failures)

    async def _account_failed(self, user: str, account: str, ip: str | None) -> None:
        try:
            used = await self._store.get_count(f"lock:acct:{account}")
            if used < self._account_max_attempts():
                return
            if not await self._store.add(f"lock:acct_alerted:{account}", "1", self.account_window):
                return
            sources = await self._store.add_member(
                f"lock:ips_by_user:{user}", ip or "-", self.window
            )
        except StorageError as exc:
            self._store_failed(exc)
            return
        log.warning(DISTRIBUTED_GUESSING, username=safe_text(user), failures=used, sources=sources)
        self._report(
            DISTRIBUTED_GUESSING,
            ip,
            user,
            failures=used,
            distinct_ips=sources,
            window=self.account_window,
            account_key=account,
        )

    def _report_lock(
        self, record: LockRecord, key: str, user: str | None, ip: str | None, failures: int
    ) -> None:
        self._report(
            ACCOUNT_LOCKED,
            ip,
            user,
            failures=failures,
            duration=int(record.locked_until - record.locked_at),
            lock_key=key,
            lock_number=record.lock_number,
            by=self.by,
        )

    def _store_failed(self, exc: StorageError) -> None:
        log.warning(LOCKOUT_STORE_FAILED, policy=self._policy, error=safe_text(str(exc)))

    def _unavailable(self, exc: StorageError) -> LockoutStatus:
        self._store_failed(exc)
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
        """Count a failed attempt that was not reserved; lock when it reaches the
        limit; watch for stuffing. Prefer :meth:`reserve` + :meth:`settle`: counting
        after the check lets concurrent guesses past the limit."""
        key = self.lock_key(username, ip)
        user = normalize_username(username) if username else None
        try:
            failures = await self._store.incr(f"lock:fail:{key}", self.window)
            await self._watch_stuffing(user, ip)
            if failures < self._max_attempts():
                return LockoutStatus(False, 0, failures)
            existing = await self._store.get(f"lock:rec:{key}")
            if existing is not None and float(json.loads(existing)["locked_until"]) > self._clock():
                until = float(json.loads(existing)["locked_until"])
                return LockoutStatus(True, max(1, math.ceil(until - self._clock())), failures)
            record = await self._lock(key, user, ip, failures)
        except StorageError as exc:
            return self._unavailable(exc)
        self._report_lock(record, key, user, ip, failures)
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
        log.warning(
            "account_locked",
            lock_key=key,
            # The lock's user name (None when locking by address): attacker text, escaped.
            username=safe_text(record.username) if record.username is not None else None,
            duration=duration,
            lock_number=strikes,
        )
        return record

    async def _watch_stuffing(self, user: str | None, ip: str | None) -> None:
        if ip is not None and user is not None:
            users = await self._store.add_member(f"lock:users_by_ip:{ip}", user, self.window)
            if users >= self._stuffing:
                await self._report_stuffing("ip", ip, users, source_ip=ip)
            ips = await self._store.add_member(f"lock:ips_by_user:{user}", ip, self.window)
            if ips >= self._stuffing:
                await self._report_stuffing("user", user, ips, user_id=user)

    async def _report_stuffing(
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
        # The subject (a user name, or an address) is the attacker's text.
        log.warning(CREDENTIAL_STUFFING, kind=kind, subject=safe_text(subject), count=count)
        self._report(
            CREDENTIAL_STUFFING,
            source_ip,
            user_id,
            kind=kind,
            distinct=count,
            window=self.window,
        )

    def _report(self, reason: str, ip: str | None, user: str | None, **details: Any) -> None:
        """One LOCKOUT event for the monitor (its brute-force detector makes the alert)."""
        if self._event is None:
            return
        try:
            self._event(
                SecurityEvent(
                    kind=EventKind.LOCKOUT,
                    source_ip=ip,
                    user_id=user,
                    timestamp=self._clock(),
                    details={"reason": reason, **details},
                )
            )
        except Exception:  # an event sink failure must never break sign-in
            log.exception("lockout_event_sink_failed", reason=reason)

    async def report_auth_success(self, username: str | None, ip: str | None) -> None:
        """Reset the failure count of this key (django-axes ``AXES_RESET_ON_SUCCESS``)."""
        try:
            await self._store.delete(f"lock:fail:{self.lock_key(username, ip)}")
        except StorageError as exc:
            self._store_failed(exc)

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
