"""Security metrics (issue 20): per-worker counts on the request path
(``counters.py``), the hub that adds every worker's counts up in the shared state
(``hub.py``), the Prometheus exposition (``exposition.py``), the dashboard's JSON
summary (``summary.py``) and alert thresholds on metrics (``thresholds.py``)."""

from pynomaly_security.metrics.counters import RequestCounts
from pynomaly_security.metrics.hub import PROVIDERS, MetricsHub, Snapshot

__all__ = ["PROVIDERS", "MetricsHub", "RequestCounts", "Snapshot"]
