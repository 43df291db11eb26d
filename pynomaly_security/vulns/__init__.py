"""Dependency vulnerabilities (issue 18, foundation): version ordering and OSV matching.

``versions`` orders versions per ecosystem; ``osv`` loads OSV records and answers
which advisories affect a package version. Lockfile parsing, the CLI, scoring and
the remediation plan are not built yet (see the README).
"""

from __future__ import annotations

from pynomaly_security.vulns.versions import UnknownEcosystem, VersionError, compare, sort_key

__all__ = ["UnknownEcosystem", "VersionError", "compare", "sort_key"]
