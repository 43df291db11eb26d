"""Runtime probes: requests through the whole app, in process (``httpx.ASGITransport``).

One :class:`ProbeSession` per full run sends, over HTTPS (so HSTS is due), to a host
the app answers to:

* ``GET`` every route without path parameters (at most :data:`MAX_ROUTES`), with no
  credential: the headers real responses carry, which routes answer anonymously, the
  cookies they set;
* ``GET`` of the admin routes (``/api/security/...``) without the admin key;
* ``GET`` of one path no route has, for the error body (404).

So that probes never pass for attacks or trip a defence: they use ``GET`` only,
never a login, sign-up, MFA, re-authentication, password or logout path (the
lockout and the login limits never count them), carry no credential (no key is
guessed), come from their own address (:data:`PROBE_CLIENT`, ``127.0.0.2``: the rate
limiter counts them apart from every real client, and the access records they leave in
the audit trail read as the validator's) and name themselves in the ``User-Agent``
(:data:`PROBE_AGENT`) for the app's own logs. A run sends one unknown path (the
scanner rule needs 30 a minute) and about as many requests as the app has such routes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from pynomaly_security.compliance.checks.base import CheckContext, CheckFn, CheckKind
from pynomaly_security.compliance.results import CheckResult, Status

__all__ = ["MAX_ROUTES", "PROBE_AGENT", "PROBE_CLIENT", "PROBE_KINDS", "ProbeSession"]

MAX_ROUTES = 50
PROBE_CLIENT = ("127.0.0.2", 50_000)
PROBE_AGENT = "pynomaly-compliance-probe/1 (+issue 19; no credentials, GET only)"
ADMIN_PREFIX = "/api/security"
_UNKNOWN = "/.well-known/pynomaly-compliance-probe-404"
_TRACE = re.compile(
    rb'Traceback \(most recent call last\)|File "[^"]+", line \d+|\bat [\w.$]+\([\w.]+:\d+\)'
)
_BODY_KEEP = 4096
P, F, NA, E = Status.PASS, Status.FAIL, Status.NOT_APPLICABLE, Status.ERROR
_HOW = (
    "GET through the whole app in process over HTTPS from 127.0.0.2, User-Agent "
    f"{PROBE_AGENT!r}, no credentials"
)


@dataclass(frozen=True, slots=True)
class Probe:
    path: str
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name]


def _matches(path: str, patterns: Iterable[str]) -> bool:
    for pattern in patterns:
        if pattern == "*" or path == pattern:
            return True
        if pattern.endswith("*") and path.startswith(pattern[:-1]):
            return True
    return False


def _avoid(settings: Any) -> list[str]:
    """Paths a probe never requests: where a request could count as a sign-in."""
    return [
        *settings.login_paths,
        *settings.signup_paths,
        *settings.mfa_paths,
        "/logout",
        "/logout-all",
        "/auth/logout",
        "/refresh",
        "/auth/refresh",
    ]


def app_routes(app: Any) -> list[tuple[str, frozenset[str], Any]]:
    """(path, methods, route) of the app's routes, mounted FastAPI/Starlette apps included."""
    out: list[tuple[str, frozenset[str], Any]] = []

    def walk(routes: Iterable[Any], prefix: str, depth: int) -> None:
        for route in routes:
            contexts = getattr(route, "effective_route_contexts", None)
            if callable(contexts):
                # FastAPI >= 0.16x keeps an included router as one entry; its effective
                # routes carry the full path, methods and dependencies.
                for ctx in contexts():
                    methods = getattr(ctx, "methods", None) or set()
                    out.append((prefix + ctx.path, frozenset(methods), ctx))
                continue
            path = getattr(route, "path", None)
            if path is None:
                continue
            methods = getattr(route, "methods", None)
            if methods is not None:
                out.append((prefix + path, frozenset(methods), route))
            sub = getattr(route, "routes", None)
            if sub is not None and depth < 3 and methods is None:
                walk(sub, prefix + path, depth + 1)

    walk(getattr(app, "routes", []), "", 0)
    return out


def probe_host(settings: Any) -> str:
    for host in settings.allowed_hosts:
        if "*" not in host:
            return str(host)
    return "localhost"


@dataclass(eq=False)
class ProbeSession:
    """The requests of one run, sent once and read by every probe check."""

    app: Any
    settings: Any
    probes: dict[str, Probe] = field(default_factory=dict)
    admin: dict[str, Probe] = field(default_factory=dict)
    unknown: Probe | None = None
    skipped: list[str] = field(default_factory=list)
    error: str | None = None
    _done: bool = False

    def plain_routes(self) -> list[str]:
        avoid = _avoid(self.settings)
        paths = []
        for path, methods, _route in app_routes(self.app):
            if "GET" not in methods or "{" in path or path.startswith(ADMIN_PREFIX):
                continue
            if _matches(path, avoid):
                self.skipped.append(path)
                continue
            if path not in paths:
                paths.append(path)
        return paths[:MAX_ROUTES]

    def admin_routes(self) -> list[str]:
        found = [
            path
            for path, methods, _ in app_routes(self.app)
            if path.startswith(ADMIN_PREFIX + "/") and "GET" in methods and "{" not in path
            and not path.startswith(ADMIN_PREFIX + "/health")
        ]  # fmt: skip
        return sorted(set(found))[:MAX_ROUTES]

    async def run(self) -> None:
        if self._done:
            return
        self._done = True
        # A route that raises is a 500 seen as the client sees it (its body is checked).
        transport = httpx.ASGITransport(
            app=self.app, client=PROBE_CLIENT, raise_app_exceptions=False
        )
        base = f"https://{probe_host(self.settings)}"
        try:
            async with httpx.AsyncClient(
                transport=transport, base_url=base, headers={"user-agent": PROBE_AGENT},
                timeout=30.0, follow_redirects=False,
            ) as client:  # fmt: skip
                for path in self.plain_routes():
                    self.probes[path] = await self._get(client, path)
                for path in self.admin_routes():
                    self.admin[path] = await self._get(client, path)
                self.unknown = await self._get(client, _UNKNOWN)
        except Exception as exc:  # the app raised: the checks report it as an error
            self.error = f"{type(exc).__name__}: {exc}"[:300]

    @staticmethod
    async def _get(client: httpx.AsyncClient, path: str) -> Probe:
        response = await client.get(path)
        return Probe(
            path,
            response.status_code,
            tuple((k.lower(), v) for k, v in response.headers.multi_items()),
            response.content[:_BODY_KEEP],
        )


async def _session(ctx: CheckContext) -> ProbeSession | None:
    if ctx.app is None:
        return None
    if ctx.probes is None:
        ctx.probes = ProbeSession(ctx.app, ctx.settings)
    await ctx.probes.run()
    return ctx.probes


def _no_app(ctx: CheckContext, cid: str) -> CheckResult:
    return ctx.result(cid, NA, "no application to probe", method="probe", how=_HOW)


def _errored(ctx: CheckContext, cid: str, session: ProbeSession) -> CheckResult:
    return ctx.result(cid, E, f"the probe failed: {session.error}", method="probe", how=_HOW)


_ProbeCheck = Callable[[CheckContext, str, Mapping[str, Any], ProbeSession], Awaitable[CheckResult]]


def _probed(check: _ProbeCheck) -> CheckFn:
    """A check that reads the probe session: not applicable without an app, an error
    result when the probes failed, else ``check`` with the session (run once per run)."""

    @functools.wraps(check)
    async def run(ctx: CheckContext, cid: str, params: Mapping[str, Any]) -> CheckResult:
        session = await _session(ctx)
        if session is None:
            return _no_app(ctx, cid)
        if session.error:
            return _errored(ctx, cid, session)
        return await check(ctx, cid, params, session)

    return run


def _max_age(value: str | None) -> int | None:
    if value is None:
        return None
    match = re.search(r"max-age=(\d+)", value, re.IGNORECASE)
    return int(match.group(1)) if match else None


@_probed
async def probe_headers(
    ctx: CheckContext, cid: str, params: Mapping[str, Any], session: ProbeSession
) -> CheckResult:
    floor = int(params["min_hsts_max_age"])
    forbidden = [str(x) for x in params.get("forbidden", [])]
    seen: dict[str, Any] = {}
    bad: dict[str, list[str]] = {}
    for path, probe in [*session.probes.items(), *session.admin.items()]:
        hsts, csp = (
            probe.header("strict-transport-security"),
            probe.header("content-security-policy"),
        )
        nosniff = probe.header("x-content-type-options")
        frames = probe.header("x-frame-options")
        seen[path] = {
            "status": probe.status, "strict-transport-security": hsts,
            "content-security-policy": csp, "x-content-type-options": nosniff,
            "x-frame-options": frames,
        }  # fmt: skip
        problems = []
        age = _max_age(hsts)
        if age is None or age < floor:
            problems.append("HSTS missing or max-age < " + str(floor))
        if csp is None:
            problems.append("no CSP")
        elif any(f in csp for f in forbidden):
            problems.append("CSP allows " + ", ".join(f for f in forbidden if f in csp))
        if (nosniff or "").lower() != "nosniff":
            problems.append("no X-Content-Type-Options: nosniff")
        if frames is None and "frame-ancestors" not in (csp or ""):
            problems.append("framing not restricted")
        if problems:
            bad[path] = problems
    if not seen:
        return ctx.result(cid, NA, "no route could be probed", method="probe", how=_HOW)
    summary = (
        f"{len(seen)} responses probed, all with HSTS (max-age >= {floor}), CSP, nosniff"
        if not bad
        else f"{len(bad)} of {len(seen)} responses lack required headers: "
        + "; ".join(f"{p}: {', '.join(v)}" for p, v in list(bad.items())[:5])
    )
    return ctx.result(
        cid, P if not bad else F, summary, observed={"responses": seen, "problems": bad},
        expected={"min_hsts_max_age": floor, "csp": "present", "forbidden": forbidden,
                  "x-content-type-options": "nosniff"},
        method="probe", how=_HOW,
    )  # fmt: skip


def _dependencies(route: Any) -> list[str]:
    """Names of a route's FastAPI dependencies (the router's included), depth first."""
    dependant = getattr(route, "dependant", None)
    names: list[str] = []
    pending = list(dependant.dependencies) if dependant is not None else []
    while pending:
        dep = pending.pop()
        call = getattr(dep, "call", None)
        if call is not None:
            names.append(getattr(call, "__name__", None) or type(call).__name__)
        pending.extend(dep.dependencies)
    return names


@_probed
async def probe_admin_auth(
    ctx: CheckContext, cid: str, params: Mapping[str, Any], session: ProbeSession
) -> CheckResult:
    if not session.admin:
        return ctx.result(
            cid, NA, f"no admin routes under {ADMIN_PREFIX} are mounted", method="probe",
            how=_HOW,
        )  # fmt: skip
    routes = {path: route for path, _m, route in app_routes(ctx.app)}
    answered = {p: pr.status for p, pr in session.admin.items()}
    # Pages that hold no data themselves (the dashboard's HTML asks for the key and then
    # calls the authenticated API) answer anyone; listed in the catalogue, shown apart.
    shells = {str(p) for p in params.get("page_shells", [])}
    open_ = sorted(p for p, st in answered.items() if st not in (401, 403) and p not in shells)
    deps = {p: _dependencies(routes.get(p)) for p in answered}
    no_dep = sorted(p for p, names in deps.items() if not names and p not in shells)
    ok = not open_ and not no_dep
    summary = (
        f"all {len(answered)} admin routes refuse a request without credentials (401/403) "
        "and declare an auth dependency"
        if ok
        else f"admin routes answering without credentials: {open_ or 'none'}; "
        f"without an auth dependency: {no_dep or 'none'}"
    )
    return ctx.result(
        cid, P if ok else F, summary,
        observed={"status_without_credentials": answered, "without_auth_dependency": no_dep,
                  "page_shells": sorted(shells & set(answered)),
                  "dependencies": {p: sorted(set(n)) for p, n in deps.items()}},
        expected={"status": [401, 403], "auth_dependency": True}, method="probe",
        how=_HOW + "; each route's FastAPI dependencies read for the admin key's",
    )  # fmt: skip


@_probed
async def probe_anonymous_routes(
    ctx: CheckContext, cid: str, params: Mapping[str, Any], session: ProbeSession
) -> CheckResult:
    public = [str(p) for p in params.get("public_paths", ["*"])]
    anonymous = sorted(p for p, pr in session.probes.items() if 200 <= pr.status < 400)
    refused = sorted(p for p, pr in session.probes.items() if pr.status in (401, 403))
    undeclared = [p for p in anonymous if not _matches(p, public)]
    return ctx.result(
        cid, F if undeclared else P,
        f"{len(anonymous)} routes answer without authentication"
        + (f", not declared public: {undeclared}" if undeclared else ", all declared public"),
        observed={"anonymous": anonymous, "refused_without_credentials": refused,
                  "not_probed": session.skipped, "undeclared": undeclared},
        expected={"public_paths": public}, method="probe", how=_HOW,
    )  # fmt: skip


@_probed
async def probe_error_bodies(
    ctx: CheckContext, cid: str, params: Mapping[str, Any], session: ProbeSession
) -> CheckResult:
    debug = bool(getattr(ctx.app, "debug", False))
    traces = [
        p.path
        for p in [*session.probes.values(), *session.admin.values(), session.unknown]
        if p is not None and p.status >= 400 and _TRACE.search(p.body)
    ]
    unknown = session.unknown
    ok = not debug and not traces
    return ctx.result(
        cid, P if ok else F,
        ("error bodies carry no stack trace; debug off" if ok else
         f"debug={debug}; stack traces in: {traces or 'none'}"),
        observed={"app_debug": debug, "with_stack_trace": traces,
                  "unknown_path": {"status": unknown.status,
                                   "body": unknown.body[:200].decode("utf-8", "replace")}
                  if unknown else None},
        expected={"app_debug": False, "stack_traces": 0}, method="probe",
        how=_HOW + f"; error bodies searched for traceback patterns; {_UNKNOWN} for a 404",
    )  # fmt: skip


def _cookie_flags(value: str) -> dict[str, Any]:
    parts = [p.strip() for p in value.split(";")]
    name = parts[0].split("=", 1)[0]
    attrs = {p.split("=", 1)[0].lower(): (p.split("=", 1)[1] if "=" in p else True) for p in
             parts[1:] if p}  # fmt: skip
    return {
        "name": name,
        "secure": "secure" in attrs,
        "httponly": "httponly" in attrs,
        "samesite": str(attrs.get("samesite", "")) or None,
    }


@_probed
async def probe_cookies(
    ctx: CheckContext, cid: str, params: Mapping[str, Any], session: ProbeSession
) -> CheckResult:
    cookies = [
        {"path": p.path, **_cookie_flags(v)}
        for p in [*session.probes.values(), *session.admin.values()]
        for v in p.all("set-cookie")
    ]
    secure_setting = not ctx.settings.development_mode
    if not cookies:
        return ctx.result(
            cid, NA,
            "no probed response set a cookie (the device cookie of sign-in is set Secure "
            f"{'on' if secure_setting else 'off'} by the settings)",
            observed={"cookies": [], "device_cookie_secure": secure_setting},
            method="probe", how=_HOW,
        )  # fmt: skip
    bad = [c for c in cookies if not (c["secure"] and c["httponly"] and c["samesite"])]
    return ctx.result(
        cid, F if bad else P,
        f"{len(cookies)} cookies seen" + (f", {len(bad)} without Secure/HttpOnly/SameSite"
                                          if bad else ", all Secure, HttpOnly and SameSite"),
        observed={"cookies": cookies}, expected={"secure": True, "httponly": True,
                                                 "samesite": "set"},
        method="probe", how=_HOW,
    )  # fmt: skip


async def rate_limited_routes(
    ctx: CheckContext, cid: str, params: Mapping[str, Any]
) -> CheckResult:
    """Which routes a limit applies to, read from the rate limiter's configuration
    (exhausting a limit to see it would be an attack on the app)."""
    if ctx.app is None:
        return _no_app(ctx, cid)
    s = ctx.settings
    scope = params.get("scope", "auth")
    on = s.rate_limit_enabled
    auth_on = on and s.auth_rate_limits_enabled
    auth_patterns = [*s.login_paths, *s.signup_paths, *s.mfa_paths]
    routes = sorted(
        {p for p, m, _ in app_routes(ctx.app) if m & {"GET", "POST", "PUT", "PATCH", "DELETE"}}
    )

    def limited(path: str) -> str | None:
        if not on:
            return None
        if auth_on and _matches(path, auth_patterns):
            return "login/sign-up/MFA limits" + (
                " and the lockout" if _matches(path, s.login_paths) else ""
            )
        if _matches(path, list(s.route_rate_limits)):
            return "route limit"
        if s.rate_limits and not _matches(path, s.rate_limit_exempt_paths):
            return "global limit " + ", ".join(s.rate_limits)
        return None

    table = {p: limited(p) for p in routes}
    wanted = [p for p in routes if _matches(p, auth_patterns)] if scope == "auth" else routes
    unlimited = [p for p in wanted if table[p] is None]
    what = "authentication " if scope == "auth" else ""
    if not wanted:
        return ctx.result(
            cid, NA, "the app has no login, sign-up or MFA route", method="probe",
            observed={"routes": len(routes)}, how="the app's routes read against the limits",
        )  # fmt: skip
    return ctx.result(
        cid, F if unlimited else P,
        f"{len(wanted) - len(unlimited)} of {len(wanted)} {what}routes rate-limited"
        + (f"; without a limit: {unlimited[:10]}" if unlimited else ""),
        observed={"limits": {p: table[p] for p in wanted}, "unlimited": unlimited,
                  "rate_limit_enabled": s.rate_limit_enabled,
                  "auth_rate_limits_enabled": s.auth_rate_limits_enabled},
        expected={"scope": scope, "unlimited": 0}, method="probe",
        how="the app's routes read against the rate limiter's effective configuration",
    )  # fmt: skip


PROBE_KINDS: dict[str, CheckKind] = {
    "probe_headers": CheckKind(probe_headers, "full"),
    "probe_admin_auth": CheckKind(probe_admin_auth, "full"),
    "probe_anonymous_routes": CheckKind(probe_anonymous_routes, "full"),
    "probe_error_bodies": CheckKind(probe_error_bodies, "full"),
    "probe_cookies": CheckKind(probe_cookies, "full"),
    "rate_limited_routes": CheckKind(rate_limited_routes, "full"),
}
