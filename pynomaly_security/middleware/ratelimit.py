"""Rate limiting as pure ASGI middleware, on the ``limits`` library's async API.

Counts live in our :class:`~pynomaly_security.storage.base.Store`, so with
Redis every worker and host shares them (a limit of N holds, not N x workers);
the default strategy is limits' sliding window counter (``limits.aio``).
Every answer carries the IETF ``RateLimit-Policy`` / ``RateLimit`` fields of
the most constrained policy; a refused request gets ``429`` with
``Retry-After``.

References: draft-ietf-httpapi-ratelimit-headers (RateLimit, RateLimit-Policy),
RFC 9110 section 10.2.3 (Retry-After), RFC 6585 section 4 (429).
"""

from __future__ import annotations

import hashlib
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Literal

from limits import RateLimitItem, parse_many
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from starlette.datastructures import MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pynomaly_security._context import RATE_LIMITED as REFUSED
from pynomaly_security._context import get_request_context, note_refusal
from pynomaly_security._log import get_logger
from pynomaly_security.exceptions import ConfigurationError, StorageError
from pynomaly_security.logsafe import safe_text
from pynomaly_security.middleware._asgi import Layer, passes_through
from pynomaly_security.network.client_ip import ClientIPResolver
from pynomaly_security.storage._limits import LimitsStorageAdapter
from pynomaly_security.storage.base import FailurePolicy, Store, failure_policy
from pynomaly_security.storage.memory import MemoryStore

if TYPE_CHECKING:
    from pynomaly_security.live import LiveSettings
    from pynomaly_security.settings import SecuritySettings

__all__ = ["RateLimitKey", "RateLimitMiddleware", "worker_count"]

log = get_logger(__name__)

RateLimitKey = Literal["ip", "user", "api_key", "route"]
UserKeyFunc = Callable[[Scope], str | None]
RejectHook = Callable[[Scope, str], Awaitable[None]]

RATE_LIMITED = "rate_limited"
STORE_UNAVAILABLE = "rate_limit_store_unavailable"
MEMORY_STORE_WITH_WORKERS = "rate_limit_memory_store_with_workers"


def worker_count(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Best guess of how many worker processes serve the app (1 if unknown).

    uvicorn and gunicorn read ``WEB_CONCURRENCY``; ``--workers N`` / ``-w N`` on
    the command line; a uvicorn/gunicorn worker is a child process, so being
    one means at least two processes may be counting separately.
    """
    argv = sys.argv if argv is None else argv
    env = os.environ if env is None else env
    counts = [1]
    if env.get("WEB_CONCURRENCY", "").isdigit():
        counts.append(int(env["WEB_CONCURRENCY"]))
    for i, arg in enumerate(argv):
        value = None
        if arg in ("--workers", "-w") and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--workers="):
            value = arg.split("=", 1)[1]
        if value is not None and value.isdigit():
            counts.append(int(value))
    if multiprocessing.parent_process() is not None:
        counts.append(2)
    return max(counts)


def _installed_user_key(scope: Scope) -> UserKeyFunc | None:
    """The bearer-token reader of the authenticator the app installed
    (``install_authenticator``): the middleware runs before the endpoint's
    dependencies, so it reads the token itself (signature and claims only)."""
    state = getattr(scope.get("app"), "state", None)
    authenticator = getattr(state, "pynomaly_auth", None)
    reader = getattr(authenticator, "user_id_from_scope", None)
    return reader if callable(reader) else None


def _parse(specs: Iterable[str], where: str) -> tuple[RateLimitItem, ...]:
    items: list[RateLimitItem] = []
    for spec in specs:
        try:
            items.extend(parse_many(spec))
        except ValueError as exc:
            raise ConfigurationError(
                f"{where}: {spec!r} is not a rate limit (e.g. '100/minute', '5 per second')"
            ) from exc
    return tuple(items)


def _policy_name(item: RateLimitItem) -> str:
    return f"{item.amount}-per-{item.multiples}-{item.GRANULARITY.name}"


class RateLimitMiddleware(Layer):
    """Refuse requests beyond configured limits with ``429``.

    Args:
        app: the ASGI app.
        store: shared state; a bounded :class:`MemoryStore` when omitted (one
            process only: with several workers start-up logs a warning).
        limits: default limits for every request, e.g. ``["100/minute"]``.
        route_limits: path (exact, or prefix ending in ``*``) -> limits that
            replace the default there, counted separately per route.
        account_route_limits: path (exact, or prefix ending in ``*``) -> limits
            counted per signed-in user (the ``user_key``), from any address, in
            addition to the route's own; a request without a user is not counted
            by them (the route's per-IP limit still applies). The login, sign-up
            and MFA defaults use them (issue 12).
        key: what is counted: client ``ip``, authenticated ``user`` (falls back
            to the IP), ``api_key`` (a hash of the ``X-API-Key`` header, falls
            back to the IP) or ``route`` (one budget for everyone on a route).
        exempt_paths: paths (or prefixes ending in ``*``) never limited.
        resolver: client IP resolver, used when no tracking middleware ran first.
        user_key: returns the user id of a request (e.g. from its bearer token);
            defaults to the authenticator installed on the app, then to the
            ``user_id`` of the request context.
        on_reject: awaited before a 429 is sent (report to the monitor).
        failure_policy: when the store fails: ``fail_open`` lets requests
            through (and logs), ``fail_closed`` answers ``503``.
        live: the stack's live settings: ``rate_limits``, ``route_rate_limits`` and
            ``rate_limit_exempt_paths`` of each new version replace ``limits``,
            ``route_limits`` and ``exempt_paths`` (:meth:`reconfigure`).
        auth_route_limits, auth_account_route_limits: a second table, counted per
            client IP (and per account) after this one's, never exempt and not
            changed live: the sign-up and MFA limits (issue 12). They are served by
            this layer rather than by a second one: a layer every request passes
            costs about 3,600 instructions under valgrind (``bench/overhead.py
            --components --instructions``), a table only its own routes.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        store: Store | None = None,
        limits: Sequence[str] = ("100/minute",),
        route_limits: Mapping[str, Sequence[str]] | None = None,
        account_route_limits: Mapping[str, Sequence[str]] | None = None,
        key: RateLimitKey = "ip",
        exempt_paths: Sequence[str] = (),
        resolver: ClientIPResolver | None = None,
        user_key: UserKeyFunc | None = None,
        api_key_header: str = "x-api-key",
        on_reject: RejectHook | None = None,
        failure_policy: FailurePolicy = "fail_open",
        live: LiveSettings | None = None,
        auth_route_limits: Mapping[str, Sequence[str]] | None = None,
        auth_account_route_limits: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        if key not in ("ip", "user", "api_key", "route"):
            raise ConfigurationError(f"key must be ip, user, api_key or route, got {key!r}")
        if failure_policy not in ("fail_open", "fail_closed"):
            raise ConfigurationError(
                f"failure_policy must be fail_open or fail_closed, got {failure_policy!r}"
            )
        self.app = app
        self.store: Store = store if store is not None else MemoryStore()
        self._owns_store = store is None
        self._limiter = SlidingWindowCounterRateLimiter(LimitsStorageAdapter(self.store))
        # The auth table: a limiter of its own (IP key, no exemptions) that this
        # one hands its routes to, in place of the app.
        self._auth: RateLimitMiddleware | None = None
        if auth_route_limits or auth_account_route_limits:
            self._auth = RateLimitMiddleware(
                app,
                store=self.store,
                limits=(),
                route_limits=auth_route_limits,
                account_route_limits=auth_account_route_limits,
                resolver=resolver,
                failure_policy=failure_policy,
            )
        self._next: ASGIApp = self._auth if self._auth is not None else app
        self.reconfigure(
            limits=limits,
            route_limits=route_limits,
            account_route_limits=account_route_limits,
            exempt_paths=exempt_paths,
        )
        self._key = key
        self._resolver = resolver or ClientIPResolver()
        self._user_key = user_key
        self._api_key_header = api_key_header.lower().encode("latin-1")
        self._on_reject = on_reject
        self._policy = failure_policy
        if live is not None:
            live.subscribe(self._apply_live)

    def _apply_live(self, settings: SecuritySettings) -> None:
        self.reconfigure(
            limits=settings.rate_limits,
            route_limits=settings.route_rate_limits,
            exempt_paths=settings.rate_limit_exempt_paths,
        )

    def reconfigure(
        self,
        *,
        limits: Sequence[str],
        route_limits: Mapping[str, Sequence[str]] | None = None,
        account_route_limits: Mapping[str, Sequence[str]] | None = None,
        exempt_paths: Sequence[str] = (),
    ) -> None:
        """Set the limits (at start-up, and for a live change): every table is parsed
        first and then set with no await in between, so a request sees the old limits
        or the new ones, never a mix. Counts already made are kept (a limit's counter
        is keyed by the limit itself, so a changed limit starts its own count)."""
        default = _parse(limits, "rate_limits")
        exact: dict[str, tuple[RateLimitItem, ...]] = {}
        prefixes: list[tuple[str, tuple[RateLimitItem, ...]]] = []
        for pattern, specs in (route_limits or {}).items():
            items = _parse(specs, f"route_rate_limits[{pattern!r}]")
            if pattern.endswith("*"):
                prefixes.append((pattern[:-1], items))
            else:
                exact[pattern] = items
        account_exact: dict[str, tuple[RateLimitItem, ...]] = {}
        account_prefixes: list[tuple[str, tuple[RateLimitItem, ...]]] = []
        for pattern, specs in (account_route_limits or {}).items():
            items = _parse(specs, f"account_route_limits[{pattern!r}]")
            if pattern.endswith("*"):
                account_prefixes.append((pattern[:-1], items))
            else:
                account_exact[pattern] = items
        self._exact = exact
        self._prefixes = tuple(sorted(prefixes, key=lambda p: -len(p[0])))  # longest wins
        self._account_exact = account_exact
        self._account_prefixes = tuple(sorted(account_prefixes, key=lambda p: -len(p[0])))
        # Without a default limit only the listed routes are counted: every other
        # request passes after one set lookup and one C-level prefix test (the
        # login/sign-up/MFA limits are installed by default, on the hot path).
        self._default = default
        self._only_routes = not default
        self._limited_exact = frozenset(exact) | frozenset(account_exact)
        self._limited_prefixes = tuple(p for p, _ in (*self._prefixes, *self._account_prefixes))
        if self._auth is not None:
            self._limited_exact |= self._auth._limited_exact
            self._limited_prefixes += self._auth._limited_prefixes
        self._exempt_exact = frozenset(p for p in exempt_paths if not p.endswith("*"))
        self._exempt_prefixes = tuple(p[:-1] for p in exempt_paths if p.endswith("*"))

    @classmethod
    def from_settings(
        cls, app: ASGIApp, settings: SecuritySettings, store: Store | None = None, **kwargs: object
    ) -> RateLimitMiddleware:
        """The middleware the settings describe (limits, key, exemptions, policy)."""
        return cls(
            app,
            store=store,
            limits=settings.rate_limits,
            route_limits=settings.route_rate_limits,
            key=settings.rate_limit_key,
            exempt_paths=settings.rate_limit_exempt_paths,
            resolver=ClientIPResolver.from_settings(settings),
            failure_policy=failure_policy(settings.store_failure_policy, "rate_limit"),
            **kwargs,  # type: ignore[arg-type]
        )

    @passes_through
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        kind = scope["type"]
        if kind != "http":
            if kind == "lifespan":
                receive = self._lifespan_receive(receive)
            return self.call_app(scope, receive, send)
        path: str = scope["path"]
        if (
            # Only listed routes counted (no default limit): the usual request
            # passes here, with no frame of this layer.
            self._only_routes
            and path not in self._limited_exact
            and not (self._limited_prefixes and path.startswith(self._limited_prefixes))
        ):
            return self.call_app(scope, receive, send)
        if path in self._exempt_exact or path.startswith(self._exempt_prefixes):
            return self._next(scope, receive, send)  # the auth table may still count it
        return self._limit(scope, receive, send, path)

    async def _limit(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        """A request to a limited route: counted, refused past its limit."""
        pattern, items = self._limits_for(path)
        account = (
            self._account_limits_for(path)
            if self._account_exact or self._account_prefixes
            else None
        )
        if not items and account is None:
            await self._next(scope, receive, send)
            return
        try:
            allowed, headers = True, dict[str, str]()
            if items:
                allowed, headers = await self._check(items, (pattern, self._identity(scope, path)))
            if allowed and account is not None:
                user = self._user(scope)
                if user is not None:
                    allowed, account_headers = await self._check(
                        account[1], ("account:" + account[0], "user:" + user)
                    )
                    if not allowed or not headers:
                        headers = account_headers
        except StorageError as exc:
            log.warning(STORE_UNAVAILABLE, policy=self._policy, error=safe_text(str(exc)))
            if self._policy == "fail_closed":
                note_refusal(scope, "rate_limit_unavailable", 503, repeating=True)
                response = JSONResponse(
                    {"detail": "rate limiting unavailable"}, 503, headers={"Retry-After": "1"}
                )
                await response(scope, receive, send)
            else:
                await self._next(scope, receive, send)
            return
        if not allowed:
            ctx = get_request_context(scope)
            if ctx is not None:
                ctx.extra[REFUSED] = True
            # One audit record per client per window, not one per refused request.
            note_refusal(scope, RATE_LIMITED, 429, repeating=True)
            if self._on_reject is not None:
                await self._on_reject(scope, RATE_LIMITED)
            log.info(RATE_LIMITED, path=safe_text(path), key_kind=self._key)  # path: attacker text
            response = JSONResponse({"detail": "rate limit exceeded"}, 429, headers=headers)
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                for name, value in headers.items():
                    response_headers.setdefault(name, value)
            await send(message)

        await self._next(scope, receive, send_with_headers)

    def _limits_for(self, path: str) -> tuple[str, tuple[RateLimitItem, ...]]:
        items = self._exact.get(path)
        if items is not None:
            return path, items
        for prefix, prefix_items in self._prefixes:
            if path.startswith(prefix):
                return prefix + "*", prefix_items
        return "*", self._default

    def _account_limits_for(self, path: str) -> tuple[str, tuple[RateLimitItem, ...]] | None:
        items = self._account_exact.get(path)
        if items is not None:
            return path, items
        for prefix, prefix_items in self._account_prefixes:
            if path.startswith(prefix):
                return prefix + "*", prefix_items
        return None

    def _user(self, scope: Scope) -> str | None:
        user_key = self._user_key or _installed_user_key(scope)
        user = user_key(scope) if user_key is not None else None
        if user is None:
            ctx = get_request_context(scope)
            user = ctx.user_id if ctx is not None else None
        return user

    def _identity(self, scope: Scope, path: str) -> str:
        if self._key == "route":
            return "route"
        if self._key == "user":
            user = self._user(scope)
            if user is not None:
                return "user:" + user
        elif self._key == "api_key":
            for name, value in scope.get("headers", ()):
                if name == self._api_key_header and value:
                    # Counted by a digest: the store (and Redis) never hold the key itself.
                    return "key:" + hashlib.sha256(value).hexdigest()[:32]
        ctx = get_request_context(scope)
        ip = ctx.client_ip if ctx is not None else self._resolver.resolve(scope)
        return "ip:" + (ip or "unknown")

    async def _check(
        self, items: Sequence[RateLimitItem], identity: tuple[str, str]
    ) -> tuple[bool, dict[str, str]]:
        allowed = True
        tightest: tuple[int, float, RateLimitItem] | None = None
        for item in items:
            # After one limit refuses, the others are read but not charged.
            if allowed and not await self._limiter.hit(item, *identity):
                allowed = False
            stats = await self._limiter.get_window_stats(item, *identity)
            if tightest is None or stats.remaining < tightest[0]:
                tightest = (stats.remaining, stats.reset_time, item)
        assert tightest is not None
        remaining, reset_time, item = tightest
        reset_in = max(1, math.ceil(reset_time - time.time()))
        name = _policy_name(item)
        headers = {
            "RateLimit-Policy": ", ".join(
                f'"{_policy_name(i)}";q={i.amount};w={i.get_expiry()}' for i in items
            ),
            "RateLimit": f'"{name}";r={0 if not allowed else remaining};t={reset_in}',
        }
        if not allowed:
            headers["Retry-After"] = str(reset_in)
        return allowed, headers

    def _lifespan_receive(self, receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.startup()
            elif message["type"] == "lifespan.shutdown" and self._owns_store:
                await self.store.aclose()
            return message

        return wrapped

    async def startup(self) -> None:
        """Open the store and warn when per-process counts would multiply limits."""
        await self.store.start()
        workers = worker_count()
        if not self.store.shared and workers > 1:
            log.warning(
                MEMORY_STORE_WITH_WORKERS,
                workers=workers,
                hint="set PYNOMALY_SECURITY__REDIS_URL so limits hold across workers",
            )
