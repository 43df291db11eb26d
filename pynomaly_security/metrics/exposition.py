"""The Prometheus exposition: a custom collector over one scrape's snapshot.

Each scrape builds a :class:`~prometheus_client.registry.CollectorRegistry` of its
own holding one :class:`SnapshotCollector` (never the global default registry, so
the host app's metrics and ours never collide), and renders it in the format the
scraper asked for (``Accept``: OpenMetrics or the Prometheus text format, through
``prometheus_client.exposition.choose_encoder``). Names follow the Prometheus
conventions: ``pynomaly_security_`` prefix, base units in the name (``_seconds``),
``_total`` on counters (prometheus-client adds it), ``_info``-free gauges.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping, Sequence

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector, CollectorRegistry

from pynomaly_security.metrics.counters import (
    LATENCY_BUCKETS,
    NO_TENANT,
    OVERHEAD_BUCKETS,
    SCORE_BUCKETS,
    SEP,
)
from pynomaly_security.metrics.hub import Snapshot

__all__ = ["PREFIX", "SnapshotCollector", "render"]

PREFIX = "pynomaly_security_"
_INCIDENT_BUCKETS = (60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 12 * 3600.0, 86400.0, 3 * 86400.0)


def _fields(tallies: dict[str, int], name: str) -> Iterator[tuple[list[str], int]]:
    """The label values and count of each tally field named ``name``."""
    prefix = name + SEP
    for key, value in tallies.items():
        if key.startswith(prefix):
            yield key[len(prefix) :].split(SEP), value


def _buckets(
    tallies: dict[str, int], name: str, bounds: Sequence[float]
) -> list[tuple[str, float]]:
    """Cumulative ``(le, count)`` pairs from per-bucket tallies (``name<TAB>index``)."""
    per = [0] * (len(bounds) + 1)
    for (index,), value in _fields(tallies, name):
        if index.isdigit() and int(index) <= len(bounds):
            per[int(index)] += value
    out, running = [], 0
    for bound, n in zip([*map(str, bounds), "+Inf"], per, strict=True):
        running += n
        out.append((bound, float(running)))
    return out


def _observed(
    values: Iterable[float], bounds: Sequence[float]
) -> tuple[list[tuple[str, float]], float]:
    per = [0] * (len(bounds) + 1)
    total = 0.0
    for v in values:
        per[bisect.bisect_left(bounds, v)] += 1
        total += v
    out, running = [], 0
    for bound, n in zip([*map(str, bounds), "+Inf"], per, strict=True):
        running += n
        out.append((bound, float(running)))
    return out, total


def _with_tenant(labels: list[str], plain: int, by_tenant: bool) -> list[str]:
    """A field's label values for a family with (``by_tenant``) or without the tenant
    label (second); ``plain`` is the number of values a field without it has. Counts
    of a run with tenancy off read as tenant ``__none__``, with it off the tenant is
    left out (the shared tallies outlive a change of the setting)."""
    if len(labels) == plain:
        return [labels[0], NO_TENANT, *labels[1:]] if by_tenant else labels
    return labels if by_tenant else [labels[0], *labels[2:]]


def _by_label(name: str, doc: str, label: str, values: Mapping[str, float]) -> GaugeMetricFamily:
    """A gauge with one sample per entry of ``values`` under ``label``, in key order
    (a stable order keeps scrapes diffable)."""
    gauge = GaugeMetricFamily(PREFIX + name, doc, labels=[label])
    for key, value in sorted(values.items()):
        gauge.add_metric([key], value)
    return gauge


class SnapshotCollector(Collector):
    """Every ``pynomaly_security_*`` metric family of one snapshot."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def collect(self) -> Iterable[Metric]:  # one family after another
        s = self.snap
        t = s.tallies
        p = PREFIX

        # With tenancy on, a tenant label after the route (the request context's tenant).
        inspected = list(_fields(t, "inspected"))
        by_tenant = any(len(labels) == 2 for labels, _ in inspected)
        requests = CounterMetricFamily(
            p + "requests_inspected",
            "Requests the security stack handled, by route template "
            "(__unmatched__: no route matched) and, with tenancy on, tenant.",
            labels=["route", "tenant"] if by_tenant else ["route"],
        )
        for labels, n in inspected:
            requests.add_metric(_with_tenant(labels, 1, by_tenant), n)
        yield requests

        blocked = CounterMetricFamily(
            p + "requests_blocked",
            "Requests the stack answered itself, by route template and family "
            "(an injection family, or the refusal's reason: rate_limited, locked_out, ...) "
            "and, with tenancy on, tenant.",
            labels=["route", "tenant", "family"] if by_tenant else ["route", "family"],
        )
        for labels, n in _fields(t, "blocked"):
            if len(labels) in (2, 3):
                blocked.add_metric(_with_tenant(labels, 2, by_tenant), n)
        yield blocked

        findings = CounterMetricFamily(
            p + "injection_findings",
            "Requests with injection findings past the anomaly threshold, by family and "
            "action (blocked or detected; the blocked ones by route: requests_blocked).",
            labels=["family", "action"],
        )
        for labels, n in _fields(t, "findings"):
            if len(labels) == 2:
                findings.add_metric(labels, n)
        yield findings

        errors = CounterMetricFamily(
            p + "server_errors", "Responses with a 5xx status, by route template.", labels=["route"]
        )
        for (route,), n in _fields(t, "errors"):
            errors.add_metric([route], n)
        yield errors

        score = HistogramMetricFamily(
            p + "detection_score",
            "Anomaly score of the requests inspection reported (past the threshold).",
        )
        score.add_metric(
            [], _buckets(t, "score", SCORE_BUCKETS), t.get("score_sum_milli", 0) / 1000
        )
        yield score

        latency = HistogramMetricFamily(
            p + "request_duration_seconds",
            f"Duration of a request as the stack's outer layer sees it (one request in "
            f"{s.latency_sample} sampled by the low bits of its nanosecond start time).",
        )
        latency.add_metric(
            [], _buckets(t, "latency", LATENCY_BUCKETS), t.get("latency_sum_ns", 0) / 1e9
        )
        yield latency

        overhead = HistogramMetricFamily(
            p + "overhead_seconds",
            "Time the security stack added to a request: its outer layer's duration minus "
            f"the app's (the same one request in {s.latency_sample}).",
        )
        overhead.add_metric(
            [], _buckets(t, "overhead", OVERHEAD_BUCKETS), t.get("overhead_sum_ns", 0) / 1e9
        )
        yield overhead

        alerts = CounterMetricFamily(
            p + "alerts", "Alerts raised, by type and level.", labels=["type", "level"]
        )
        for labels, n in _fields(t, "alerts"):
            if len(labels) == 2:
                alerts.add_metric(labels, n)
        yield alerts

        yield _by_label(
            "alerts_active", "Unacknowledged alerts, by level.", "level", s.alerts_active
        )

        monitor_counters = {
            "login_failures": ("failed_logins", "Failed logins (every worker's)."),
            "login_successes": ("successful_logins", "Successful logins."),
            "lockouts": ("lockouts", "Lockouts imposed (account, address or pair)."),
            "monitor_dropped_events": (
                "dropped_events",
                "Events the monitor dropped because its queue was full.",
            ),
        }
        for name, (metric, doc) in monitor_counters.items():
            counter = CounterMetricFamily(p + name, doc)
            counter.add_metric([], s.monitor.get(metric, 0))
            yield counter

        yield GaugeMetricFamily(
            p + "monitor_queue_depth",
            "Events the serving worker's monitor has yet to analyse.",
            value=s.queue_depth,
        )
        if s.lockouts_active is not None:
            yield GaugeMetricFamily(
                p + "lockouts_active", "Lockouts in force now.", value=s.lockouts_active
            )
        if s.decisions_active is not None:
            yield _by_label(
                "decisions_active",
                "Decisions (bans, throttles) in force, by action.",
                "action",
                s.decisions_active,
            )
        if s.incidents_by_status is not None:
            yield _by_label(
                "incidents", "Incidents kept, by status.", "status", s.incidents_by_status
            )
        if s.incidents_by_severity is not None:
            yield _by_label(
                "incidents_by_severity",
                "Incidents kept, by severity.",
                "severity",
                s.incidents_by_severity,
            )
            for name, values, doc in (
                ("incident_time_to_contain_seconds", s.time_to_contain, "contained"),
                ("incident_time_to_resolve_seconds", s.time_to_resolve, "recovered or closed"),
            ):
                histogram = GaugeHistogramMetricFamily(
                    p + name,
                    f"Seconds from creation until {doc}, over the newest 1,000 incidents kept.",
                )
                buckets, total = _observed(values, _INCIDENT_BUCKETS)
                histogram.add_metric([], buckets, total)
                yield histogram
        if s.policy_totals is not None:
            policy = CounterMetricFamily(
                p + "policy_decisions", "Policy evaluations, by effect.", labels=["effect"]
            )
            policy.add_metric(["allow"], s.policy_totals.get("allows", 0))
            policy.add_metric(["deny"], s.policy_totals.get("denies", 0))
            yield policy
        if s.audit is not None:
            a = s.audit
            yield GaugeMetricFamily(
                p + "audit_queue_depth",
                "Audit records queued in the serving worker.",
                value=a.get("queue_depth") or 0,
            )
            records = CounterMetricFamily(
                p + "audit_records",
                "Records committed to the audit trail (every worker's), by kind: the "
                "event family (auth, security, ..., custom) or access (a batch record "
                "of access rows).",
                labels=["kind"],
            )
            for (kind,), n in _fields(t, "audit_records"):
                records.add_metric([kind], n)
            yield records
            dropped = CounterMetricFamily(
                p + "audit_dropped", "Audit records the serving worker dropped (queue full)."
            )
            dropped.add_metric([], a.get("dropped") or 0)
            yield dropped
            if "checkpoints" in a:
                yield GaugeMetricFamily(
                    p + "audit_checkpoints",
                    "Signed checkpoints in the audit trail.",
                    value=a["checkpoints"],
                )
            if "checkpoint_seq" in a:
                yield GaugeMetricFamily(
                    p + "audit_checkpoint_sequence",
                    "Sequence number of the newest checkpoint (records chained up to it).",
                    value=a["checkpoint_seq"],
                )
                yield GaugeMetricFamily(
                    p + "audit_chain_head_age_seconds",
                    "Seconds since the newest signed checkpoint of the chain.",
                    value=a["checkpoint_age_seconds"],
                )
            if a.get("verified_ok") is not None:
                yield GaugeMetricFamily(
                    p + "audit_last_verification_ok",
                    "1 when the serving worker's last verification of the trail passed.",
                    value=1 if a["verified_ok"] else 0,
                )
                yield GaugeMetricFamily(
                    p + "audit_last_verification_timestamp_seconds",
                    "When the serving worker last verified the trail (Unix time).",
                    value=a["verified_at"],
                )
        if s.sessions_active is not None:
            yield GaugeMetricFamily(
                p + "sessions_active",
                "Sign-in sessions live now (the app's authenticator, every worker's).",
                value=s.sessions_active,
            )
            yield GaugeMetricFamily(
                p + "refresh_tokens_active",
                "Refresh tokens usable now: one per live session (rotation replaces it).",
                value=s.sessions_active,
            )
        compliance = s.providers.get("compliance")
        if compliance is not None:
            yield _by_label(
                "compliance_score_ratio",
                "Compliance score per framework (0..1).",
                "framework",
                {framework: percent / 100 for framework, percent in compliance.items()},
            )
        vulns = s.providers.get("vulnerabilities")
        if vulns is not None:
            yield _by_label(
                "vulnerability_findings",
                "Known vulnerabilities in the dependencies, by severity.",
                "severity",
                vulns,
            )
        yield _by_label(
            "metrics_source_up",
            "1 when a source of this scrape answered (the shared state, incidents, ...).",
            "source",
            {source: 1 if ok else 0 for source, ok in s.sources_up.items()},
        )


def render(snap: Snapshot, accept: str | None) -> tuple[bytes, str]:
    """The exposition of ``snap`` in the format ``accept`` asks for, and its content type."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snap))
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
