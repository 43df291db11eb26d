"""A structlog processor that masks classified values in log events.

Add it to the application's processor chain, before the renderer::

    structlog.configure(
        processors=[..., MaskSensitiveValues(), structlog.processors.JSONRenderer()]
    )

The library never calls ``structlog.configure()`` itself (STYLE 2.9).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from pynomaly_security.protection.masking import Masker

__all__ = ["MaskSensitiveValues"]


class MaskSensitiveValues:
    """Mask PII, card numbers and secrets in every value of an event dict.

    Args:
        masker: the policy (default :class:`Masker`).
        skip_keys: keys left as they are (structural fields that never hold data).

    Keys are used as field names, so ``password=...`` or ``dob=...`` are masked
    by name as well as by content.
    """

    def __init__(
        self,
        masker: Masker | None = None,
        *,
        skip_keys: frozenset[str] = frozenset({"level", "timestamp", "logger", "request_id"}),
    ) -> None:
        self.masker = masker or Masker()
        self.skip_keys = skip_keys

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in event_dict.items():
            if key not in self.skip_keys and not key.startswith("_"):
                event_dict[key] = self.masker.mask(value, field=key)
        return event_dict
