"""Routers the host app mounts: sign-up/sign-in/MFA/sessions, and lockout admin.

``build_auth_router(authenticator)`` -> ``POST /signup``, ``POST /login``,
``POST /reauth``, ``POST /mfa/enroll``, ``POST /mfa/confirm``,
``POST /mfa/disable``, ``POST /mfa/recovery-codes``, ``POST /password``,
``POST /refresh``, ``POST /logout``, ``POST /logout-all``, ``GET /me``.

The credential routes (:data:`REAUTH_ROUTES`) need a recent ``POST /reauth``
of the same session (password, plus a TOTP or recovery code once MFA is
enrolled); without one they answer 401 ``reauth_required`` with RFC 9470's
``insufficient_user_authentication`` challenge. Each of them ends every session
of the user and answers a fresh token pair.

``build_lockout_router(lockouts)`` -> ``GET /lockouts`` and
``POST /lockouts/{key}/unlock``; it has no authentication of its own: mount it
behind the admin-key dependency (the plugin does, under ``/api/security``).
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from pynomaly_security._context import get_request_context, note_refusal
from pynomaly_security.auth.authenticator import Session, ZeroTrustAuthenticator
from pynomaly_security.auth.deps import (
    RequireSession,
    RequireUser,
    bearer_token,
    tenant_requires_mfa,
)
from pynomaly_security.auth.errors import (
    AccountLocked,
    AuthUnavailable,
    ChangeRefused,
    MFARequired,
    ReauthRequired,
    RiskTooHigh,
    SignupRefused,
)
from pynomaly_security.auth.lockout import LockoutManager, Reservation
from pynomaly_security.auth.login_guard import LOGIN_RESERVATION
from pynomaly_security.auth.passwords import HashingBusy
from pynomaly_security.auth.risk import DEVICE_COOKIE
from pynomaly_security.auth.tokens import TokenPair
from pynomaly_security.auth.users import UserRecord
from pynomaly_security.exceptions import AuthenticationError, InvalidToken
from pynomaly_security.network.client_ip import ClientIPResolver

__all__ = [
    "REAUTH_ROUTES",
    "SIGN_IN_RISK",
    "build_auth_router",
    "build_lockout_router",
    "refusal_response",
]

_CHALLENGE = {"WWW-Authenticate": "Bearer"}
SIGN_IN_RISK = "sign_in_risk"
"""``RequestContext.extra`` key: the risk assessment of this sign-in (level, reasons)."""
_AT_LIMIT: dict[type[AuthenticationError], tuple[str, int]] = {
    AccountLocked: ("account_locked", 429),
    HashingBusy: ("hashing_busy", 503),
    AuthUnavailable: ("auth_unavailable", 503),
}
"""Refusals at a limit, by error: (audit reason, status)."""
REAUTH_ROUTES = ("/mfa/enroll", "/mfa/confirm", "/mfa/disable", "/mfa/recovery-codes", "/password")
"""Routes that change a credential: each needs a recent ``POST /reauth``."""


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=256)
    password: str = Field(min_length=1, max_length=4096)


class LoginRequest(Credentials):
    totp: str | None = Field(default=None, max_length=64)


class CodeRequest(BaseModel):
    code: str = Field(min_length=1, max_length=64)


class ReauthRequest(BaseModel):
    password: str = Field(min_length=1, max_length=4096)
    code: str | None = Field(default=None, max_length=64)
    """A current TOTP code or an unused recovery code (required once MFA is enrolled)."""


class PasswordChange(BaseModel):
    new_password: str = Field(min_length=1, max_length=4096)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=8192)


class LogoutRequest(BaseModel):
    refresh_token: str | None = Field(default=None, max_length=8192)


def _tokens(pair: TokenPair, **extra: Any) -> dict[str, Any]:
    return {
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "token_type": pair.token_type,
        "expires_in": pair.expires_in,
        **extra,
    }


def refusal_response(exc: AuthenticationError, request: Request) -> JSONResponse:
    """One HTTP answer per refusal; bodies never say which credential was wrong.
    A refusal at a limit (a lock, a busy hashing pool, the store down) is noted
    for the audit trail (``request_refused``)."""
    limit = _AT_LIMIT.get(type(exc))
    if limit is not None:
        note_refusal(request.scope, limit[0], limit[1], repeating=True)
    if isinstance(exc, MFARequired):
        return JSONResponse(
            {"detail": "mfa_required", "reasons": list(exc.reasons)}, 401, headers=_CHALLENGE
        )
    if isinstance(exc, AccountLocked):
        return JSONResponse(
            {"detail": "too many failed attempts", "retry_after": exc.retry_after},
            429,
            headers={"Retry-After": str(exc.retry_after)},
        )
    if isinstance(exc, RiskTooHigh):
        return JSONResponse({"detail": "sign-in refused", "reasons": list(exc.reasons)}, 403)
    if isinstance(exc, HashingBusy):
        return JSONResponse(
            {"detail": "busy, retry shortly"}, 503, headers={"Retry-After": str(exc.retry_after)}
        )
    if isinstance(exc, AuthUnavailable):
        return JSONResponse({"detail": str(exc)}, 503, headers={"Retry-After": "5"})
    if isinstance(exc, ReauthRequired):
        # RFC 9470: the token is fine, the authentication behind it is not recent enough.
        challenge = (
            'Bearer error="insufficient_user_authentication", '
            'error_description="re-authenticate at /reauth", '
            f"max_age={exc.max_age}"
        )
        return JSONResponse(
            {"detail": "reauth_required", "max_age": exc.max_age},
            401,
            headers={"WWW-Authenticate": challenge},
        )
    if isinstance(exc, SignupRefused | ChangeRefused):
        return JSONResponse({"detail": str(exc)}, 400)
    return JSONResponse({"detail": "invalid credentials"}, 401, headers=_CHALLENGE)


def build_auth_router(
    authenticator: ZeroTrustAuthenticator,
    *,
    resolver: ClientIPResolver | None = None,
    prefix: str = "",
    secure_cookies: bool = True,
) -> APIRouter:
    """Sign-up, sign-in (with ``totp`` once enrolled), MFA enrolment, refresh,
    logout and ``me``, bound to ``authenticator``.

    Args:
        resolver: client IP resolver when no tracking middleware sets the
            request context (it should be the app's one).
        secure_cookies: mark the device cookie ``Secure`` (HTTPS only).
    """
    router = APIRouter(prefix=prefix, tags=["auth"])
    ip_resolver = resolver or ClientIPResolver()
    # A default value, not a local Annotated alias: with postponed annotations
    # FastAPI could not resolve a name local to this function.
    require_user = Depends(RequireUser(authenticator))
    require_session = Depends(RequireSession(authenticator))

    def client_ip(request: Request) -> str | None:
        ctx = get_request_context(request.scope)
        return ctx.client_ip if ctx is not None else ip_resolver.resolve(request.scope)

    @router.post("/signup", status_code=201)
    async def signup(body: Credentials, request: Request) -> Any:
        try:
            user = await authenticator.signup(body.username, body.password)
        except (SignupRefused, HashingBusy) as exc:
            return refusal_response(exc, request)
        return {"user_id": user.user_id, "username": user.username}

    @router.post("/login")
    async def login(body: LoginRequest, request: Request, response: Response) -> Any:
        device = request.cookies.get(DEVICE_COOKIE)
        ctx = get_request_context(request.scope)
        if ctx is not None:
            ctx.login_username = body.username
        # The attempt the login guard reserved before this body was parsed; the
        # authenticator uses and settles it when it names the same user (and
        # reserves its own otherwise, or without the guard).
        held = request.scope.get("state", {}).get(LOGIN_RESERVATION)
        try:
            result = await authenticator.authenticate_user(
                body.username,
                body.password,
                client_ip(request),
                request.headers.get("user-agent"),
                totp_code=body.totp,
                headers=dict(request.headers),
                device_cookie=device,
                reservation=held if isinstance(held, Reservation) else None,
            )
        except RiskTooHigh as exc:
            if ctx is not None:
                ctx.extra[SIGN_IN_RISK] = {"level": "high", "reasons": list(exc.reasons)}
            return refusal_response(exc, request)
        except AuthenticationError as exc:
            return refusal_response(exc, request)
        if ctx is not None:
            ctx.user_id = result.user.user_id
            # For the audit trail: why this sign-in scored what it did.
            ctx.extra[SIGN_IN_RISK] = result.risk.to_dict()
        if device is None:
            # A random id the browser keeps: "same device" becomes a stable signal.
            response.set_cookie(
                DEVICE_COOKIE,
                secrets.token_urlsafe(16),
                max_age=400 * 86_400,
                httponly=True,
                secure=secure_cookies,
                samesite="lax",
            )
        extra: dict[str, Any] = {}
        if not result.user.mfa_enabled and tenant_requires_mfa():
            # These tokens only reach /reauth and /mfa/*: everything else is 403 until
            # a factor is enrolled and the user signs in with it (auth/deps.py).
            extra["mfa_enrollment_required"] = True
        return _tokens(
            result.tokens, user=result.user.username, risk=result.risk.to_dict(), **extra
        )

    @router.post("/reauth")
    async def reauth(
        body: ReauthRequest, request: Request, session: Session = require_session
    ) -> Any:
        """Prove presence again (password, plus a code once MFA is enrolled): this
        session may change credentials for ``max_age`` seconds."""
        try:
            max_age = await authenticator.reauthenticate(
                session, body.password, body.code, client_ip(request)
            )
        except AuthenticationError as exc:
            return refusal_response(exc, request)
        return {"reauthenticated": True, "max_age": max_age}

    @router.post("/mfa/enroll")
    async def mfa_enroll(request: Request, session: Session = require_session) -> Any:
        try:
            enrollment = await authenticator.enroll_mfa(session, client_ip(request))
        except AuthenticationError as exc:
            return refusal_response(exc, request)
        return {"secret": enrollment.secret, "otpauth_uri": enrollment.provisioning_uri}

    @router.post("/mfa/confirm")
    async def mfa_confirm(
        body: CodeRequest, request: Request, session: Session = require_session
    ) -> Any:
        try:
            codes, pair = await authenticator.confirm_mfa(session, body.code, client_ip(request))
        except AuthenticationError as exc:
            return refusal_response(exc, request)
        return _tokens(pair, mfa_enabled=True, recovery_codes=codes, sessions_ended=True)

    @router.post("/mfa/disable")
    async def mfa_disable(request: Request, session: Session = require_session) -> Any:
        try:
            pair = await authenticator.disable_mfa(session, client_ip(request))
        except AuthenticationError as exc:
            return refusal_response(exc, request)
        return _tokens(pair, mfa_enabled=False, sessions_ended=True)

    @router.post("/mfa/recovery-codes")
    async def mfa_recovery_codes(request: Request, session: Session = require_session) -> Any:
        try:
            codes, pair = await authenticator.regenerate_recovery_codes(session, client_ip(request))
        except AuthenticationError as exc:
            return refusal_response(exc, request)
        return _tokens(pair, recovery_codes=codes, sessions_ended=True)

    @router.post("/password")
    async def change_password(
        body: PasswordChange, request: Request, session: Session = require_session
    ) -> Any:
        try:
            pair = await authenticator.change_password(
                session, body.new_password, client_ip(request)
            )
        except AuthenticationError as exc:
            return refusal_response(exc, request)
        return _tokens(pair, sessions_ended=True)

    @router.post("/refresh")
    async def refresh(body: RefreshRequest, request: Request) -> Any:
        try:
            pair = await authenticator.refresh(body.refresh_token, client_ip(request))
        except InvalidToken:
            return JSONResponse({"detail": "invalid token"}, 401, headers=_CHALLENGE)
        except AuthenticationError as exc:
            return refusal_response(exc, request)
        return _tokens(pair)

    @router.post("/logout", status_code=204)
    async def logout(request: Request, body: LogoutRequest | None = None) -> Response:
        """End the session of the bearer token and/or of ``refresh_token``: the
        refresh token and every access token of that session stop working."""
        try:
            await authenticator.logout(
                bearer_token(request), body.refresh_token if body else None, client_ip(request)
            )
        except AuthenticationError as exc:
            return refusal_response(exc, request)
        return Response(status_code=204)

    @router.post("/logout-all", status_code=204)
    async def logout_all(request: Request, user: UserRecord = require_user) -> Response:
        try:
            await authenticator.logout_all(user.user_id, client_ip(request))
        except AuthenticationError as exc:
            return refusal_response(exc, request)
        return Response(status_code=204)

    @router.get("/me")
    async def me(user: UserRecord = require_user) -> Any:
        return {"user_id": user.user_id, "username": user.username, "mfa_enabled": user.mfa_enabled}

    return router


def build_lockout_router(lockouts: LockoutManager) -> APIRouter:
    """``GET /lockouts`` and ``POST /lockouts/{key}/unlock`` (no auth inside)."""
    router = APIRouter(tags=["security"])

    @router.get("/lockouts")
    async def list_lockouts() -> Any:
        records = await lockouts.list_lockouts()
        return {"lockouts": [r.to_dict() for r in records], "count": len(records)}

    @router.post("/lockouts/{key}/unlock")
    async def unlock(key: str) -> Any:
        if not (key.isalnum() and len(key) <= 64) or not await lockouts.unlock(key):
            raise HTTPException(404, "no such lockout")
        return {"unlocked": key}

    return router
