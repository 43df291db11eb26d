"""Per-request facts the middlewares share, kept in ``scope["state"]``.

Starlette backs ``request.state`` with ``scope["state"]``; we use one
namespaced key so endpoints read ``request.state.pynomaly_security``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from starlette.types import Scope

__all__ = [
    "RATE_LIMITED",
    "REFUSED",
    "SQL_SINK",
    "STATE_KEY",
    "AccessRow",
    "Refusal",
    "RequestContext",
    "access_row",
    "get_request_context",
    "note_refusal",
]

STATE_KEY = "pynomaly_security"
RATE_LIMITED = "rate_limited"
"""``RequestContext.extra`` key the rate limiter sets on a request it refused:
the access audit skips it (a flood is not written one record at a time)."""
REFUSED = "refused"
"""``RequestContext.extra`` key: the :class:`Refusal` of a request the stack
answered itself because a security check hit a limit (a cap of inspection, an
unknown ``Host``, a rate limit, a lockout, a busy hashing pool). The audit layer
commits it as a ``request_refused`` record before the answer is sent."""
SQL_SINK = "sql_injection"
"""``RequestContext.extra`` key: the SQL sink's findings of the request (statements
a request value changed the structure of; their shapes with the value redacted),
set by the sink middleware before the response starts and committed by the audit
layer as an ``injection_attempt`` record."""


class Refusal(NamedTuple):
    """Why the stack refused a request: never request text, only fixed values."""

    reason: str
    """A fixed code (the README's caps table, ``rate_limited``, ``invalid_host``...)."""
    status: int
    """The HTTP status answered."""
    repeating: bool = False
    """A refusal a flood repeats (rate limits, lockouts, a busy or unavailable
    service): recorded once per client and reason per window, with the count of
    the ones in between, so a flood refused cheaply is not a flood of commits."""


@dataclass(slots=True, init=False)
class RequestContext:
    """Who made a request and how it is identified.

    Set by the tracking middleware (or lazily by any middleware that runs
    first); ``user_id`` may be filled in by the app's authentication later
    (``request.state.pynomaly_security.user_id = ...``).

    ``request_id`` is always the server's own; the client's ``X-Request-ID``
    (well-formed) is ``client_request_id``, a separate field a client cannot
    use to make two requests share an id.
    """

    request_id: str
    client_request_id: str | None
    client_ip: str | None
    user_id: str | None
    is_login_route: bool
    login_username: str | None
    extra: dict[str, Any]
    tenant: str | None
    """The request's tenant (issue 21), written by the tenancy layer for the layers
    outside it (tracking: activity rows, request events); None without tenancy."""

    # Written out rather than generated: built on every request, and the
    # dataclass __init__ spends as long again on its default-factory checks.
    def __init__(
        self,
        request_id: str,
        client_ip: str | None,
        is_login_route: bool = False,
        *,
        user_id: str | None = None,
        login_username: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.request_id = request_id
        self.client_request_id = None
        self.client_ip = client_ip
        self.user_id = user_id
        self.is_login_route = is_login_route
        self.login_username = login_username
        self.extra = {} if extra is None else extra
        self.tenant = None


def get_request_context(scope: Scope) -> RequestContext | None:
    state = scope.get("state")
    if state is None:
        return None
    ctx = state.get(STATE_KEY)
    return ctx if isinstance(ctx, RequestContext) else None


def note_refusal(scope: Scope, reason: str, status: int, *, repeating: bool = False) -> None:
    """Mark the request as refused by the stack (see :data:`REFUSED`); call it
    before sending the answer. Without a request context (a layer used alone)
    there is no audit layer to record it, and nothing is noted."""
    ctx = get_request_context(scope)
    if ctx is not None:
        ctx.extra[REFUSED] = Refusal(reason, status, repeating)


AccessRow = tuple[int, str, str, int, int, "str | None", "str | None", "str | None"]
"""One finished request: ``(ts_us, method, path, status_code, duration_us,
request_id, user_id, client_ip)``, times in whole microseconds. Built once per
request by the tracking layer and shared by the user tracker (activity) and the
audit logger, which stores it as it is (``audit/batch.py``): one tuple per
request instead of one per consumer."""


def access_row(
    started: float,
    method: str,
    path: str,
    status: int,
    elapsed: float,
    request_id: str | None,
    user_id: str | None,
    client_ip: str | None,
) -> AccessRow:
    """The row of a request that started at ``started`` (epoch s) and took ``elapsed`` s."""
    return (
        int(started * 1_000_000),
        method,
        path,
        status,
        int(elapsed * 1_000_000 + 0.5),
        request_id,
        user_id,
        client_ip,
    )
