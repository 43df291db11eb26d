"""Per-request facts the middlewares share, kept in ``scope["state"]``.

Starlette backs ``request.state`` with ``scope["state"]``; we use one
namespaced key so endpoints read ``request.state.pynomaly_security``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.types import Scope

__all__ = [
    "RATE_LIMITED",
    "REFUSED",
    "STATE_KEY",
    "AccessRow",
    "RequestContext",
    "access_row",
    "get_request_context",
]

STATE_KEY = "pynomaly_security"
RATE_LIMITED = "rate_limited"
"""``RequestContext.extra`` key the rate limiter sets on a request it refused:
the access audit skips it (a flood is not written one record at a time)."""
REFUSED = "refused"
"""``RequestContext.extra`` key: ``{"status", "reason"}`` of a request a layer refused
unread (``middleware/_refusal.py``); the audit layer commits it as a security record."""


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


def get_request_context(scope: Scope) -> RequestContext | None:
    state = scope.get("state")
    if state is None:
        return None
    ctx = state.get(STATE_KEY)
    return ctx if isinstance(ctx, RequestContext) else None


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
