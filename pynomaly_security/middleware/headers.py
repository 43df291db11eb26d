"""Security response headers, following current OWASP/MDN guidance.

References:
    - OWASP Secure Headers Project (recommended values, 2024).
    - MDN: Strict-Transport-Security, Content-Security-Policy, X-Content-Type-Options,
      X-Frame-Options, Referrer-Policy, Permissions-Policy,
      Cross-Origin-Opener-Policy, Cross-Origin-Resource-Policy.
    - Not sent: ``X-XSS-Protection`` (the XSS auditor is gone from every current
      browser, and ``1`` made pages exploitable; MDN: avoid it, rely on CSP) and
      ``X-Permitted-Cross-Domain-Policies`` (Flash/Acrobat only). Each header
      costs ~1 µs to serialise in uvicorn, so only headers that act are sent.

The CSP is chosen per response: JSON and other non-HTML answers get the
tightest policy (``default-src 'none'``), HTML pages a same-origin policy, and
the interactive API docs (FastAPI's ``/docs``, ``/redoc``) a policy that allows
their CDN assets and exactly the inline scripts they serve, by hash.
Headers the application set itself are left alone.

Docs pages are found wherever they are mounted: the app's ``docs_url``,
``redoc_url`` and OAuth2 redirect URL, the same of every FastAPI app mounted in
it (``app.mount("/v1", v1)`` serves ``/v1/docs``), and the paths named in
``extra_docs_paths`` (a self-hosted page built with ``get_swagger_ui_html`` and
local asset URLs at a path of the app's choosing). A docs page's HTML is
buffered (up to 512 KB) and the SHA-256 of each inline script it contains goes
into its CSP: the hash is computed from the response, so any page the app
serves there works, whatever its template; the price is that a page named as a
docs page must not reflect request input into its HTML (an injected inline
script would be hashed too). ``docs_asset_origins`` adds the origins a
self-hosted page loads its assets from when that is not the app itself.

JSON answers (``application/json``, ``*+json``) get the set the OWASP REST
Security Cheat Sheet lists for API responses (``X-Content-Type-Options``,
``X-Frame-Options``, the CSP with ``frame-ancestors 'none'``, HSTS) plus
``Cross-Origin-Resource-Policy``, which guards any resource against
cross-origin reads. ``Referrer-Policy``, ``Permissions-Policy`` and COOP act
only on documents (links, features, browsing-context groups), so they go on
every other response but not on JSON, which a browser never runs as a page:
three headers less on the hot path of an API (uvicorn validates and
serialises each header, ~0.3 µs plus the length of the value).

Cross-Origin-Opener-Policy is ``same-origin`` everywhere except on the docs:
Swagger UI's OAuth2 "Authorize" opens a popup to the (cross-origin)
authorization server, which redirects back to ``/docs/oauth2-redirect``, whose
script hands the code to ``window.opener``. ``same-origin`` on ``/docs`` puts
that popup in another browsing context group (no opener, the flow fails), and
so does any COOP on the redirect page (a COOP mismatch on navigation also
severs it). So the docs pages send ``same-origin-allow-popups`` (they keep the
popups they open, and stay isolated from pages that open them) and the
redirect page sends none; it is a single hashed inline script that talks only
to its same-origin opener.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterable
from typing import TypedDict, Unpack

from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.network.client_ip import ClientIPResolver

__all__ = [
    "DEFAULT_API_CSP",
    "DEFAULT_DOCS_CSP",
    "DEFAULT_HTML_CSP",
    "DEFAULT_JSON_CSP",
    "HeaderPolicy",
    "SecurityHeadersMiddleware",
    "check_source",
]

DEFAULT_API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# JSON is never a document with forms or a <base>: the OWASP REST cheat sheet's pair.
DEFAULT_JSON_CSP = "default-src 'none'; frame-ancestors 'none'"
DEFAULT_HTML_CSP = (
    "default-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'; "
    "form-action 'self'"
)
# Swagger UI and ReDoc as FastAPI serves them: assets from jsDelivr, the favicon
# from fastapi.tiangolo.com, ReDoc's fonts from Google and its web worker from a
# blob: URL; inline <script> blocks are allowed by hash ({script_hashes}).
# 'unsafe-inline' for styles only: ReDoc (styled-components) and Swagger UI inject
# <style> elements and style attributes at run time, which hashes cannot cover.
# tests/browser/test_docs_render.py loads both pages in Chromium under this policy.
DEFAULT_DOCS_CSP = (
    "default-src 'self'; "
    "script-src 'self' https://cdn.jsdelivr.net {script_hashes}; "
    "style-src 'self' https://cdn.jsdelivr.net https://fonts.googleapis.com 'unsafe-inline'; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "font-src 'self' https://fonts.gstatic.com; "
    "worker-src 'self' blob:; connect-src 'self'; "
    "object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'"
)
_COOP = b"cross-origin-opener-policy"
_HSTS = b"strict-transport-security"
_CSP = b"content-security-policy"
_MAX_BLOCKS = 64
# Headers that act only when the response is rendered as a document.
_DOCUMENT_ONLY = frozenset({b"referrer-policy", b"permissions-policy", _COOP})
_MAX_DOCS_BODY = 512 * 1024
_SECURE_SCHEMES = ("https", "wss")
_NO_APP = object()  # no app's docs paths read yet
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S | re.I)
# Directives of the docs policy that take the asset origins (docs_asset_origins).
_ASSET_DIRECTIVES = ("script-src", "style-src", "img-src", "font-src")
_SOURCE = re.compile(r"https?://(?:\*\.)?[A-Za-z0-9.-]+(?::[0-9]{1,5})?/?")
# How deep mounted apps are searched for their docs pages (mounts inside mounts).
_MAX_MOUNT_DEPTH = 4


def check_source(origin: str) -> str:
    """``origin`` if it is a CSP host source this module accepts for docs assets
    (``https://static.example.com``, ``https://*.example.com:8443``); else
    :class:`~pynomaly_security.ConfigurationError` naming it."""
    if _SOURCE.fullmatch(origin) is None:
        raise ConfigurationError(
            f"docs asset origin {origin!r} is not an origin: use scheme://host[:port], "
            "e.g. https://static.example.com"
        )
    return origin


def _with_origins(policy: str, origins: tuple[str, ...]) -> str:
    """``policy`` with ``origins`` added to its script, style, image and font sources."""
    if not origins:
        return policy
    extra = " ".join(origins)
    parts = []
    for directive in policy.split(";"):
        name = directive.strip().split(" ", 1)[0]
        parts.append(f"{directive.rstrip()} {extra}" if name in _ASSET_DIRECTIVES else directive)
    return ";".join(parts)


def _docs_urls(app: object, prefix: str, depth: int) -> tuple[set[str], set[str]]:
    """(docs page paths, OAuth2 redirect paths) of a FastAPI app served under
    ``prefix``, and of the FastAPI apps mounted in it."""
    redirect = {prefix + p for p in [getattr(app, "swagger_ui_oauth2_redirect_url", None)] if p}
    own = (getattr(app, "docs_url", None), getattr(app, "redoc_url", None))
    pages = {prefix + p for p in own if p}
    if depth < _MAX_MOUNT_DEPTH:
        for route in getattr(app, "routes", None) or ():
            if isinstance(route, Mount) and "{" not in route.path and route.path:
                inner = getattr(route, "app", None)
                if inner is None:
                    continue
                more_pages, more_redirect = _docs_urls(inner, prefix + route.path, depth + 1)
                pages |= more_pages
                redirect |= more_redirect
    return pages, redirect


class HeaderPolicy:
    """What the security headers are for each response: the common headers, the CSP
    by content type (the docs pages' with their inline scripts hashed), HSTS on
    HTTPS requests. Used by :class:`SecurityHeadersMiddleware`, by the stack's
    fused layer (:class:`~pynomaly_security.middleware.stack.SecurityMiddleware`)
    and by the 500 of an unhandled exception (:mod:`.errors`).

    Args:
        hsts: send ``Strict-Transport-Security`` on responses to HTTPS requests
            (RFC 6797 §7.2: never over plain HTTP, where a browser ignores it).
        hsts_max_age: its ``max-age`` in seconds.
        resolver: the trusted-proxy resolver; behind a TLS-terminating proxy it
            lets a trusted proxy's ``X-Forwarded-Proto: https`` (or
            ``Forwarded: proto=https``) count as HTTPS. Without one only the
            ASGI ``scheme`` counts (servers such as uvicorn set it from the
            proxy headers of the proxies they trust).
        csp: send ``Content-Security-Policy``.
        api_csp, json_csp, html_csp, docs_csp: the policies for non-HTML, JSON,
            HTML and docs responses (``docs_csp`` may contain ``{script_hashes}``).
        docs_paths: paths served with ``docs_csp``; ``None`` reads FastAPI's
            ``docs_url``, ``redoc_url`` and OAuth2 redirect URL from the app and
            from the FastAPI apps mounted in it.
        extra_docs_paths: more docs pages (self-hosted Swagger UI or ReDoc at
            paths of the app's choosing), added to those.
        docs_asset_origins: origins the docs pages may load scripts, styles,
            images and fonts from besides the app and FastAPI's CDNs.
    """

    def __init__(
        self,
        *,
        hsts: bool = True,
        hsts_max_age: int = 31_536_000,
        csp: bool = True,
        api_csp: str = DEFAULT_API_CSP,
        json_csp: str = DEFAULT_JSON_CSP,
        html_csp: str = DEFAULT_HTML_CSP,
        docs_csp: str = DEFAULT_DOCS_CSP,
        docs_paths: Iterable[str] | None = None,
        extra_docs_paths: Iterable[str] = (),
        docs_asset_origins: Iterable[str] = (),
        resolver: ClientIPResolver | None = None,
    ) -> None:
        # Whether a trusted proxy says the request came over HTTPS; None: none trusted.
        self._forwarded_https: Callable[[Scope], bool] | None = None
        if resolver is not None and resolver.trusts_forwarding:
            self._forwarded_https = resolver.forwarded_https
        common: list[tuple[bytes, bytes]] = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (
                b"permissions-policy",
                b"accelerometer=(), camera=(), geolocation=(), gyroscope=(), "
                b"magnetometer=(), microphone=(), payment=(), usb=()",
            ),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"cross-origin-resource-policy", b"same-origin"),
        ]
        self.common_headers = tuple(common)
        """The headers every (non-docs) response gets, CSP and HSTS aside."""
        # for_request's answers to a usual request, over HTTP and over HTTPS.
        self._usual = ((self.common_headers, False, False), (self.common_headers, False, True))
        self._json_common = tuple(item for item in common if item[0] not in _DOCUMENT_ONLY)
        # The docs variants of the common headers (see the module docstring, COOP).
        self._docs_common = tuple(
            (name, b"same-origin-allow-popups") if name == _COOP else (name, value)
            for name, value in common
        )
        self._redirect_common = tuple(item for item in common if item[0] != _COOP)
        self._api_csp = api_csp.encode()
        self._json_csp = json_csp.encode()
        self._html_csp = html_csp.encode()
        self._docs_csp = _with_origins(docs_csp, tuple(map(check_source, docs_asset_origins)))
        self._docs_paths = frozenset(docs_paths) if docs_paths is not None else None
        self._extra_docs_paths = frozenset(extra_docs_paths)
        # The docs paths read from the last app seen (scope["app"]): FastAPI fixes
        # docs_url/redoc_url before it serves, so this is configuration, computed
        # once per app instead of on every request.
        self._docs_for: tuple[object, frozenset[str], frozenset[str]] = (
            _NO_APP,
            frozenset(),
            frozenset(),
        )
        # Every name a block may hold: an app that set one of them itself keeps its own.
        self._block_names = frozenset(name for name, _ in common) | {_HSTS, _CSP}
        # Tuples of response header names known lowercase and free of _block_names.
        self._plain_names: set[tuple[bytes, ...]] = set()
        self.reconfigure(hsts=hsts, hsts_max_age=hsts_max_age, csp=csp)

    def reconfigure(self, *, hsts: bool, hsts_max_age: int, csp: bool) -> None:
        """Switch HSTS and the CSP, set HSTS's max-age (at start-up, and for a live
        change); the blocks built for earlier responses are dropped."""
        if hsts_max_age < 0:
            raise ConfigurationError(f"hsts_max_age must be >= 0, got {hsts_max_age}")
        self._hsts: tuple[bytes, bytes] | None = (
            (_HSTS, f"max-age={hsts_max_age}; includeSubDomains".encode()) if hsts else None
        )
        self.csp = csp
        self._blocks: dict[tuple[bytes, bool], tuple[tuple[bytes, bytes], ...]] = {}

    def _block(
        self,
        content_type: bytes,
        secure: bool,
        docs: tuple[tuple[tuple[bytes, bytes], ...], bytes | None] | None = None,
    ) -> tuple[tuple[bytes, bytes], ...]:
        """Every header a response of this content type gets: cached for non-docs
        responses; ``docs`` is a docs page's (variant of the common headers, hashed
        CSP or ``None``), not cached."""
        json = docs is None and _is_json(content_type)
        if docs is None:
            block = list(self._json_common if json else self.common_headers)
        else:
            block = list(docs[0])
        if self.csp:
            if docs is not None and docs[1] is not None:
                policy = docs[1]
            elif json:
                policy = self._json_csp
            elif content_type.startswith(b"text/html"):
                policy = self._html_csp
            else:
                policy = self._api_csp
            block.append((_CSP, policy))
        if secure and self._hsts is not None:
            block.append(self._hsts)
        if docs is not None:
            return tuple(block)
        if len(self._blocks) >= _MAX_BLOCKS:
            self._blocks.clear()  # content types are the app's few; bounded all the same
        result = self._blocks[(content_type, secure)] = tuple(block)
        return result

    def _paths_of(self, app: object) -> tuple[frozenset[str], frozenset[str]]:
        """(docs paths, OAuth2 redirect paths) of ``app``, read from it and kept in
        ``_docs_for`` (:meth:`for_request` looks there first)."""
        pages, redirects = _docs_urls(app, "", 0)
        redirect = frozenset(redirects)
        if self._docs_paths is not None:
            paths = self._docs_paths | self._extra_docs_paths
        else:
            paths = frozenset(pages) | redirect | self._extra_docs_paths
        self._docs_for = (app, paths, redirect)
        return paths, redirect

    def docs_responder(
        self, send: Send, common: tuple[tuple[bytes, bytes], ...], secure: bool
    ) -> Send:
        """A ``send`` that buffers a docs page and adds its headers and hashed CSP."""
        return _DocsResponder(self, send, common, secure).on_send

    def is_secure(self, scope: Scope) -> bool:
        """Whether the request came over HTTPS (the scheme, or a trusted proxy's word)."""
        return scope.get("scheme") in ("https", "wss") or (
            self._forwarded_https is not None and self._forwarded_https(scope)
        )

    def for_request(self, scope: Scope) -> tuple[tuple[tuple[bytes, bytes], ...], bool, bool]:
        """``(common, buffered, secure)`` for a request: the common headers its
        response gets (the docs variant on a docs path), whether the response is a
        docs page to buffer for its hashed CSP (:meth:`docs_responder`), and whether
        the request came over HTTPS (:meth:`is_secure`). One call per request."""
        docs = self._docs_for
        path: str = scope["path"]
        if (
            docs[0] is scope.get("app")
            and path not in docs[1]
            and not scope.get("root_path")
            and self._forwarded_https is None
        ):
            # The usual request (no docs page, no proxy to ask): answers made once.
            return self._usual[scope.get("scheme") in _SECURE_SCHEMES]
        forwarded = self._forwarded_https
        secure = scope.get("scheme") in _SECURE_SCHEMES or (
            forwarded is not None and forwarded(scope)
        )
        app, paths, redirect = docs
        if app is not scope.get("app"):
            paths, redirect = self._paths_of(scope.get("app"))
        root = scope.get("root_path")
        if root and path.startswith(root):
            path = path[len(root) :]
        if path not in paths:
            return self.common_headers, False, secure
        common = self._redirect_common if path in redirect else self._docs_common
        return common, self.csp, secure

    def apply(
        self,
        message: Message,
        common: tuple[tuple[bytes, bytes], ...],
        secure: bool,
        extra: tuple[bytes, bytes] | None = None,
        docs_csp: bytes | None = None,
    ) -> None:
        """Add the headers to an ``http.response.start`` message (and ``extra``,
        e.g. ``X-Request-ID``, unless the app set it); HSTS only when ``secure``;
        ``docs_csp`` is a docs page's hashed policy."""
        raw = message.get("headers", ())
        if type(raw) is not list:
            raw = list(raw)
        names = dict(raw)  # in C: the app's header names, and its content type
        seen = tuple(names)
        if seen in self._plain_names:
            # Names seen before, all lowercase and none of ours (an app answers with a
            # few sets of names): one tuple and one set lookup instead of the lowercase
            # check and the clash test on every response (about 1,650 instructions
            # per response under valgrind).
            clash = False
        else:
            lowered = _header_names(raw, names)
            clash = not self._block_names.isdisjoint(lowered)
            if lowered is names and not clash:
                if len(self._plain_names) >= _MAX_BLOCKS:
                    self._plain_names.clear()  # bounded: the names are the app's few
                self._plain_names.add(seen)
            names = lowered
        content_type = names.get(b"content-type", b"")
        if common is self.common_headers and docs_csp is None:
            # The usual case: everything this response gets depends only on its
            # content type and the scheme, so it is built once per pair and kept.
            block = self._blocks.get((content_type, secure))
            if block is None:
                block = self._block(content_type, secure)
        else:
            block = self._block(content_type, secure, (common, docs_csp))
        if not clash and (extra is None or extra[0] not in names):
            message["headers"] = [*raw, *block, extra] if extra is not None else [*raw, *block]
            return
        # The app set some of these headers itself: it keeps its own.
        merged = [*raw, *(item for item in block if item[0] not in names)]
        if extra is not None and extra[0] not in names:
            merged.append(extra)
        message["headers"] = merged


def _header_names(
    raw: list[tuple[bytes, bytes]], names: dict[bytes, bytes] | None = None
) -> dict[bytes, bytes]:
    """A response's headers by name (``names``: ``dict(raw)`` when already built).
    ASGI response header names are lowercase by spec; a non-conforming app's
    names (``islower()`` false) are lowered, so its ``Content-Type`` or
    ``X-Frame-Options`` is seen as the one it is."""
    if names is None:
        names = dict(raw)
    if b"".join(names).islower():
        return names
    return {name.lower(): value for name, value in raw}


class _PolicyOptions(TypedDict, total=False):
    """:class:`HeaderPolicy`'s options, also taken by :class:`SecurityHeadersMiddleware`."""

    hsts: bool
    hsts_max_age: int
    csp: bool
    api_csp: str
    json_csp: str
    html_csp: str
    docs_csp: str
    docs_paths: Iterable[str] | None
    extra_docs_paths: Iterable[str]
    docs_asset_origins: Iterable[str]
    resolver: ClientIPResolver | None


class SecurityHeadersMiddleware:
    """Add security headers to every HTTP response without buffering bodies.

    Args:
        app: the ASGI app.
        policy: the headers (:class:`HeaderPolicy`); or its options given here
            (``hsts=``, ``csp=``, ``resolver=``...), not both.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        policy: HeaderPolicy | None = None,
        **options: Unpack[_PolicyOptions],
    ) -> None:
        if policy is not None and options:
            raise ConfigurationError(
                "SecurityHeadersMiddleware takes a policy or its options, not both: "
                f"got policy= and {', '.join(sorted(options))}"
            )
        self.app = app
        self.policy = policy if policy is not None else HeaderPolicy(**options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = self.policy
        common, buffered, secure = policy.for_request(scope)
        if buffered:
            await self.app(scope, receive, policy.docs_responder(send, common, secure))
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                policy.apply(message, common, secure)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _is_html(message: Message) -> bool:
    content_type = _header_names(list(message.get("headers", ()))).get(b"content-type", b"")
    return bytes(content_type).split(b";", 1)[0].strip().lower() == b"text/html"


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")


class _DocsResponder:
    """Buffers a (small) docs page to hash its inline scripts into the CSP."""

    def __init__(
        self,
        owner: HeaderPolicy,
        send: Send,
        common: tuple[tuple[bytes, bytes], ...],
        secure: bool,
    ) -> None:
        self.owner = owner
        self.send = send
        self.common = common
        self.secure = secure
        self.start: Message | None = None
        self.chunks: list[bytes] = []
        self.size = 0
        self.passthrough = False

    async def on_send(self, message: Message) -> None:
        if self.passthrough:
            await self.send(message)
            return
        if message["type"] == "http.response.start":
            if not _is_html(message):
                # Not a page (a JSON 404, a redirect...): the usual headers, streamed.
                self.owner.apply(message, self.owner.common_headers, self.secure)
                self.passthrough = True
                await self.send(message)
                return
            self.start = message
            return
        if message["type"] != "http.response.body" or self.start is None:
            await self.send(message)
            return
        self.chunks.append(message.get("body", b""))
        self.size += len(self.chunks[-1])
        if self.size > _MAX_DOCS_BODY:
            # Not a docs page we know: fall back to the HTML policy and stream on.
            self.owner.apply(self.start, self.common, self.secure)
            self.passthrough = True
            await self.send(self.start)
            await self.send({**message, "body": b"".join(self.chunks)})
            return
        if message.get("more_body", False):
            return
        body = b"".join(self.chunks)
        hashes = " ".join(
            "'sha256-" + base64.b64encode(hashlib.sha256(m.group(1)).digest()).decode() + "'"
            for m in _INLINE_SCRIPT.finditer(body)
        )
        policy = self.owner._docs_csp.replace("{script_hashes}", hashes)
        policy = policy.replace("  ", " ").replace(" ;", ";")
        self.owner.apply(self.start, self.common, self.secure, docs_csp=policy.encode())
        await self.send(self.start)
        await self.send({"type": "http.response.body", "body": body, "more_body": False})
