"""Who may scrape the exposition, and what a scrape returns: shared by ``GET /metrics``
(``api/metrics_routes.py``) and the metrics port (``metrics/port.py``).

A scraper presents the admin key or the metrics token (``METRICS_TOKEN``, for one that
should not hold the admin key) as ``X-API-Key`` or ``Authorization: Bearer``; every key
is compared in constant time, so which one matched does not show.
"""

from __future__ import annotations

import hmac

from pydantic import SecretStr

from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.metrics.hub import MetricsHub

__all__ = ["ScrapeAuth", "exposition"]


def _secret(value: str | SecretStr | None) -> bytes | None:
    if value is None:
        return None
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    return raw.encode() if raw else None


class ScrapeAuth:
    """The credentials a scrape is checked against.

    Raises:
        ConfigurationError: neither an admin key nor a metrics token is set.
    """

    def __init__(self, admin_api_key: str | SecretStr | None, token: str | SecretStr | None):
        self._keys = [k for k in (_secret(admin_api_key), _secret(token)) if k is not None]
        if not self._keys:
            raise ConfigurationError(
                "GET /metrics needs a credential: set PYNOMALY_SECURITY__ADMIN_API_KEY or "
                "PYNOMALY_SECURITY__METRICS_TOKEN"
            )

    def allows(self, api_key: str | None, authorization: str | None) -> bool:
        """Whether the request's ``X-API-Key`` or ``Authorization: Bearer`` value is one
        of the keys."""
        given: bytes | None = None
        if api_key:
            given = api_key.encode()
        else:
            scheme, _, value = (authorization or "").partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                given = value.strip().encode()
        ok = False
        for key in self._keys:
            ok |= given is not None and hmac.compare_digest(given, key)
        return ok


async def exposition(hub: MetricsHub, accept: str | None) -> tuple[bytes, str]:
    """Every worker's metrics (``hub.snapshot()``) in the format ``accept`` asks for, and
    its content type."""
    # Imported at the first scrape: prometheus-client stays out of a worker never
    # scraped (startup, memory; and under valgrind, importing it at start-up moved the
    # request path's type-lookup cache hits by ~3,500 instructions, `bench/overhead.py`).
    from pynomaly_security.metrics.exposition import render

    return render(await hub.snapshot(), accept)
