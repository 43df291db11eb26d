"""Dependency vulnerabilities (issue 18).

``versions`` orders versions per ecosystem; ``osv`` evaluates OSV ranges (and loads
records into memory); ``sources`` and ``store`` are the SQLite advisory database
(``vulndb import``), ``refresh`` downloads osv.dev's exports into it; ``lockfiles``
reads the lockfiles and manifests of npm, PyPI, Packagist, Maven and Gradle;
``scoring``, ``plan`` and ``assessment`` turn matches into scored
findings and a remediation plan (:class:`~.assessment.AutomatedVulnerabilityAssessment`);
``report`` renders them; ``environment`` and ``watch`` check the running app's own
dependencies (``stack.vulnerabilities``). Commands: ``pynomaly_security.cli.vulns``,
``pynomaly_security.cli.vulndb``.
"""

from __future__ import annotations

from pynomaly_security.vulns.versions import UnknownEcosystem, VersionError, compare, sort_key

__all__ = ["UnknownEcosystem", "VersionError", "compare", "sort_key"]
