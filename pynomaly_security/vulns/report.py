"""A :class:`~.assessment.VulnerabilityScan` as text: a table, JSON, SARIF 2.1.0, CycloneDX VEX.

- ``table``: one row per vulnerable package (severity, priority, fix, deadline, ids),
  then the remediation plan, then what was not scanned (unpinned lines, requirements
  whose environment marker is false for the target, unreadable files).
- ``sarif``: one rule per vulnerability (``security-severity`` is the CVSS score, read by
  GitHub code scanning), one result per package location, lockfile paths relative to
  the scanned directory (``%SRCROOT%``).
- ``cyclonedx``: a CycloneDX 1.6 BOM of the vulnerable components with their
  vulnerabilities, ratings and recommendation (VEX: ``analysis.state`` is
  ``exploitable`` when the running app imported the package, else ``in_triage``);
  needs ``cyclonedx-python-lib`` (the ``cyclonedx`` extra).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from pynomaly_security.vulns.assessment import DependencyFinding, VulnerabilityScan
from pynomaly_security.vulns.plan import NO_FIX

__all__ = ["FORMATS", "render"]

FORMATS = ("table", "json", "sarif", "cyclonedx")
_SARIF_LEVEL = {"CRITICAL": "error", "HIGH": "error", "MEDIUM": "warning", "UNKNOWN": "warning"}


def _where(location: str, root: Path | None) -> str:
    path = Path(location)
    if root is not None and root.is_dir() and path.is_relative_to(root):
        return path.relative_to(root).as_posix()
    return path.name if root is not None and root.is_file() else location


def render(scan: VulnerabilityScan, fmt: str, root: Path | None = None) -> str:
    """``scan`` in ``fmt`` (one of :data:`FORMATS`); ``root``: the scanned path."""
    if fmt == "json":
        return json.dumps(scan.to_dict(), indent=2)
    if fmt == "sarif":
        return json.dumps(sarif(scan, root), indent=2)
    if fmt == "cyclonedx":
        return cyclonedx(scan)
    return table(scan, root)


def _columns(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
        for r in rows
    ]


def table(scan: VulnerabilityScan, root: Path | None = None) -> str:
    lines: list[str] = []
    if scan.findings:
        rows: list[tuple[str, ...]] = [
            ("FILE", "PACKAGE", "VERSION", "SEVERITY", "SCORE", "PRIO", "VULNERABILITY")
        ]
        for f in scan.findings:
            score = f"{f.score.score:.1f}" if f.score.score is not None else "-"
            extra = " KEV" if f.kev_due is not None else ""
            extra += " imported" if f.imported else ""
            rows.append(
                (
                    _where(f.location, root) + (f":{f.line}" if f.line else ""),
                    f.package,
                    f.version,
                    f.severity,
                    score,
                    f.priority,
                    f"{f.vulnerability}{extra}",
                )
            )
        lines += _columns(rows)
    counts = ", ".join(f"{n} {s.lower()}" for s, n in scan.counts().items() if n)
    lines.append(
        f"{len(scan.plan)} vulnerable of {scan.packages} packages"
        + (f" ({counts})" if counts else "")
    )
    if scan.plan:
        lines.append("")
        lines.append("Remediation plan:")
        rows = [("DEADLINE", "PRIO", "SEVERITY", "PACKAGE", "VERSION", "ACTION")]
        for s in scan.plan:
            action = f"upgrade to {s.target}" if s.target else NO_FIX
            rows.append(
                (
                    s.deadline,
                    s.priority,
                    s.severity,
                    s.package,
                    s.version,
                    f"{action}  ({s.deadline_reason}; {len(s.vulnerabilities)} vuln.)",
                )
            )
        lines += _columns(rows)
    sections = (
        ("unpinned", scan.unpinned),
        (f"not installed here (marker false for {scan.environment})", scan.not_installed),
        ("errors", scan.errors),
    )
    for title, items in sections:
        if items:
            lines.append(f"{title} ({len(items)}):")
            lines += [f"  {item}" for item in items]
    return "\n".join(lines)


# -- SARIF 2.1.0 (OASIS) -----------------------------------------------------------------


def _rule(f: DependencyFinding) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": f.vulnerability,
        "shortDescription": {"text": f.summary or f.vulnerability},
        "helpUri": f"https://osv.dev/vulnerability/{f.vulnerability}",
        "help": {"text": f"Aliases: {', '.join(f.aliases)}"},
        "defaultConfiguration": {"level": _SARIF_LEVEL.get(f.severity, "note")},
        "properties": {"tags": ["security", "vulnerability", "dependency"]},
    }
    if f.score.score is not None:
        rule["properties"]["security-severity"] = f"{f.score.score:.1f}"
    return rule


def sarif(scan: VulnerabilityScan, root: Path | None = None) -> dict[str, Any]:
    rules: dict[str, dict[str, Any]] = {}
    results = []
    fixes = {(s.package, s.version): s for s in scan.plan}
    for f in scan.findings:
        if f.vulnerability not in rules:
            rules[f.vulnerability] = _rule(f)
        step = fixes.get((f.package, f.version))
        advice = (f"upgrade to {step.target}" if step.target else NO_FIX) if step else ""
        result: dict[str, Any] = {
            "ruleId": f.vulnerability,
            "ruleIndex": list(rules).index(f.vulnerability),
            "level": _SARIF_LEVEL.get(f.severity, "note"),
            "message": {
                "text": f"{f.package} {f.version} ({f.ecosystem}) is affected by "
                f"{f.vulnerability} ({f.severity}); {advice}"
                + (f" by {step.deadline}" if step else "")
            },
            "properties": {"priority": f.priority, "imported": f.imported},
        }
        if f.location != "<environment>":
            region = {"startLine": f.line} if f.line else {}
            result["locations"] = [
                {
                    "physicalLocation": {
                        "artifactLocation": {
                            "uri": _where(f.location, root),
                            **({"uriBaseId": "%SRCROOT%"} if root and root.is_dir() else {}),
                        },
                        **({"region": region} if region else {}),
                    }
                }
            ]
        results.append(result)
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "pynomaly-security vulns",
                        "informationUri": "https://osv.dev",
                        "rules": list(rules.values()),
                    }
                },
                "results": results,
            }
        ],
    }


# -- CycloneDX VEX -----------------------------------------------------------------------

_PURL_TYPES = {"PyPI": "pypi", "npm": "npm", "Packagist": "composer", "Maven": "maven"}


def _purl(ecosystem: str, name: str, version: str) -> Any:
    from packageurl import PackageURL

    kind = _PURL_TYPES.get(ecosystem, ecosystem.lower())
    namespace = None
    if kind == "maven" and ":" in name:
        namespace, name = name.split(":", 1)
    elif kind in ("npm", "composer") and "/" in name:
        namespace, name = name.rsplit("/", 1)
    return PackageURL(type=kind, namespace=namespace, name=name, version=version)


def cyclonedx(scan: VulnerabilityScan) -> str:
    """The scan as a CycloneDX 1.6 JSON BOM with vulnerabilities (VEX)."""
    try:
        from cyclonedx.model import XsUri
        from cyclonedx.model.bom import Bom
        from cyclonedx.model.component import Component, ComponentType
        from cyclonedx.model.impact_analysis import ImpactAnalysisState
        from cyclonedx.model.vulnerability import (
            BomTarget,
            Vulnerability,
            VulnerabilityAnalysis,
            VulnerabilityRating,
            VulnerabilityScoreSource,
            VulnerabilitySeverity,
            VulnerabilitySource,
        )
        from cyclonedx.output.json import JsonV1Dot6
    except ImportError as exc:  # the extra is not installed
        raise RuntimeError(
            "--format cyclonedx needs cyclonedx-python-lib:"
            " pip install 'pynomaly-security[cyclonedx]'"
        ) from exc

    bom = Bom()
    refs: dict[tuple[str, str, str], str] = {}
    for f in scan.findings:
        key = (f.ecosystem, f.package, f.version)
        if key not in refs:
            purl = _purl(*key)
            refs[key] = purl.to_string()
            bom.components.add(
                Component(
                    type=ComponentType.LIBRARY,
                    name=f.package,
                    version=f.version,
                    purl=purl,
                    bom_ref=refs[key],
                )
            )
    methods = {
        "cvss_v4": VulnerabilityScoreSource.CVSS_V4,
        "cvss_v3": VulnerabilityScoreSource.CVSS_V3_1,
        "cvss_v2": VulnerabilityScoreSource.CVSS_V2,
    }
    plan = {(s.ecosystem, s.package, s.version): s for s in scan.plan}
    seen: set[tuple[str, str]] = set()
    for f in scan.findings:
        key = (f.ecosystem, f.package, f.version)
        if (f.vulnerability, refs[key]) in seen:
            continue
        seen.add((f.vulnerability, refs[key]))
        ratings = []
        if f.score.score is not None:
            ratings.append(
                VulnerabilityRating(
                    score=Decimal(str(f.score.score)),
                    severity=VulnerabilitySeverity(f.severity.lower()),
                    method=methods.get(f.score.source, VulnerabilityScoreSource.OTHER),
                    vector=f.score.vector,
                )
            )
        step = plan.get(key)
        bom.vulnerabilities.add(
            Vulnerability(
                bom_ref=f"{f.vulnerability}@{refs[key]}",
                id=f.vulnerability,
                source=VulnerabilitySource(
                    name="OSV", url=XsUri(f"https://osv.dev/vulnerability/{f.vulnerability}")
                ),
                ratings=ratings,
                description=f.summary or None,
                recommendation=(
                    f"upgrade to {step.target} by {step.deadline}"
                    if step and step.target
                    else NO_FIX
                ),
                analysis=VulnerabilityAnalysis(
                    state=ImpactAnalysisState.EXPLOITABLE
                    if f.imported
                    else ImpactAnalysisState.IN_TRIAGE
                ),
                affects=[BomTarget(ref=refs[key])],
            )
        )
    return str(JsonV1Dot6(bom).output_as_string(indent=2))
