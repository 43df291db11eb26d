"""FastAPI dependencies: the signed-in user from a bearer access token.

``RequireUser`` (the user) and ``RequireSession`` (the user and the session
its token belongs to, for routes that change the session or its credentials)
are callable classes with ``auto_error`` like
``fastapi.security.HTTPBearer``; a missing or refused token is ``401`` with
``WWW-Authenticate: Bearer`` (RFC 6750 section 3). The authenticator is the one
given, or the one :func:`install_authenticator` put on ``app.state``.

    CurrentUser = Annotated[UserRecord, Depends(RequireUser())]

    @app.get("/me")
    async def me(user: CurrentUser) -> dict[str, str]: ...
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from starlette.datastructures import State

from pynomaly_security._context import get_request_context, note_refusal
from pynomaly_security.auth.authenticator import Session, ZeroTrustAuthenticator
from pynomaly_security.auth.errors import AuthUnavailable
from pynomaly_security.auth.users import UserRecord
from pynomaly_security.exceptions import ConfigurationError, InvalidToken
from pynomaly_security.tenancy.context import current_overrides

__all__ = [
    "APP_STATE_KEY",
    "TENANT_MFA_REQUIRED",
    "CurrentUser",
    "OptionalUser",
    "RequireSession",
    "RequireUser",
    "bearer_token",
    "install_authenticator",
    "tenant_requires_mfa",
]

APP_STATE_KEY = "pynomaly_auth"
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
TENANT_MFA_REQUIRED = "mfa_enrollment_required"
"""The 403 detail of a session without a second factor in a tenant requiring one."""


def tenant_requires_mfa() -> bool:
    """Whether the running request's tenant requires a second factor (``mfa_required``)."""
    overrides = current_overrides()
    return overrides is not None and overrides.mfa_required


def install_authenticator(app: FastAPI, authenticator: ZeroTrustAuthenticator) -> None:
    """Make ``authenticator`` the one :class:`RequireUser` finds on this app, and the
    one whose sessions the stack's playbooks end (``revoke_sessions``); with
    behavioural detection on, its risk score counts the user's recent behaviour."""
    setattr(app.state, APP_STATE_KEY, authenticator)
    anomaly = getattr(getattr(app.state, "pynomaly_security", None), "anomaly", None)
    if anomaly is not None:  # behavioural detection feeds the sign-in risk (issue 22)
        authenticator.risk.behaviour = anomaly.behaviour
        authenticator.risk.behaviour_score = anomaly.section.alert_score
    metrics = getattr(getattr(app.state, "pynomaly_security", None), "metrics", None)
    if metrics is not None:  # the sessions gauges, read at each scrape
        metrics.sessions = authenticator.tokens.active_sessions
    incidents = getattr(getattr(app.state, "pynomaly_security", None), "incidents", None)
    if incidents is not None:

        async def revoke(user: str) -> None:
            # Incidents name users as they signed in; sessions are kept by user id.
            record = await authenticator.users.get_by_username(user)
            await authenticator.logout_all(record.user_id if record is not None else user)

        incidents.session_revoker = revoke


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class RequireUser:
    """Resolve the bearer token of a request to its user.

    Args:
        authenticator: defaults to the app's (see :func:`install_authenticator`).
        auto_error: False returns None instead of answering 401.
    """

    tenant_mfa = True
    """Refuse a session without a second factor in a tenant that requires one (issue 21)."""

    def __init__(
        self, authenticator: ZeroTrustAuthenticator | None = None, *, auto_error: bool = True
    ) -> None:
        self._authenticator = authenticator
        self.auto_error = auto_error

    def _resolve(self, state: State) -> ZeroTrustAuthenticator:
        if self._authenticator is not None:
            return self._authenticator
        found = getattr(state, APP_STATE_KEY, None)
        if not isinstance(found, ZeroTrustAuthenticator):
            raise ConfigurationError(
                "RequireUser has no authenticator: pass one or call install_authenticator(app, ...)"
            )
        return found

    async def __call__(self, request: Request) -> UserRecord | None:
        session = await self._session(request)
        return session.user if session is not None else None

    async def _session(self, request: Request) -> Session | None:
        authenticator = self._resolve(request.app.state)
        token = bearer_token(request)
        if token is None:
            self._refuse("not authenticated")
            return None
        try:
            session = await authenticator.current_session(token)
        except InvalidToken:
            self._refuse("invalid token")
            return None
        except AuthUnavailable as exc:
            note_refusal(request.scope, "auth_unavailable", 503, repeating=True)
            raise HTTPException(503, "authentication temporarily unavailable") from exc
        ctx = get_request_context(request.scope)
        if ctx is not None:
            ctx.user_id = session.user.user_id  # audit and monitor see who it was
        if self.tenant_mfa and "otp" not in session.amr and tenant_requires_mfa():
            # Issue 21: the tenant requires a second factor; this session signed in
            # without one. Not 401: the token is valid, the user must enrol
            # (RequireSession routes: /reauth, /mfa/enroll, /mfa/confirm) and sign in again.
            note_refusal(request.scope, "tenant_mfa_required", 403, repeating=True)
            raise HTTPException(403, TENANT_MFA_REQUIRED)
        return session

    def _refuse(self, detail: str) -> None:
        if self.auto_error:
            raise HTTPException(401, detail, headers=_CHALLENGE)


class RequireSession(RequireUser):
    """Like :class:`RequireUser`, but the :class:`Session` (user, session id,
    authentication methods): what re-authentication and credential changes need.
    A session without a second factor is accepted in a tenant that requires one:
    enrolling one is what it must do."""

    tenant_mfa = False

    async def __call__(self, request: Request) -> Session | None:  # type: ignore[override]
        return await self._session(request)


CurrentUser = Annotated[UserRecord, Depends(RequireUser())]
OptionalUser = Annotated[UserRecord | None, Depends(RequireUser(auto_error=False))]
