"""Dependency vulnerabilities (issue 18, foundation).

``versions`` orders versions per ecosystem; ``osv`` loads OSV records into memory and
answers which advisories affect a package version; ``lockfiles`` reads the lockfiles
and manifests of npm, PyPI, Packagist, Maven and Gradle; ``pynomaly_security.cli.vulns``
is the ``vulns scan`` command. The SQLite database, scoring and the remediation plan
are not built yet (see the README).
"""

from __future__ import annotations

from pynomaly_security.vulns.versions import UnknownEcosystem, VersionError, compare, sort_key

__all__ = ["UnknownEcosystem", "VersionError", "compare", "sort_key"]
