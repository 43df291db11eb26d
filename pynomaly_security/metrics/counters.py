"""What one worker counts on the request path, in plain dicts, for the metrics.

The request path pays for a dict increment keyed by the matched route object
(``scope["route"]``, which Starlette's router leaves in the scope) and one test
that picks the rare requests: one with something in its request context (a block,
a refusal, an injection verdict), a 5xx, or one in ``latency_sample`` sampled for
the latency and added-time histograms. Everything else (route templates as label values, bucket
indexes, label caps) happens in :meth:`RequestCounts.drain`, which the metrics
hub calls from its background task and before a scrape.

Labels are bounded by construction: a route label is the template of one of the
app's routes (``/items/{item_id}``), or ``__unmatched__`` for a path no route
matched, never the path itself; families and refusal reasons are the stack's
fixed codes; an alert type is the detector's name. Each label is capped all the
same (:data:`MAX_LABEL_VALUES` values per label, the rest ``__other__``), so an
app that makes routes or alert types at run time cannot grow the exposition
without bound.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Mapping
from typing import Any

from starlette.routing import Match
from starlette.types import Scope

from pynomaly_security._context import REFUSED

__all__ = [
    "LATENCY_BUCKETS",
    "MAX_LABEL_VALUES",
    "NO_TENANT",
    "OTHER",
    "OVERHEAD_BUCKETS",
    "SCORE_BUCKETS",
    "SEP",
    "UNMATCHED",
    "RequestCounts",
    "route_label",
]

UNMATCHED = "__unmatched__"
OTHER = "__other__"
NO_TENANT = "__none__"
"""The tenant label of a request the tenancy layer named no tenant for (the platform's
paths, a request it refused)."""
SEP = "\t"
"""Separates a tally field's name from its label values (no template, family or
alert type holds a tab)."""
MAX_LABEL_VALUES = 256
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Seconds; Prometheus' base unit."""
SCORE_BUCKETS = (1.0, 2.0, 3.0, 5.0, 8.0, 10.0, 15.0, 20.0, 30.0, 50.0)
"""Anomaly scores (the blocking threshold is 5 at the default level)."""
_LATENCY_NS = tuple(int(b * 1e9) for b in LATENCY_BUCKETS)
OVERHEAD_BUCKETS = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025
)  # fmt: skip
"""Seconds the stack itself adds to a request (tens of microseconds usually)."""
_OVERHEAD_NS = tuple(int(b * 1e9) for b in OVERHEAD_BUCKETS)


def route_label(route: object) -> str:
    """The label value of a matched route: its template, else ``__unmatched__``."""
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


def _match_template(scope: Scope) -> object:
    """The route a request would have matched (for one refused before the router ran):
    only asked for rare requests (blocked, refused), never for the usual one."""
    routes = getattr(getattr(scope.get("app"), "router", None), "routes", None)
    for route in routes or ():
        try:
            match, _ = route.matches(scope)
        except Exception:  # noqa: S112  # an odd custom route: it names no template
            continue
        if match is not Match.NONE:
            return _selected(route, scope)
    return None


def _selected(route: object, scope: Scope, depth: int = 0) -> object:
    """The route a FastAPI router included with ``include_router`` would select (FastAPI
    0.16x keeps an included router as one entry; its ``_match`` names the route)."""
    select = getattr(route, "_match", None)
    if select is None or depth > 8:
        return route
    try:
        match, _, found, _ = select(scope)
    except Exception:  # another FastAPI's internals: the entry itself
        return route
    if found is None or match is Match.NONE:
        return route
    return _selected(found, scope, depth + 1)


class _Capped:
    """Label values seen, at most ``cap`` (:data:`MAX_LABEL_VALUES`); past it, ``__other__``."""

    def __init__(self, cap: int = MAX_LABEL_VALUES) -> None:
        self._seen: set[str] = set()
        self._cap = cap

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self._cap:
            return OTHER
        self._seen.add(value)
        return value


class RequestCounts:
    """One worker's request counts, filled by the stack's outer layer.

    Args:
        latency_sample: one request in this many (a power of two) enters the latency
            and added-time histograms; chosen when it starts, by the low bits of its
            start time in nanoseconds, which are uniform (no counter to keep, and no
            bias toward slow or fast requests).

    The outer layer (:class:`~pynomaly_security.middleware.stack.SecurityMiddleware`)
    does ``routes[scope.get("route")] += 1`` for every request and calls :meth:`note`
    for the rare ones (``ctx.extra``, a 5xx, or sampled: ``not started & sample_mask``,
    with the app's time from :class:`~pynomaly_security.metrics.apptime.AppTimer`).
    """

    def __init__(self, *, latency_sample: int = 64, tenant_labels: int | None = None) -> None:
        if latency_sample < 1 or latency_sample & (latency_sample - 1):
            raise ValueError("latency_sample must be a power of two")
        self.routes: dict[int, int] = {id(None): 0}
        """Requests per ``id()`` of the matched route object (``id(None)``: no route
        matched). A route's first request goes through :meth:`first`, which keeps the
        route (its id stays its own) and its label."""
        self._names: dict[int, str] = {id(None): UNMATCHED}
        self._keep: list[object] = []
        self.sample_mask = latency_sample - 1
        self.latency_sample = latency_sample
        self._rare: Counter[str] = Counter()
        self._labels = {name: _Capped() for name in ("route", "family", "type")}
        self.by_tenant = tenant_labels is not None
        """Tenancy on: requests are counted by route and tenant (:meth:`tenant_request`),
        blocks carry the tenant too; the tenants past ``tenant_labels`` are ``__other__``."""
        self._tenant = _Capped(tenant_labels or 0)
        self._tenant_routes: Counter[tuple[int, str | None]] = Counter()

    # -- the request path (rare requests only) -------------------------------------------
    def note(
        self,
        scope: Scope,
        route: object,
        extra: Mapping[str, Any],
        status: int,
        elapsed: int,
        app_ns: list[int] | None = None,
        tenant: str | None = None,
    ) -> None:
        """Count what a rare request carries: its block or refusal (by route and
        family or reason, and ``tenant`` with tenancy on), its injection score, a 5xx,
        and, when sampled (``app_ns``: the app's own nanoseconds), its duration
        (``elapsed`` nanoseconds) and the stack's part of it."""
        rare = self._rare
        if app_ns is not None:
            rare[f"latency{SEP}{bisect.bisect_left(_LATENCY_NS, elapsed)}"] += 1
            rare["latency_sum_ns"] += elapsed
            rare["latency_count"] += 1
            added = max(0, elapsed - app_ns[0])
            rare[f"overhead{SEP}{bisect.bisect_left(_OVERHEAD_NS, added)}"] += 1
            rare["overhead_sum_ns"] += added
            rare["overhead_count"] += 1
        if not extra and status < 500:
            return
        if route is None:
            route = _match_template(scope)
        label = self._labels["route"](route_label(route))
        if status >= 500:
            rare[f"errors{SEP}{label}"] += 1
        if self.by_tenant:
            label = f"{label}{SEP}{self._tenant_label(tenant)}"  # blocked: route, tenant, family
        inspection = extra.get("inspection")
        if inspection is not None:
            score = float(inspection.get("score") or 0)
            rare[f"score{SEP}{bisect.bisect_left(SCORE_BUCKETS, score)}"] += 1
            rare["score_sum_milli"] += int(score * 1000)
            rare["score_count"] += 1
            families = inspection.get("families") or ()
            action = "blocked" if inspection.get("blocked") else "detected"
            for family in families:
                family_label = self._labels["family"](str(family))
                rare[f"findings{SEP}{family_label}{SEP}{action}"] += 1
            if inspection.get("blocked"):
                for family in families or ("unknown",):
                    family_label = self._labels["family"](str(family))
                    rare[f"blocked{SEP}{label}{SEP}{family_label}"] += 1
        refusal = extra.get(REFUSED)
        if refusal is not None and inspection is None:
            reason = self._labels["family"](str(getattr(refusal, "reason", "refused")))
            rare[f"blocked{SEP}{label}{SEP}{reason}"] += 1
        sink = extra.get("sql_injection")
        if sink is not None and sink.get("blocked"):
            rare[f"blocked{SEP}{label}{SEP}sqli_sink"] += 1

    def _tenant_label(self, tenant: str | None) -> str:
        return self._tenant(tenant) if tenant is not None else NO_TENANT

    def tenant_request(self, tenant: str | None, route: object) -> None:
        """Count a request by route and ``tenant`` (the request context's; tenancy on:
        the request path's alternative to ``routes[id(route)] += 1``)."""
        key = id(route)
        if key not in self._names:
            key = self._remember(route)
        # The tenant as is; capped to a label at the drain, once per pair and flush
        # rather than once per request.
        self._tenant_routes[(key, tenant)] += 1

    def alert(self, alert_type: str, level: str) -> None:
        """Count a raised alert (the monitor's alert handler calls it)."""
        self._rare[f"alerts{SEP}{self._labels['type'](alert_type)}{SEP}{level}"] += 1

    # -- off the request path ---------------------------------------------------------------
    def drain(self) -> Counter[str]:
        """Everything counted since the last drain, as tally fields (``name<TAB>labels``),
        and zero the counts. No await inside: the request path cannot interleave."""
        out = self._rare
        self._rare = Counter()
        routes = self.routes
        if routes:
            items = list(routes.items())
            names = self._names
            for key, n in items:
                if n:
                    out[f"inspected{SEP}{names[key]}"] += n
                    routes[key] = 0  # the key stays: the next request is a plain increment
        if self._tenant_routes:
            by_tenant, self._tenant_routes = self._tenant_routes, Counter()
            for (key, tenant), n in by_tenant.items():
                label = self._tenant_label(tenant)
                out[f"inspected{SEP}{self._names[key]}{SEP}{label}"] += n
        return out

    def first(self, route: object) -> None:
        """Count the first request of a route object (the request path's ``KeyError``):
        keep the object, so its id is never reused, and its label; beyond
        :data:`MAX_LABEL_VALUES` routes the rest count as one ``__other__`` key."""
        key = self._remember(route)
        self.routes[key] = self.routes.get(key, 0) + 1

    def _remember(self, route: object) -> int:
        """Keep a route object and its label; its key in :attr:`routes`."""
        key = id(route)
        if len(self._keep) >= 4 * MAX_LABEL_VALUES:
            key = id(OTHER)
            self._names[key] = OTHER
        else:
            self._keep.append(route)
            self._names[key] = self._labels["route"](route_label(route))
        return key
