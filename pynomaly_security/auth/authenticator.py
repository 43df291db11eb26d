"""``ZeroTrustAuthenticator``: every sign-in is checked, scored and recorded.

One sign-in goes: reserve the attempt in the lockout (atomic, before anything
is checked) -> password (Argon2 in the hasher's bounded thread pool; constant
time for unknown users) -> risk score -> second factor when enrolled or when
the risk asks for it -> tokens. The reservation is settled with the outcome: a
wrong password or second factor keeps it as a failure, a success resets the
key, anything else (right password but a code is needed, the hashing pool is
full) gives it back. Every outcome is logged with its reasons and handed to
the event sink (the monitor / audit trail).

Sessions and second factors: a sign-in starts a session (see ``tokens``).
Changing a credential (enrolling, confirming, disabling a second factor,
new recovery codes, a new password) needs a recent re-authentication of the
session (:meth:`ZeroTrustAuthenticator.reauthenticate`: the password, and a
current TOTP or recovery code once MFA is enrolled), so a stolen access token
alone changes nothing. Each change is reported as an event and an alert (the
plugin writes alerts to the audit trail) and ends every session of the user;
the caller gets a fresh session in the answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from starlette.types import Scope

from pynomaly_security._log import get_logger
from pynomaly_security.auth.errors import (
    AccountLocked,
    AuthUnavailable,
    ChangeRefused,
    InvalidCredentials,
    MFARequired,
    ReauthRequired,
    RiskTooHigh,
    SignupRefused,
)
from pynomaly_security.auth.factory import auth_parts
from pynomaly_security.auth.lockout import (
    AlertSink,
    EventSink,
    LockoutManager,
    LockoutStatus,
    Outcome,
    Reservation,
)
from pynomaly_security.auth.passwords import PasswordHasher
from pynomaly_security.auth.risk import RiskAssessment, RiskEngine, RiskLevel, device_fingerprint
from pynomaly_security.auth.tokens import RefreshTokenReused, TokenPair, TokenService
from pynomaly_security.auth.totp import TOTPEnrollment, TOTPManager
from pynomaly_security.auth.usernames import UsernamePolicy
from pynomaly_security.auth.users import UserRecord, UserRepository
from pynomaly_security.exceptions import ConfigurationError, InvalidToken, StorageError
from pynomaly_security.logsafe import safe_text
from pynomaly_security.monitor.events import EventKind, SecurityAlert, SecurityEvent, ThreatLevel
from pynomaly_security.storage.base import Store

if TYPE_CHECKING:
    from pynomaly_security.settings import SecuritySettings

__all__ = [
    "ACCOUNT_CHANGED",
    "ACCOUNT_EVENT",
    "SIGN_IN_EVENT",
    "AuthResult",
    "EventSink",
    "Session",
    "ZeroTrustAuthenticator",
]

log = get_logger(__name__)

LOGIN_SUCCEEDED = "login_succeeded"
LOGIN_FAILED = "login_failed"
HIGH_RISK_LOGIN = "high_risk_login"
SIGN_IN_EVENT = "sign_in"
ACCOUNT_EVENT = "account_security"
"""``details["type"]`` of session and credential events (re-auth, MFA, logout)."""
ACCOUNT_CHANGED = "account_security_change"
"""Alert type of a credential change: the owner sees it (and the audit trail keeps it)."""
REFRESH_REUSE_ALERT = "refresh_token_reuse"
# Re-authentication attempts one session may make without succeeding; each is
# reserved (an atomic increment) before the password is checked, so however many
# arrive at once, a stolen token gets at most this many guesses, then its
# session ends.
_REAUTH_ATTEMPTS = 5
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


@dataclass(frozen=True, slots=True)
class Session:
    """The signed-in user of a request and the session its access token belongs to."""

    user: UserRecord
    session_id: str
    amr: tuple[str, ...] = ()


class ZeroTrustAuthenticator:
    """Sign-up, sign-in with risk-based MFA, sessions and revocation.

    Args:
        users: user records (the host app's, or :class:`InMemoryUserRepository`).
        passwords, totp, tokens, lockouts, risk: the parts; see their modules.
        recovery_codes: how many recovery codes MFA confirmation hands out.
        reauth_max_age: seconds a re-authentication lets a session change its
            credentials.
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
        reauth_max_age: int = 300,
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
        if reauth_max_age < 1:
            raise ConfigurationError(f"reauth_max_age must be >= 1 second, got {reauth_max_age}")
        self.reauth_max_age = reauth_max_age
        self._event_sink = event_sink
        self._alert_sink = alert_sink

    @classmethod
    def from_settings(
        cls,
        settings: SecuritySettings,
        store: Store,
        *,
        event_sink: EventSink | None = None,
        alert_sink: AlertSink | None = None,
        **kwargs: Any,
    ) -> ZeroTrustAuthenticator:
        """Every part wired from the settings and one shared store; ``kwargs``
        (``users``, ``passwords``, ``lockouts``, ``keyring``, clocks) go to
        :func:`pynomaly_security.auth.factory.auth_parts`."""
        parts = auth_parts(settings, store, event_sink=event_sink, **kwargs)
        return cls(**parts, event_sink=event_sink, alert_sink=alert_sink)

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
        log.info("login_risk_assessed", user_id=safe_text(user.user_id), **risk.to_dict())
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
            log.warning(
                "login_mfa_step_up_unavailable",
                user_id=safe_text(user.user_id),
                reasons=risk.reasons,
            )
        await self.risk.remember(user.user_id, source_ip, fingerprint)
        if self.passwords.needs_rehash(user.password_hash):
            new_hash = await self.passwords.ahash(password)
            await self.users.update(user.but(password_hash=new_hash))
        tokens = await self.tokens.issue(user.user_id, amr=amr)
        self._event(
            "success",
            user.username,
            source_ip,
            user_id=user.user_id,
            risk=risk.to_dict(),
            amr=list(amr),
        )
        log.info(LOGIN_SUCCEEDED, user_id=safe_text(user.user_id), risk_level=risk.level.value)
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
        log.warning(HIGH_RISK_LOGIN, user_id=safe_text(user.user_id), **risk.to_dict())
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

    # -- sessions --------------------------------------------------------------------
    async def current_session(self, access_token: str) -> Session:
        """The user and session an access token belongs to (session checked in the store).

        Raises:
            InvalidToken: bad token, ended session, unknown or disabled user.
            AuthUnavailable: the store is down and sessions fail closed.
        """
        claims = await self.tokens.verify(access_token)
        user = await self.users.get(str(claims["sub"]))
        if user is None or user.disabled:
            raise InvalidToken("token refused")
        amr = claims.get("amr")
        return Session(
            user,
            str(claims["sid"]),
            tuple(str(m) for m in amr) if isinstance(amr, list) else (),
        )

    async def current_user(self, access_token: str) -> UserRecord:
        """The user an access token belongs to (session checked in the store)."""
        return (await self.current_session(access_token)).user

    async def refresh(self, refresh_token: str, source_ip: str | None = None) -> TokenPair:
        """Rotate a refresh token. A spent one coming back ends its session and
        raises an alert: someone else holds a copy. The user must still exist and
        be enabled (a disabled account's sessions end at their next refresh)."""
        claims = self.tokens.decode(refresh_token, "refresh")
        user = await self.users.get(str(claims["sub"]))
        if user is None or user.disabled:
            await self.tokens.end_session(str(claims["sid"]))
            raise InvalidToken("token refused")
        try:
            return await self.tokens.refresh(refresh_token)
        except RefreshTokenReused as exc:
            self._account_event(
                "refresh_token_reuse", exc.user_id, source_ip, session_id=exc.session_id
            )
            await self._alert(
                ThreatLevel.HIGH,
                REFRESH_REUSE_ALERT,
                "a spent refresh token was used again; its session was ended",
                exc.user_id,
                source_ip,
                session_id=exc.session_id,
            )
            raise

    async def logout(
        self,
        access_token: str | None,
        refresh_token: str | None = None,
        source_ip: str | None = None,
    ) -> None:
        """End the session of each token given: its refresh token and every
        access token issued in it stop working."""
        for token, typ in ((access_token, "access"), (refresh_token, "refresh")):
            if not token:
                continue
            try:
                claims = self.tokens.decode(token, typ)
            except InvalidToken:
                continue  # nothing to end
            await self.tokens.end_session(str(claims["sid"]))
            self._account_event("logout", claims["sub"], source_ip, session_id=claims["sid"])

    async def logout_all(self, user_id: str, source_ip: str | None = None) -> None:
        """End every session of ``user_id``."""
        await self.tokens.revoke_all(user_id)
        self._account_event("logout_all", user_id, source_ip)

    # -- recent re-authentication ----------------------------------------------------
    async def reauthenticate(
        self, session: Session, password: str, code: str | None, source_ip: str | None
    ) -> int:
        """Prove again that the session's owner is present: the password, and a
        current TOTP or unused recovery code once MFA is enrolled. The session may
        then change credentials for ``reauth_max_age`` seconds (returned).

        Raises:
            MFARequired: MFA is enrolled and no code was sent (nothing was checked).
            InvalidCredentials: wrong password or code (counted by the lockout;
                after a few the session itself is ended).
            AccountLocked: too many failures for this account/IP.
            AuthUnavailable: the store is down.
        """
        user = session.user
        if user.mfa_enabled and not code:
            # Known from /me anyway; refusing before the password is checked
            # gives no password oracle.
            raise MFARequired(("reauth",))
        attempt = await self.tokens.reserve_reauth_attempt(session.session_id, self.reauth_max_age)
        if attempt > _REAUTH_ATTEMPTS:
            await self._reauth_failed(session, source_ip, "too_many_attempts", attempt)
        status = await self.lockouts.check(user.username, source_ip)
        if status.unavailable:
            raise AuthUnavailable("re-authentication temporarily unavailable")
        if status.locked:
            self._account_event("reauth_failed", user.user_id, source_ip, reason="locked")
            raise AccountLocked(status.retry_after)
        ok: bool = await self.passwords.averify(user.password_hash, password)
        if not ok:
            await self._reauth_failed(session, source_ip, "bad_password", attempt)
        if user.mfa_enabled:
            assert code is not None
            if await self._second_factor(user, code) is None:
                await self._reauth_failed(session, source_ip, "bad_second_factor", attempt)
        await self.lockouts.report_auth_success(user.username, source_ip)
        await self.tokens.mark_reauthenticated(session.session_id, self.reauth_max_age)
        self._account_event(
            "reauthenticated", user.user_id, source_ip, session_id=session.session_id
        )
        return self.reauth_max_age

    async def _reauth_failed(
        self, session: Session, source_ip: str | None, reason: str, attempt: int
    ) -> NoReturn:
        user = session.user
        if attempt > _REAUTH_ATTEMPTS:  # refused before anything was checked
            status = LockoutStatus(False)
        else:
            status = await self.lockouts.report_auth_failure(user.username, source_ip)
        # The lock protects the password; ending the session takes the token away.
        ended = status.locked or attempt >= _REAUTH_ATTEMPTS
        if ended:
            await self.tokens.end_session(session.session_id)
        self._account_event(
            "reauth_failed",
            user.user_id,
            source_ip,
            reason=reason,
            session_id=session.session_id,
            session_ended=ended,
        )
        if status.unavailable:
            raise AuthUnavailable("re-authentication temporarily unavailable")
        raise InvalidCredentials("invalid credentials")

    async def require_reauth(self, session: Session, action: str, source_ip: str | None) -> None:
        """Refuse (:class:`ReauthRequired`) unless ``session`` re-authenticated within
        ``reauth_max_age`` seconds; ``action`` names the change in the account event.
        Every sensitive change calls it: credentials here, live settings in the admin API."""
        if not await self.tokens.reauthenticated_within(session.session_id, self.reauth_max_age):
            self._account_event(
                "reauth_required",
                session.user.user_id,
                source_ip,
                change=action,
                session_id=session.session_id,
            )
            raise ReauthRequired(self.reauth_max_age)

    # -- second factors and password -------------------------------------------------
    async def enroll_mfa(self, session: Session, source_ip: str | None = None) -> TOTPEnrollment:
        """Start (or restart) enrolment: a pending secret, active once confirmed.

        Raises:
            ReauthRequired: the session has not re-authenticated recently.
        """
        await self.require_reauth(session, "mfa_enroll", source_ip)
        user = await self._user(session.user.user_id)
        enrollment = self.totp.enroll(user.username)
        await self.users.update(user.but(totp_pending=enrollment.encrypted_secret))
        self._account_event(
            "mfa_enrollment_started", user.user_id, source_ip, session_id=session.session_id
        )
        return enrollment

    async def confirm_mfa(
        self, session: Session, code: str, source_ip: str | None = None
    ) -> tuple[list[str], TokenPair]:
        """Activate the pending secret with a first code. Returns the recovery
        codes (shown once) and a new session: every session of the user, this
        one included, has ended.

        Raises:
            ReauthRequired: the session has not re-authenticated recently.
            InvalidCredentials: no pending secret, or a wrong code.
        """
        await self.require_reauth(session, "mfa_confirm", source_ip)
        user = await self._user(session.user.user_id)
        if user.totp_pending is None or not await self.totp.verify(
            user.user_id, user.totp_pending, code
        ):
            raise InvalidCredentials("invalid code")
        codes, digests = self.totp.new_recovery_codes(self._recovery_count)
        replaced = user.mfa_enabled
        await self.users.update(
            user.but(totp_secret=user.totp_pending, totp_pending=None, recovery_codes=digests)
        )
        pair = await self._credentials_changed(
            session,
            "mfa_replaced" if replaced else "mfa_enabled",
            "the second factor was replaced" if replaced else "a second factor was enrolled",
            source_ip,
            ("pwd", "otp"),
        )
        return codes, pair

    async def disable_mfa(self, session: Session, source_ip: str | None = None) -> TokenPair:
        """Remove the second factor and its recovery codes; every session ends.

        Raises:
            ReauthRequired: the session has not re-authenticated recently.
            ChangeRefused: MFA is not enrolled.
        """
        await self.require_reauth(session, "mfa_disable", source_ip)
        user = await self._user(session.user.user_id)
        if not user.mfa_enabled and user.totp_pending is None:
            raise ChangeRefused("mfa is not enrolled")
        await self.users.update(user.but(totp_secret=None, totp_pending=None, recovery_codes=()))
        return await self._credentials_changed(
            session, "mfa_disabled", "the second factor was removed", source_ip, ("pwd",)
        )

    async def regenerate_recovery_codes(
        self, session: Session, source_ip: str | None = None
    ) -> tuple[list[str], TokenPair]:
        """New recovery codes (the old ones stop working); every session ends.

        Raises:
            ReauthRequired: the session has not re-authenticated recently.
            ChangeRefused: MFA is not enrolled.
        """
        await self.require_reauth(session, "mfa_recovery_codes", source_ip)
        user = await self._user(session.user.user_id)
        if not user.mfa_enabled:
            raise ChangeRefused("mfa is not enrolled")
        codes, digests = self.totp.new_recovery_codes(self._recovery_count)
        await self.users.update(user.but(recovery_codes=digests))
        pair = await self._credentials_changed(
            session,
            "recovery_codes_regenerated",
            "new recovery codes were generated",
            source_ip,
            ("pwd", "otp"),
        )
        return codes, pair

    async def change_password(
        self, session: Session, new_password: str, source_ip: str | None = None
    ) -> TokenPair:
        """Set a new password; every session of the user ends.

        Raises:
            ReauthRequired: the session has not re-authenticated recently
                (re-authentication checks the current password).
            ChangeRefused: the new password fails the policy.
        """
        await self.require_reauth(session, "password_change", source_ip)
        problem = self.passwords.check_policy(new_password)
        if problem is not None:
            raise ChangeRefused(problem)
        user = await self._user(session.user.user_id)
        new_hash: str = await self.passwords.ahash(new_password)
        await self.users.update(user.but(password_hash=new_hash))
        return await self._credentials_changed(
            session,
            "password_changed",
            "the password was changed",
            source_ip,
            ("pwd", "otp") if user.mfa_enabled else ("pwd",),
        )

    async def _credentials_changed(
        self,
        session: Session,
        action: str,
        message: str,
        source_ip: str | None,
        amr: tuple[str, ...],
    ) -> TokenPair:
        """End every session of the user (the caller's too: its token may be the
        stolen one) and start a fresh one for the caller; report and alert."""
        user_id = session.user.user_id
        await self.tokens.revoke_all(user_id)
        pair = await self.tokens.issue(user_id, amr=amr)
        self._account_event(
            action,
            user_id,
            source_ip,
            session_id=session.session_id,
            new_session_id=pair.session_id,
            sessions_ended=True,
        )
        log.warning(ACCOUNT_CHANGED, action=action, user_id=safe_text(str(user_id)))
        await self._alert(
            ThreatLevel.MEDIUM,
            ACCOUNT_CHANGED,
            message + "; every session was ended",
            user_id,
            source_ip,
            action=action,
        )
        return pair

    # -- reporting -------------------------------------------------------------------
    def _account_event(
        self, action: str, user_id: object, source_ip: str | None, **details: Any
    ) -> None:
        """A session or credential event for the monitor (never a secret)."""
        if self._event_sink is None:
            return
        event = SecurityEvent(
            kind=EventKind.CUSTOM,
            source_ip=source_ip,
            user_id=user_id if isinstance(user_id, str) else None,
            details={"type": ACCOUNT_EVENT, "action": action, **details},
        )
        try:
            self._event_sink(event)
        except Exception:  # never let the monitor break a session change
            log.exception("auth_event_sink_failed")

    async def _alert(
        self,
        level: ThreatLevel,
        alert_type: str,
        message: str,
        user_id: str | None,
        source_ip: str | None,
        **details: Any,
    ) -> None:
        if self._alert_sink is None:
            return
        alert = SecurityAlert(
            alert_type=alert_type,
            threat_level=level,
            message=message,
            source_ip=source_ip,
            user_id=user_id,
            details=details,
        )
        try:
            await self._alert_sink(alert)
        except Exception:  # never let an alert sink break a session change
            log.exception("auth_alert_sink_failed")

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
