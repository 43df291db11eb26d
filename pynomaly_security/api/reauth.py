"""The step-up rule of sensitive admin changes: a signed-in session that
re-authenticated recently, on top of the admin key.

The admin routers are behind the admin key; a change that is sensitive (a live
setting that can switch blocking off, closing an incident) also needs a session
(its access token as ``Authorization: Bearer``, the admin key then as
``X-API-Key``) that called ``POST /reauth`` within ``REAUTH_MAX_AGE`` seconds,
exactly as a credential change does. The session's user is who the audit trail
names.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from pynomaly_security._context import get_request_context
from pynomaly_security.auth.authenticator import ZeroTrustAuthenticator
from pynomaly_security.auth.deps import APP_STATE_KEY, bearer_token
from pynomaly_security.auth.errors import AuthUnavailable
from pynomaly_security.auth.router import refusal_response
from pynomaly_security.exceptions import AuthenticationError, InvalidToken

__all__ = ["UNAVAILABLE", "reauthenticated_user"]

_CHALLENGE = {"WWW-Authenticate": "Bearer"}
UNAVAILABLE = JSONResponse(
    {"detail": "security state unavailable"}, 503, headers={"Retry-After": "5"}
)


async def reauthenticated_user(request: Request, action: str, what: str) -> str | Response:
    """The id of the user whose session re-authenticated recently, or the refusal to
    answer (401 without a session, 403 without an authenticator, RFC 9470's
    challenge when the re-authentication is too old, 503 when the state fails).

    Args:
        action: the change's name in the account event (``live_settings``).
        what: the change in words, for the refusal's detail ("a live settings change").
    """
    ctx = get_request_context(request.scope)
    source_ip = ctx.client_ip if ctx is not None else None
    authenticator = getattr(request.app.state, APP_STATE_KEY, None)
    if not isinstance(authenticator, ZeroTrustAuthenticator):
        return JSONResponse(
            {
                "detail": f"{what} needs a re-authenticated session, and this app has no "
                "authenticator (pynomaly_security.auth.install_authenticator)"
            },
            403,
        )
    no_session = JSONResponse(
        {
            "detail": f"{what} needs a signed-in session that re-authenticated recently: "
            "send its access token as Authorization: Bearer and the admin key as X-API-Key"
        },
        401,
        headers=_CHALLENGE,
    )
    token = bearer_token(request)
    if token is None:
        return no_session
    try:
        session = await authenticator.current_session(token)
        if ctx is not None:
            ctx.user_id = session.user.user_id
        await authenticator.require_reauth(session, action, source_ip)
    except InvalidToken:
        return no_session
    except AuthUnavailable:
        return UNAVAILABLE
    except AuthenticationError as exc:  # ReauthRequired: RFC 9470's challenge
        return refusal_response(exc, request)
    return session.user.user_id
