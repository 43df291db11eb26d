"""Scores from CVSS vectors and labels, priority, EPSS/KEV files, the fix loop, deadlines."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import pytest

from pynomaly_security.vulns.assessment import AutomatedVulnerabilityAssessment
from pynomaly_security.vulns.lockfiles import Package
from pynomaly_security.vulns.osv import AdvisoryError
from pynomaly_security.vulns.plan import DeadlinePolicy, safe_version
from pynomaly_security.vulns.scoring import priority, read_epss, read_kev, score_vulnerability
from pynomaly_security.vulns.sources import OSVSource
from pynomaly_security.vulns.store import AdvisoryDB

INTEL = Path(__file__).parent / "data" / "intel"
V31 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
V40 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N"


@pytest.mark.parametrize(
    ("vectors", "labels", "severity", "score", "source"),
    [
        pytest.param([("CVSS_V3", V31)], [], "CRITICAL", 9.8, "cvss_v3", id="v3.1"),
        pytest.param([("CVSS_V4", V40)], ["HIGH"], "MEDIUM", 6.9, "cvss_v4", id="v4-over-label"),
        pytest.param(
            [("CVSS_V3", V31), ("CVSS_V4", V40)], [], "CRITICAL", 9.8, "cvss_v3", id="max"
        ),
        pytest.param(
            [("CVSS_V3", "CVSS:3.1/AV:X")], ["MODERATE"], "MEDIUM", 5.5, "label", id="bad"
        ),
        pytest.param([], ["LOW", "HIGH"], "HIGH", 8.0, "label", id="worst-label"),
        pytest.param([], [None], "UNKNOWN", None, "none", id="nothing"),
    ],
)
def test_score(
    vectors: list[tuple[str, str]],
    labels: list[str | None],
    severity: str,
    score: float | None,
    source: str,
) -> None:
    """The highest CVSS base score of the vectors (cvss library), else the worst label."""
    found = score_vulnerability(vectors, labels)
    assert (found.severity, found.score, found.source) == (severity, score, source)


def test_priority() -> None:
    """KEV makes P1; imported raises, installed-but-not-imported lowers; EPSS adds."""
    medium = score_vulnerability([], ["MEDIUM"])  # 5.5
    assert priority(medium, epss=None, kev=False, imported=None) == (5.5, "P3")
    assert priority(medium, epss=None, kev=True, imported=None) == (7.5, "P1")
    assert priority(medium, epss=0.9, kev=False, imported=True) == (9.7, "P2")
    assert priority(medium, epss=None, kev=False, imported=False) == (4.5, "P3")


def test_epss_and_kev_files(tmp_path: Path) -> None:
    """FIRST's EPSS CSV (plain or gzipped) and CISA's KEV JSON and CSV are read; a bad
    line is named."""
    rows = list(read_epss(INTEL / "epss_scores.csv"))
    assert rows[0] == ("CVE-0000-0001", 0.91234, 0.99871)
    gz = tmp_path / "epss.csv.gz"
    gz.write_bytes(gzip.compress((INTEL / "epss_scores.csv").read_bytes()))
    assert list(read_epss(gz)) == rows
    kev = read_kev(INTEL / "known_exploited_vulnerabilities.json")
    assert kev == read_kev(INTEL / "known_exploited_vulnerabilities.csv")
    assert kev[0][:3] == ("CVE-0000-0001", "2026-11-20", "2026-12-11")
    bad = tmp_path / "bad.csv"
    bad.write_text("cve,epss,percentile\nCVE-1,0.5,0.1\nCVE-2,lots,0.2\n")
    with pytest.raises(AdvisoryError, match=r"bad\.csv: line 3: not a number"):
        list(read_epss(bad))
    (tmp_path / "kev.json").write_text(json.dumps({"title": "x"}))
    with pytest.raises(AdvisoryError, match="not the KEV catalogue"):
        read_kev(tmp_path / "kev.json")


def _record(rid: str, events: list[dict[str, str]], *, aliases: list[str] | None = None) -> dict:
    return {
        "id": rid,
        "aliases": aliases or [],
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "fixme"},
                "ranges": [{"type": "ECOSYSTEM", "events": events}],
            }
        ],
        "database_specific": {"severity": "HIGH"},
    }


@pytest.fixture
def fixdb(tmp_path: Path) -> AdvisoryDB:
    root = tmp_path / "osv"
    root.mkdir()
    records = [
        _record("GHSA-fix1-0000-0000", [{"introduced": "0"}, {"fixed": "1.2"}]),
        # 1.2 lands in this one: the loop must go on to 1.5
        _record(
            "GHSA-fix2-0000-0000",
            [{"introduced": "1.1"}, {"fixed": "1.5"}],
            aliases=["CVE-0000-0001"],
        ),
        _record("GHSA-fix3-0000-0000", [{"introduced": "3.0"}]),  # never fixed
    ]
    for r in records:
        (root / f"{r['id']}.json").write_text(json.dumps(r))
    db = AdvisoryDB(tmp_path / "fix.db")
    db.import_sources([OSVSource(root)])
    return db


def test_fix_loop(fixdb: AdvisoryDB) -> None:
    """The smallest fixed version that no advisory affects, like pip-audit's loop; none
    when every candidate is still affected."""
    assert safe_version(fixdb, "PyPI", "fixme", "1.0") == "1.5"
    assert safe_version(fixdb, "PyPI", "fixme", "1.3") == "1.5"
    assert safe_version(fixdb, "PyPI", "fixme", "3.1") is None


def test_plan_deadlines_kev_wins(fixdb: AdvisoryDB) -> None:
    """Deadlines by severity from the policy; a KEV due date replaces it; EPSS and KEV
    reach the findings through the aliases."""
    fixdb.replace_kev(read_kev(INTEL / "known_exploited_vulnerabilities.json"))
    fixdb.replace_epss(read_epss(INTEL / "epss_scores.csv"))
    start = dt.datetime(2026, 12, 1, tzinfo=dt.UTC).timestamp()
    policy = DeadlinePolicy({"critical": 7, "high": 14, "medium": 90, "low": 180})
    assessment = AutomatedVulnerabilityAssessment(fixdb, policy=policy, clock=lambda: start)
    where = Path("requirements.txt")
    scan = assessment.scan_packages(
        [Package("PyPI", "fixme", "1.1", where, 1), Package("PyPI", "fixme", "3.1", where, 2)]
    )
    plan = {s.version: s for s in scan.plan}
    assert (plan["1.1"].target, plan["1.1"].action) == ("1.5", "upgrade")
    assert plan["1.1"].vulnerabilities == ["GHSA-fix2-0000-0000", "GHSA-fix1-0000-0000"]
    assert (plan["1.1"].deadline, plan["1.1"].deadline_reason) == (
        "2026-12-11",
        "CISA KEV due date",
    )
    assert plan["3.1"].to_dict()["advice"] == "no fix: mitigate or remove"
    assert (plan["3.1"].deadline, plan["3.1"].deadline_reason) == ("2026-12-15", "high: 14 days")
    kev = next(f for f in scan.findings if f.vulnerability == "GHSA-fix2-0000-0000")
    assert (kev.priority, kev.epss, kev.kev_due) == ("P1", 0.91234, "2026-12-11")
    assert scan.findings[0] is kev  # highest priority first
    assert scan.counts()["HIGH"] == 2  # vulnerable packages (a version each)
