"""Check a report against the catalogue and the audit trail (``compliance verify``).

Three things, each named in the result:

1. ``digest``: the report's results hash to the digest it claims (SHA-256 of the run
   id, time and results in canonical JSON), and its score and control statuses are what
   the catalogue and the report's own waivers make of those results (a report whose
   verdicts were edited fails here);
2. ``head``: the audit trail verifies (signatures pinned to the auditor's public key or
   the master key's, the anchors) and contains the report's audit head (seq and hash);
3. ``binding``: the record at that head is this run's ``compliance_run`` event with the
   same digest; reading it needs the master key (records are encrypted), so without
   one this part is reported as not checked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pynomaly_security.compliance.assess import assess
from pynomaly_security.compliance.catalogue import Catalogue
from pynomaly_security.compliance.results import CheckResult
from pynomaly_security.compliance.validator import AUDIT_EVENT, results_digest
from pynomaly_security.compliance.waivers import Waiver, Waivers

__all__ = ["ReportCheck", "check_report_content", "check_report_record"]


@dataclass
class ReportCheck:
    ok: bool = True
    lines: list[str] = field(default_factory=list)

    def fail(self, text: str) -> None:
        self.ok = False
        self.lines.append("FAIL " + text)

    def good(self, text: str) -> None:
        self.lines.append("OK   " + text)

    def note(self, text: str) -> None:
        self.lines.append("--   " + text)


def _waivers(report: Mapping[str, Any]) -> Waivers:
    out = []
    for w in report.get("waivers", []):
        kind, _, target = str(w["target"]).partition(":")
        out.append(
            Waiver(
                **{kind: target},
                justification=w["justification"],
                owner=w["owner"],
                expires=dt.date.fromisoformat(w["expires"]),
            )
        )
    return Waivers(out)


def check_report_content(report: Mapping[str, Any], catalogue: Catalogue, out: ReportCheck) -> None:
    run = report["run"]
    results = report["results"]
    digest = results_digest(run["run_id"], run["at"], results)
    if digest != run["digest"]:
        out.fail(f"digest: the results hash to {digest}, the report says {run['digest']}")
        return
    out.good(f"digest: the results hash to {digest}")
    parsed = {cid: CheckResult.from_dict(doc) for cid, doc in results.items()}
    try:
        again = assess(catalogue, report["framework"], parsed, _waivers(report), float(run["at"]))
    except KeyError as exc:
        out.fail(f"verdicts: {exc}")
        return
    mine = {c["id"]: c["status"] for c in again["controls"]}
    theirs = {c["id"]: c["status"] for c in report["controls"]}
    if again["score"] != report["score"] or mine != theirs:
        changed = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
        out.fail(
            f"verdicts: the results give score {again['score']} and differ on {changed}; the "
            f"report says score {report['score']}"
        )
        return
    out.good(f"verdicts: score {again['score']} and {len(mine)} control statuses follow")


def check_report_record(
    report: Mapping[str, Any], record: Mapping[str, Any] | None, out: ReportCheck
) -> None:
    run = report["run"]
    if record is None:
        out.fail("binding: no record at the report's audit head could be read")
        return
    details = record.get("details") or {}
    if record.get("event_type") != AUDIT_EVENT or details.get("run_id") != run["run_id"]:
        out.fail(
            f"binding: the record at the head is {record.get('event_type')!r} of run "
            f"{details.get('run_id')!r}, not this run's {AUDIT_EVENT}"
        )
        return
    if details.get("digest") != run["digest"]:
        held = details.get("digest")
        out.fail(f"binding: the audit record holds digest {held}, not the report's")
        return
    out.good(f"binding: the audit record at the head is run {run['run_id']} with the same digest")
