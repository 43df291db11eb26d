"""The example's advisory database (``make demo`` -> ``/api/security/vulnerabilities``).

``python -m examples`` builds ``.pynomaly-demo-vulns.db`` on first run (or whatever
``PYNOMALY_SECURITY__VULNS_DB_PATH`` names) from the shared OSV data when
``../shared/datasets/advisories`` is there, plus ``examples/advisories/`` (one
demonstration record, clearly not a real advisory, so the page always shows a finding,
its plan and its alert). A real deployment runs ``python -m pynomaly_security vulndb
refresh`` (or ``import``) instead.
"""

from __future__ import annotations

from pathlib import Path

from pynomaly_security.vulns.sources import OSVSource
from pynomaly_security.vulns.store import AdvisoryDB

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "datasets" / "advisories"
DEMO_DB = ".pynomaly-demo-vulns.db"


def ensure_demo_database(path: str | Path) -> str:
    """Build the database at ``path`` unless it exists; says what it holds."""
    target = Path(path)
    if target.is_file():
        return f"advisory database {target} (kept from an earlier run)"
    sources = [OSVSource(HERE / "advisories")]
    if SHARED.is_dir():
        sources.insert(0, OSVSource(SHARED))
    with AdvisoryDB(target) as db:
        result = db.import_sources(sources)
    where = " + ".join(str(s.path) for s in sources)
    return f"advisory database {target}: {result['imported']} records from {where}"
