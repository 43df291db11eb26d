"""The compliance validator (issue 19): evidence the running app collects about itself.

Not :mod:`pynomaly_security.policy.compliance` (static analysis of security policies
and their score) nor :mod:`pynomaly_security.audit.compliance` (which standards an
audit record is tagged with): this package checks controls of GDPR, HIPAA, SOC 2,
PCI DSS 4.0, ISO/IEC 27001:2022 and NIST SP 800-53 against the app's settings,
responses and data, continuously, and reports the evidence.

* ``catalogue.yaml`` / ``catalogue.py``: frameworks, controls, check instances;
* ``checks/``: the check kinds (settings, probes through the app, data);
* ``waivers.py``, ``assess.py``: waivers, control statuses and scores;
* ``validator.py``: runs, schedule, alerts and incidents, the audit record;
* ``store.py``: results and history in the state backend;
* ``report.py``, ``html.py``, ``oscal.py``: reports; ``verify.py``: a report against
  the audit trail.
"""

from pynomaly_security.compliance.catalogue import Catalogue, CheckSpec, Control, load_catalogue
from pynomaly_security.compliance.checks import CheckContext, CheckKind
from pynomaly_security.compliance.results import CheckResult, Status
from pynomaly_security.compliance.sources import (
    ComplianceSources,
    UserFacts,
    VulnerabilityFacts,
    users_from_records,
)
from pynomaly_security.compliance.validator import ComplianceValidator
from pynomaly_security.compliance.waivers import Waiver, Waivers, load_waivers

__all__ = [
    "Catalogue",
    "CheckContext",
    "CheckKind",
    "CheckResult",
    "CheckSpec",
    "ComplianceSources",
    "ComplianceValidator",
    "Control",
    "Status",
    "UserFacts",
    "VulnerabilityFacts",
    "Waiver",
    "Waivers",
    "load_catalogue",
    "load_waivers",
    "users_from_records",
]
