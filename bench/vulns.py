"""Speed and memory of the advisory database (issue 18 targets).

Measures, each import in a child process of its own (so its peak RSS is its own):

* importing every shared advisory (``../shared/datasets/advisories``: 5,228 records,
  YAML and JSON) into a new SQLite file: records/s and peak RSS;
* importing a large generated ``all.zip`` (``--records``, default 50,000 synthetic
  OSV JSON records shaped like npm's GHSA records: aliases, SEMVER ranges with
  several events, CVSS vectors, a few hundred bytes of details), since no all-npm
  export is available offline: records/s and peak RSS;
* scanning a 1,000-package ``requirements.txt`` against the database of all shared
  advisories: every PyPI package the database names (660) plus unknown packages up to
  1,000; once pinned at each package's newest fixed version (the usual lockfile: known
  names, few vulnerable), once at a version the records list as affected (the worst
  case: matching, scoring and the fix loop for 650 vulnerable packages); in a child
  process of its own: the imports, then the first scan (opening the database, reading
  and parsing what it needs: no cache is warm), then the median of ``--rounds`` more.

Targets: scan <= 200 ms, import >= 5,000 records/s, peak RSS during import <= 200 MB.

Usage::

    python bench/vulns.py [--records 50000] [--rounds 7] [--shared ../shared/datasets]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_CHILD = """
import json, resource, sys, time
from pathlib import Path
from pynomaly_security.vulns.sources import OSVSource
from pynomaly_security.vulns.store import AdvisoryDB
db_path, *paths = sys.argv[1:]
sources = [OSVSource(Path(p)) for p in paths]
start, cpu = time.perf_counter(), time.process_time()
with AdvisoryDB(db_path, building=True) as db:  # a new file, as refresh and --replace build
    result = db.import_sources(sources)
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
records = sum(s.records for s in sources)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"records": records, "seconds": seconds, "cpu": cpu, "peak_mb": peak}))
"""


def _in_child(script: str, *args: str) -> dict[str, float]:
    """Run ``script`` in a fresh interpreter; it prints one JSON object."""
    out = subprocess.run(
        [sys.executable, "-c", script, *args],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


def import_in_child(db: Path, *paths: Path) -> dict[str, float]:
    return _in_child(_CHILD, str(db), *map(str, paths))


def _rate(r: dict[str, float]) -> str:
    # CPU seconds too: the machine is shared, and wall time counts the other tenants.
    return (
        f"{r['records']:,.0f} records in {r['seconds']:.2f} s wall ({r['cpu']:.2f} s CPU)"
        f" = {r['records'] / r['seconds']:,.0f} records/s wall,"
        f" {r['records'] / r['cpu']:,.0f} per CPU second; peak RSS {r['peak_mb']:.0f} MB"
    )


def synthetic_zip(path: Path, records: int, rng: random.Random) -> None:
    """OSV JSON records shaped like GHSA npm records (seeded: every run the same)."""
    vectors = [
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:L/A:N",
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N",
    ]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for n in range(records):
            major = rng.randint(0, 9)
            record = {
                "schema_version": "1.6.0",
                "id": f"GHSA-bench-{n:04x}-{rng.getrandbits(16):04x}",
                "modified": "2026-01-01T00:00:00Z",
                "published": "2025-01-01T00:00:00Z",
                "aliases": [f"CVE-2099-{n:05d}"],
                "summary": f"Synthetic advisory {n} for the benchmark",
                "details": "x" * rng.randint(200, 800),
                "severity": [{"type": "CVSS_V3", "score": rng.choice(vectors)}],
                "affected": [
                    {
                        "package": {"ecosystem": "npm", "name": f"bench-pkg-{n % 20000}"},
                        "ranges": [
                            {
                                "type": "SEMVER",
                                "events": [
                                    {"introduced": f"{major}.0.0"},
                                    {"fixed": f"{major}.{rng.randint(1, 20)}.{rng.randint(0, 9)}"},
                                ],
                            }
                        ],
                        "database_specific": {"source": "bench"},
                    }
                ],
                "references": [{"type": "ADVISORY", "url": f"https://example.invalid/{n}"}],
                "database_specific": {"severity": "HIGH", "cwe_ids": ["CWE-79"]},
            }
            archive.writestr(f"{record['id']}.json", json.dumps(record))


def lockfile(db_path: Path, path: Path, size: int, *, vulnerable: bool) -> int:
    """A requirements.txt of ``size`` pins: every PyPI package the database names, at
    a version its records list as affected (``vulnerable``: the worst case, every one
    of them vulnerable) or at its newest fixed version (the usual case: known names,
    up to date), then unknown packages. Returns how many the database names."""
    from pynomaly_security.vulns.store import AdvisoryDB
    from pynomaly_security.vulns.versions import sort_key

    key = sort_key("PyPI")
    with AdvisoryDB(db_path, create=False) as db:
        names = [
            n
            for (n,) in db._conn.execute(  # the bench reads the index directly
                "SELECT DISTINCT name FROM affected WHERE ecosystem='PyPI' ORDER BY name"
            )
        ][:size]
        lines = []
        for name in names:
            records = db.candidates("PyPI", name)
            listed = sorted({v for r in records for e in r.entries for v in e.versions})
            fixes = sorted({f for r in records for f in r.fixed_versions()}, key=key)
            if vulnerable and listed:
                lines.append(f"{name}=={listed[0]}")
            elif fixes:
                lines.append(f"{name}=={fixes[-1]}")
    known = len(lines)
    lines += [f"unknown-bench-package-{n}==1.0.{n}" for n in range(size - known)]
    path.write_text("\n".join(lines) + "\n")
    return known


_SCAN_CHILD = """
import gc, json, statistics, sys, time
cpu = time.process_time()
from pynomaly_security.vulns.assessment import AutomatedVulnerabilityAssessment
imports = time.process_time() - cpu
db_path, lock, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
collecting = []  # CPU seconds of each full collection during the first scan
def watch(phase, info):
    if info["generation"] == 2:
        collecting.append(time.process_time() * (1 if phase == "stop" else -1))
gc.callbacks.append(watch)
assessment = AutomatedVulnerabilityAssessment(db_path)  # opens nothing yet
cpu = time.process_time()
scan = assessment.scan_path(lock)  # opens the database, reads and parses everything
first = time.process_time() - cpu
gc.callbacks.remove(watch)
times = []
for _ in range(rounds):
    cpu = time.process_time()
    assessment.scan_path(lock)
    times.append(time.process_time() - cpu)
print(json.dumps({"imports": imports, "first": first, "warm": statistics.median(times),
                  "gc": sum(collecting), "vulnerable": len(scan.plan),
                  "findings": len(scan.findings)}))
"""


def time_scan(db_path: Path, lock: Path, rounds: int) -> dict[str, float]:
    """In a fresh process: the imports, the first scan (opening the database included),
    the median of ``rounds`` more, in CPU seconds (one thread; the machine is shared,
    wall time would count the other tenants); vulnerable packages; findings."""
    return _in_child(_SCAN_CHILD, str(db_path), str(lock), str(rounds))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "datasets")
    args = parser.parse_args()
    advisories = args.shared / "advisories"
    if not advisories.is_dir():
        sys.exit(f"no shared advisories at {advisories}")
    print(f"Python {sys.version.split()[0]}; peak RSS is the importing process's maximum")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shared_db = work / "shared.db"
        r = import_in_child(shared_db, advisories)
        print(f"import shared advisories: {_rate(r)}")
        export = work / "all.zip"
        synthetic_zip(export, args.records, random.Random(18))
        r = import_in_child(work / "big.db", export)
        print(f"import synthetic all.zip ({export.stat().st_size / 1e6:.0f} MB zipped): {_rate(r)}")
        for vulnerable in (False, True):
            lock = work / f"requirements-{vulnerable}.txt"
            known = lockfile(shared_db, lock, 1000, vulnerable=vulnerable)
            r = time_scan(shared_db, lock, args.rounds)
            what = "worst case, at affected versions" if vulnerable else "at their newest fix"
            print(
                f"scan 1,000-package requirements.txt, {known} named by the database ({what}):"
                f" {r['vulnerable']:.0f} vulnerable, {r['findings']:.0f} findings;"
                f" first scan in a fresh process {r['first'] * 1000:.0f} ms CPU (database"
                f" opened and read; {r['gc'] * 1000:.0f} ms of it the garbage collector's"
                f" full pass over what the imports left), then median of {args.rounds}"
                f" {r['warm'] * 1000:.0f} ms CPU; the imports before it"
                f" {r['imports'] * 1000:.0f} ms CPU"
            )
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(this process, scan included: peak RSS {own:.0f} MB)")


if __name__ == "__main__":
    main()
