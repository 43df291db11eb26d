"""Threat intelligence (issue 16, item 5): reputation lists read (``parse.py``), kept as
merged ranges in compact arrays (``ranges.py``) in the shared state (``store.py``),
enforced through the decisions' index; advice per alert type (``advice.py``)."""

from __future__ import annotations

from pynomaly_security.intel.advice import mitigation_advice
from pynomaly_security.intel.parse import IntelParseError, parse_list
from pynomaly_security.intel.ranges import IPRangeSet
from pynomaly_security.intel.store import IntelList, IntelStore

__all__ = [
    "IPRangeSet",
    "IntelList",
    "IntelParseError",
    "IntelStore",
    "mitigation_advice",
    "parse_list",
]
