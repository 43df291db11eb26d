"""``ZeroTrustAuthenticator``: every sign-in is checked, scored and recorded.

One sign-in goes: reserve the attempt in the lockout (atomic, before anything
is checked) -> password (Argon2 in the hasher's bounded thread pool; constant
time for unknown users) -> risk score -> second factor when enrolled or when
the risk asks for it -> tokens. The reservation is settled with the outcome: a
wrong password or second factor keeps it as a failure, a success resets the
key, anything else (right password but a code is needed, the hashing pool is
full) gives it back. Every outcome is logged with its reasons and handed to
the event sink (the monitor / audit trail).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

import structlog
from starlette.types import Scope

from pynomaly_security.auth.errors import (
    AccountLocked,
    AuthUnavailable,
    InvalidCredentials,
    MFARequired,
    RiskTooHigh,
    SignupRefused,
)
from pynomaly_security.auth.lockout import AlertSink, LockoutManager, Outcome, Reservation
from pynomaly_security.auth.passwords import PasswordHasher
from pynomaly_security.auth.risk import RiskAssessment, RiskEngine, RiskLevel, device_fingerprint
from pynomaly_security.auth.tokens import TokenPair, TokenService
from pynomaly_security.auth.totp import TOTPEnrollment, TOTPManager
from pynomaly_security.auth.usernames import UsernamePolicy
from pynomaly_security.auth.users import UserRecord, UserRepository
from pynomaly_security.exceptions import InvalidToken, StorageError
from pynomaly_security.monitor.events import EventKind, SecurityAlert, SecurityEvent, ThreatLevel
from pynomaly_security.storage.base import Store

if TYPE_CHECKING:
    from pynomaly_security.settings import SecuritySettings

__all__ = ["SIGN_IN_EVENT", "AuthResult", "EventSink", "ZeroTrustAuthenticator"]

log = structlog.get_logger(__name__)

EventSink = Callable[[SecurityEvent], object]
LOGIN_SUCCEEDED = "login_succeeded"
LOGIN_FAILED = "login_failed"
HIGH_RISK_LOGIN = "high_risk_login"
SIGN_IN_EVENT = "sign_in"
NAME_NOT_AVAILABLE = "username is not available"
# A skeleton claim lasts as long as an account may: ten years (the store's TTL is
# mandatory; the user repository stays the authority on what exists).
_SKELETON_CLAIM_SECONDS = 10 * 365 * 86_400


@dataclass(frozen=True, slots=True)
class AuthResult:
    user: UserRecord
    tokens: TokenPair
    risk: RiskAssessment
    used_recovery_code: bool = False
    details: dict[str, Any] = field(default_factory=dict)


class ZeroTrustAuthenticator:
    """Sign-up, sign-in with risk-based MFA, sessions and revocation.

    Args:
        users: user records (the host app's, or :class:`InMemoryUserRepository`).
        passwords, totp, tokens, lockouts, risk: the parts; see their modules.
        recovery_codes: how many recovery codes MFA confirmation hands out.
        event_sink: called with a :class:`SecurityEvent` per sign-in outcome.
        alert_sink: awaited with alerts (high-risk sign-ins; lockouts use their own).
        usernames: which names sign-up accepts (normalization, reserved names,
            confusables); default :class:`UsernamePolicy` with its reserved names.
    """

    def __init__(
        self,
        *,
        users: UserRepository,
        passwords: PasswordHasher,
        totp: TOTPManager,
        tokens: TokenService,
        lockouts: LockoutManager,
        risk: RiskEngine,
        recovery_codes: int = 10,
        event_sink: EventSink | None = None,
        alert_sink: AlertSink | None = None,
        usernames: UsernamePolicy | None = None,
    ) -> None:
        self.users = users
        self.usernames = usernames if usernames is not None else UsernamePolicy()
        self.passwords = passwords
        self.totp = totp
        self.tokens = tokens
        self.lockouts = lockouts
        self.risk = risk
        self._recovery_count = recovery_codes
        self._event_sink = event_sink
        self._alert_sink = alert_sink

    @classmethod
    def from_settings(
        cls, settings: SecuritySettings, store: Store, **kwargs: Any
    ) -> ZeroTrustAuthenticator:
        """Every part wired from the settings and one shared store; see
        :func:`pynomaly_security.auth.factory.authenticator_from_settings`."""
        from pynomaly_security.auth.factory import authenticator_from_settings

        return authenticator_from_settings(settings, store, **kwargs)

    # -- sign-up ---------------------------------------------------------------------
    async def signup(self, username: str, password: str) -> UserRecord:
        """Create a user, or raise :class:`SignupRefused`.

        The name is normalized (:class:`UsernamePolicy`); a malformed name or
        password is refused saying why (that reveals nothing about other
        accounts). A taken name, a reserved one and one confusable with an
        existing name get the same answer, after the same work (the password is
        hashed in every case), so sign-up does not tell which names exist beyond
        what creating a free one must. Each name's skeleton is claimed atomically
        in the shared store, so two confusable names signed up at once cannot
        both succeed.
        """
        name = self.usernames.normalize(username)
        problem = self.usernames.problem(name) or self.passwords.check_policy(password)
        if problem is not None:
            raise SignupRefused(problem)
        password_hash = await self.passwords.ahash(password)
        if self.usernames.is_reserved(name):
            raise SignupRefused(NAME_NOT_AVAILABLE)
        digest = hashlib.sha256(self.usernames.skeleton(name).encode()).hexdigest()[:32]
        claim = f"signup:skeleton:{digest}"
        store = self.lockouts.store
        try:
            # The claim holds the name: the same name again (another worker seeding
            # the same user, a retry) goes on to the repository, which says whether
            # it is taken; a different name with the same skeleton is a confusable.
            claimed = await store.add(claim, name, _SKELETON_CLAIM_SECONDS)
            if not claimed and name != await store.get(claim):
                raise SignupRefused(NAME_NOT_AVAILABLE)
            user = await self.users.create(name, password_hash)
            if user is None:
                if claimed and await self.users.get_by_username(name) is None:
                    await store.delete(claim)  # refused for another reason (capacity)
                raise SignupRefused(NAME_NOT_AVAILABLE)
        except StorageError as exc:
            raise AuthUnavailable("sign-up temporarily unavailable") from exc
        return user

    # -- sign-in ---------------------------------------------------------------------
    async def authenticate_user(
        self,
        username: str,
        password: str,
        source_ip: str | None,
        user_agent: str | None,
        *,
        totp_code: str | None = None,
        headers: Mapping[str, str] | None = None,
        device_cookie: str | None = None,
        reservation: Reservation | None = None,
    ) -> AuthResult:
        """Sign a user in, or raise why not.

        ``reservation``: the attempt the login guard already reserved for this
        user name and address (used, and settled here, when it covers
        ``username``; otherwise one is reserved here).

        Raises:
            AccountLocked: too many failures (429).
            InvalidCredentials: wrong user name, password or code (401).
            MFARequired: the password was right; send ``totp_code`` (401).
            RiskTooHigh: refused on risk; an alert was raised (403).
            AuthUnavailable: the store is down and the feature fails closed (503).
            HashingBusy: every hashing thread is busy (503 with Retry-After).
        """
        held = reservation
        if held is None or held.settled or not held.covers(username):
            held = await self.lockouts.reserve([username], source_ip)
        status = held.status
        if status.unavailable:
            raise AuthUnavailable("sign-in temporarily unavailable")
        if status.locked:
            self._event("failure", username, source_ip, reason="locked")
            raise AccountLocked(status.retry_after)
        outcome: Outcome = "void"
        try:
            result = await self._sign_in(
                username,
                password,
                source_ip,
                user_agent,
                totp_code,
                headers,
                device_cookie,
                status.failures,
            )
            outcome = "success"
            return result
        except InvalidCredentials:
            outcome = "failure"
            raise
        finally:
            settled = await self.lockouts.settle(held, outcome)
            if settled.unavailable:
                raise AuthUnavailable("sign-in temporarily unavailable")
            if reservation is not None and reservation is not held:
                # The caller's reservation named another user: its attempt is void.
                await self.lockouts.settle(reservation, "void")

    async def _sign_in(
        self,
        username: str,
        password: str,
        source_ip: str | None,
        user_agent: str | None,
        totp_code: str | None,
        headers: Mapping[str, str] | None,
        device_cookie: str | None,
        failures: int,
    ) -> AuthResult:
        user = await self.users.get_by_username(username)
        ok = await self.passwords.averify(user.password_hash if user else None, password)
        if user is None or not ok or user.disabled:
            self._fail(username, source_ip, "bad_password")
        fingerprint = device_fingerprint(
            {**(headers or {}), "user-agent": user_agent or ""}, device_cookie
        )
        risk = await self.risk.assess(user.user_id, source_ip, fingerprint, failures)
        log.info("login_risk_assessed", user_id=user.user_id, **risk.to_dict())
        if risk.level is RiskLevel.HIGH:
            await self._high_risk(user, source_ip, risk)
        factor: str | None = None
        amr: tuple[str, ...] = ("pwd",)
        if user.mfa_enabled:
            if not totp_code:
                raise MFARequired(risk.reasons)
            factor = await self._second_factor(user, totp_code)
            if factor is None:
                self._fail(username, source_ip, "bad_second_factor")
            amr = ("pwd", "otp")
        elif risk.level is RiskLevel.MEDIUM:
            # Step-up is impossible without an enrolled factor: let the user in,
            # but the reasons are logged and sent with the event for review.
            log.warning("login_mfa_step_up_unavailable", user_id=user.user_id, reasons=risk.reasons)
        await self.risk.remember(user.user_id, source_ip, fingerprint)
        if self.passwords.needs_rehash(user.password_hash):
            new_hash = await self.passwords.ahash(password)
            await self.users.update(user.but(password_hash=new_hash))
        tokens = self.tokens.issue(user.user_id, amr=amr)
        self._event(
            "success",
            user.username,
            source_ip,
            user_id=user.user_id,
            risk=risk.to_dict(),
            amr=list(amr),
        )
        log.info(LOGIN_SUCCEEDED, user_id=user.user_id, risk_level=risk.level.value)
        return AuthResult(user, tokens, risk, factor == "recovery")

    async def _second_factor(self, user: UserRecord, code: str) -> str | None:
        """``"totp"`` or ``"recovery"`` when accepted, None when refused."""
        assert user.totp_secret is not None
        if await self.totp.verify(user.user_id, user.totp_secret, code):
            return "totp"
        digest = self.totp.match_recovery_code(user.recovery_codes, code)
        if digest is None or not await self.totp.claim_recovery_code(digest):
            return None
        remaining = tuple(d for d in user.recovery_codes if d != digest)
        await self.users.update(user.but(recovery_codes=remaining))
        return "recovery"

    def _fail(self, username: str, source_ip: str | None, reason: str) -> NoReturn:
        """Refuse as a wrong credential; authenticate_user settles the reservation
        as a failure. Even the attempt that triggers the lock is answered as a
        wrong password; the lock (429) applies from the next attempt on, like
        django-axes."""
        self._event("failure", username, source_ip, reason=reason)
        log.info(LOGIN_FAILED, reason=reason)
        raise InvalidCredentials("invalid credentials")

    async def _high_risk(
        self, user: UserRecord, source_ip: str | None, risk: RiskAssessment
    ) -> None:
        self._event(
            "failure",
            user.username,
            source_ip,
            user_id=user.user_id,
            reason="risk_too_high",
            risk=risk.to_dict(),
        )
        log.warning(HIGH_RISK_LOGIN, user_id=user.user_id, **risk.to_dict())
        if self._alert_sink is not None:
            alert = SecurityAlert(
                alert_type=HIGH_RISK_LOGIN,
                threat_level=ThreatLevel.HIGH,
                message="sign-in refused on risk: " + ", ".join(risk.reasons),
                source_ip=source_ip,
                user_id=user.user_id,
                details=risk.to_dict(),
            )
            try:
                await self._alert_sink(alert)
            except Exception:  # never let an alert sink break sign-in
                log.exception("auth_alert_sink_failed")
        raise RiskTooHigh(risk.reasons)

    def _event(self, outcome: str, username: str | None, ip: str | None, **details: Any) -> None:
        """A ``sign_in`` decision with its reasons. It is a CUSTOM event, not
        LOGIN_SUCCESS/FAILURE: those come from the tracking middleware (status
        codes on login routes), and counting one sign-in twice would double the
        brute-force metrics."""
        if self._event_sink is None:
            return
        user_id = details.pop("user_id", None)
        event = SecurityEvent(
            kind=EventKind.CUSTOM,
            source_ip=ip,
            user_id=user_id,
            details={"type": SIGN_IN_EVENT, "outcome": outcome, "username": username, **details},
        )
        try:
            self._event_sink(event)
        except Exception:  # never let the monitor break sign-in
            log.exception("auth_event_sink_failed")

    # -- MFA enrolment ---------------------------------------------------------------
    async def enroll_mfa(self, user_id: str) -> TOTPEnrollment:
        """Start (or restart) enrolment: a pending secret, active once confirmed."""
        user = await self._user(user_id)
        enrollment = self.totp.enroll(user.username)
        await self.users.update(user.but(totp_pending=enrollment.encrypted_secret))
        return enrollment

    async def confirm_mfa(self, user_id: str, code: str) -> list[str]:
        """Activate the pending secret with a first code; returns recovery codes (shown once)."""
        user = await self._user(user_id)
        if user.totp_pending is None or not await self.totp.verify(
            user.user_id, user.totp_pending, code
        ):
            raise InvalidCredentials("invalid code")
        codes, digests = self.totp.new_recovery_codes(self._recovery_count)
        await self.users.update(
            user.but(totp_secret=user.totp_pending, totp_pending=None, recovery_codes=digests)
        )
        return codes

    # -- sessions --------------------------------------------------------------------
    async def current_user(self, access_token: str) -> UserRecord:
        """The user an access token belongs to (revocation checked)."""
        claims = await self.tokens.verify(access_token)
        user = await self.users.get(str(claims["sub"]))
        if user is None or user.disabled:
            raise InvalidToken("token refused")
        return user

    async def refresh(self, refresh_token: str) -> TokenPair:
        return await self.tokens.refresh(refresh_token)

    async def logout(self, access_token: str | None, refresh_token: str | None = None) -> None:
        if access_token:
            await self.tokens.revoke(access_token)
        if refresh_token:
            await self.tokens.revoke(refresh_token, "refresh")

    async def logout_all(self, user_id: str) -> None:
        await self.tokens.revoke_all(user_id)

    def user_id_from_scope(self, scope: Scope) -> str | None:
        """The ``sub`` of a valid bearer token (no store round trip): for rate
        limiting by user in :class:`RateLimitMiddleware`."""
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() != "bearer" or not token:
                    return None
                try:
                    return str(self.tokens.decode(token.strip())["sub"])
                except InvalidToken:
                    return None
        return None

    async def _user(self, user_id: str) -> UserRecord:
        user = await self.users.get(user_id)
        if user is None:
            raise InvalidCredentials("unknown user")
        return user
