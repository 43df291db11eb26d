"""Severity, score and priority of a vulnerability (issue 18, item 5).

The score is the CVSS base score of the advisory's vector, computed with the ``cvss``
library (v3.0/v3.1 and v4.0; v2 too, rarely seen in OSV); the highest over the
records of one vulnerability. With no vector that the library reads, the
advisory's own label (GHSA ``database_specific.severity``) gives the severity and a
nominal score in the middle of its CVSS band, so a label-only advisory still ranks.

Priority (higher first) = score + 3 x EPSS probability + 2 when on the CISA KEV list
+ 1.5 when the running app has imported the package (- 1 when it is installed but
not imported; lockfile scans know neither and add nothing). P1 at 10 or KEV, P2 at
7, P3 at 4, else P4. EPSS and KEV count only when the user imported them
(``vulndb import-epss`` / ``import-kev``; :func:`read_epss`, :func:`read_kev` read the
files FIRST.org and CISA publish).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cvss import CVSS2, CVSS3, CVSS4
from cvss.exceptions import CVSSError

from pynomaly_security.vulns.osv import AdvisoryError

__all__ = [
    "SEVERITIES",
    "Score",
    "priority",
    "read_epss",
    "read_kev",
    "score_vulnerability",
    "severity_rank",
]

SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "NONE", "UNKNOWN")
"""Labels, most severe first; ``UNKNOWN``: neither a vector nor a label."""

_RANK = {"NONE": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4}
# A label without a vector: the middle of its CVSS v3 band (FIRST CVSS v3.1 spec, 5).
_NOMINAL = {"CRITICAL": 9.5, "HIGH": 8.0, "MEDIUM": 5.5, "LOW": 2.0, "NONE": 0.0}
_LABELS = {"MODERATE": "MEDIUM", "IMPORTANT": "HIGH"}


def severity_rank(label: str) -> int:
    """0 (none) .. 4 (critical); ``UNKNOWN`` ranks as critical for ``--fail-on``:
    CI should not pass on what it could not rank."""
    return _RANK.get(label, 4)


def _band(score: float) -> str:
    if score == 0:
        return "NONE"
    if score < 4:
        return "LOW"
    if score < 7:
        return "MEDIUM"
    if score < 9:
        return "HIGH"
    return "CRITICAL"


@dataclass(frozen=True)
class Score:
    """How bad one vulnerability is, and from what."""

    severity: str
    score: float | None  # the CVSS base score, or the label's nominal one
    vector: str | None  # the vector that gave the score
    source: str  # "cvss_v4", "cvss_v3", "cvss_v2", "label", "none"


def _cvss(kind: str, vector: str) -> tuple[float, str] | None:
    try:
        if vector.startswith("CVSS:4") or kind == "CVSS_V4":
            return float(CVSS4(vector).base_score), "cvss_v4"
        if vector.startswith("CVSS:3") or kind == "CVSS_V3":
            return float(CVSS3(vector).base_score), "cvss_v3"
        if kind == "CVSS_V2":
            return float(CVSS2(vector).base_score), "cvss_v2"
    except (CVSSError, ValueError, KeyError, IndexError):
        return None  # a malformed vector: the label (if any) decides
    return None


def score_vulnerability(vectors: Iterable[tuple[str, str]], labels: Iterable[str | None]) -> Score:
    """The highest CVSS base score among ``vectors``, else the most severe label."""
    best: Score | None = None
    for kind, vector in vectors:
        scored = _cvss(kind, vector)
        if scored is not None and (best is None or scored[0] > (best.score or 0)):
            best = Score(_band(scored[0]), scored[0], vector, scored[1])
    if best is not None:
        return best
    known = [_LABELS.get(x, x) for x in labels if x]
    ranked = [x for x in known if x in _RANK]
    if ranked:
        label = max(ranked, key=lambda x: _RANK[x])
        return Score(label, _NOMINAL[label], None, "label")
    return Score("UNKNOWN", None, None, "none")


def priority(
    score: Score, *, epss: float | None, kev: bool, imported: bool | None
) -> tuple[float, str]:
    """``(points, "P1".."P4")``; ``imported`` None when not known (a lockfile)."""
    points = score.score if score.score is not None else 5.0
    points += 3.0 * (epss or 0.0) + (2.0 if kev else 0.0)
    if imported is True:
        points += 1.5
    elif imported is False:
        points -= 1.0
    points = round(points, 2)
    if kev or points >= 10:
        return points, "P1"
    return points, "P2" if points >= 7 else "P3" if points >= 4 else "P4"


# -- EPSS (FIRST.org: epss_scores-YYYY-MM-DD.csv.gz) and KEV (CISA JSON or CSV) --------


def _text(path: Path) -> str:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise AdvisoryError(f"{path}: line 1: not UTF-8") from None


def read_epss(path: Path) -> Iterator[tuple[str, float, float | None]]:
    """``(cve, epss, percentile)`` from FIRST's CSV (gzipped or not): an optional
    ``#model_version:...,score_date:...`` line, then ``cve,epss,percentile``."""
    lines = _text(path).splitlines()
    start = 1 if lines and lines[0].startswith("#") else 0
    reader = csv.DictReader(io.StringIO("\n".join(lines[start:])))
    if not reader.fieldnames or not {"cve", "epss"} <= set(reader.fieldnames):
        raise AdvisoryError(f"{path}: line {start + 1}: not an EPSS CSV (needs cve,epss columns)")
    for number, row in enumerate(reader, start + 2):
        try:
            score = float(row["epss"])
            pct = float(row["percentile"]) if row.get("percentile") else None
        except (TypeError, ValueError):
            raise AdvisoryError(
                f"{path}: line {number}: not a number: {row.get('epss')!r}"
            ) from None
        if not 0 <= score <= 1 or not str(row["cve"]).startswith("CVE-"):
            raise AdvisoryError(f"{path}: line {number}: not a CVE with a probability in [0, 1]")
        yield str(row["cve"]), score, pct


def read_kev(path: Path) -> list[tuple[str, str | None, str | None, str | None]]:
    """``(cve, dateAdded, dueDate, vulnerabilityName)`` from CISA's
    ``known_exploited_vulnerabilities.json`` or ``.csv``."""
    text = _text(path)
    rows: list[dict[str, Any]]
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AdvisoryError(f"{path}: line {exc.lineno}: invalid JSON: {exc.msg}") from None
        rows = data.get("vulnerabilities") if isinstance(data, dict) else None  # type: ignore[assignment]
        if not isinstance(rows, list):
            raise AdvisoryError(f"{path}: line 1: not the KEV catalogue (no `vulnerabilities`)")
    else:
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or "cveID" not in reader.fieldnames:
            raise AdvisoryError(f"{path}: line 1: not the KEV CSV (needs a cveID column)")
        rows = list(reader)
    out = []
    for row in rows:
        cve = row.get("cveID") if isinstance(row, dict) else None
        if not isinstance(cve, str) or not cve.startswith("CVE-"):
            raise AdvisoryError(f"{path}: an entry without a cveID: {str(row)[:80]}")
        out.append((cve, row.get("dateAdded"), row.get("dueDate"), row.get("vulnerabilityName")))
    return out
