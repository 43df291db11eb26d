"""The guide's debug mode: with structlog routed through the standard library (as
the README shows), ``logging.getLogger("pynomaly.security")`` governs every
module's events."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog

from pynomaly_security import SecurityMonitor


class _Records(logging.Handler):
    """The outside world's log sink: keeps what reaches it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def stdlib_routing() -> Iterator[_Records]:
    """The host's structlog configuration from the README, undone afterwards."""
    root = logging.getLogger()
    sink = _Records()
    root.addHandler(sink)
    package = logging.getLogger("pynomaly.security")
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.render_to_log_kwargs,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    try:
        yield sink
    finally:
        structlog.reset_defaults()
        root.removeHandler(sink)
        package.setLevel(logging.NOTSET)


def _guide_debug_mode() -> None:
    # -- verbatim from the guide ("Debug Mode") --------------------------------------
    import logging

    logging.getLogger("pynomaly.security").setLevel(logging.DEBUG)


@pytest.mark.anyio
async def test_the_guides_debug_line_turns_on_debug_events(stdlib_routing: _Records) -> None:
    """At WARNING the monitor's debug events are filtered out; after the guide's line
    they reach the host's handler from ``pynomaly.security.monitor.monitor``."""
    logging.getLogger("pynomaly.security").setLevel(logging.WARNING)
    async with SecurityMonitor(detectors=[]):
        pass
    assert not [r for r in stdlib_routing.records if r.name.startswith("pynomaly.security")]

    _guide_debug_mode()
    async with SecurityMonitor(detectors=[]):
        pass
    ours = [r for r in stdlib_routing.records if r.name.startswith("pynomaly.security.")]
    assert {r.name for r in ours} == {"pynomaly.security.monitor.monitor"}
    assert [r.getMessage() for r in ours] == [
        "security_monitor_started",
        "security_monitor_stopped",
    ]
    assert all(r.levelno == logging.DEBUG for r in ours)
