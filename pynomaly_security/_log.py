"""Logger names: every module logs as ``pynomaly.security.<module>``.

The integration guide turns on debug output with
``logging.getLogger("pynomaly.security").setLevel(logging.DEBUG)``. When the host
routes structlog through the standard library (``structlog.stdlib.LoggerFactory``,
see the README), the stdlib logger of a structlog logger is the name given to
``structlog.get_logger``; naming ours under ``pynomaly.security`` makes that one
line (and any handler or level set there) cover the whole package. The library
still configures nothing: without that routing, structlog prints as the host set it.
"""

from __future__ import annotations

from typing import Any

import structlog

__all__ = ["LOGGER_NAME", "get_logger"]

LOGGER_NAME = "pynomaly.security"
_PACKAGE = "pynomaly_security"


def get_logger(module: str) -> Any:
    """structlog's lazy logger for ``module`` (a ``__name__``), named under
    :data:`LOGGER_NAME`: ``pynomaly_security.monitor.monitor`` logs as
    ``pynomaly.security.monitor.monitor``."""
    if module == _PACKAGE or module.startswith(_PACKAGE + "."):
        module = LOGGER_NAME + module[len(_PACKAGE) :]
    return structlog.get_logger(module)
