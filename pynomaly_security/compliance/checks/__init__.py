"""The built-in check kinds, by name (see ``base.py``)."""

from pynomaly_security.compliance.checks.base import CheckContext, CheckFn, CheckKind
from pynomaly_security.compliance.checks.config import CONFIG_KINDS
from pynomaly_security.compliance.checks.data import DATA_KINDS
from pynomaly_security.compliance.checks.probes import PROBE_KINDS

__all__ = ["BUILTIN_KINDS", "CheckContext", "CheckFn", "CheckKind"]

BUILTIN_KINDS: dict[str, CheckKind] = {**CONFIG_KINDS, **PROBE_KINDS, **DATA_KINDS}
