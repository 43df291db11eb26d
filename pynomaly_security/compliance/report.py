"""A framework's report from a stored run: score, each control with its status, the
evidence and the waivers, the audit head the run was written at, and (with a period)
whether each control held throughout it, from the checks' status history.

The report is a pure function of the run, the catalogue, the waivers and the history:
two exports of one run are identical. Renderers: JSON and CSV here, ``html.py``,
``oscal.py``.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from pynomaly_security.compliance.results import iso

__all__ = ["LABEL", "build_report", "period_view", "to_csv", "to_json"]

LABEL = (
    "Evidence, not certification: automated checks of this application's configuration, "
    "responses and data at the time shown. An assessor decides compliance."
)


def period_view(
    history: Mapping[str, Sequence[tuple[float, str]]],
    checks: Sequence[str],
    start: float,
    end: float,
    max_gap: float,
) -> dict[str, Any]:
    """Whether each check held ``pass`` throughout ``[start, end]``: its status at the
    start (the last sample before it), every sample inside, and any gap between samples
    longer than ``max_gap`` (nothing known then: the app was down or the validator off)."""
    out: dict[str, Any] = {}
    for cid in checks:
        samples = list(history.get(cid, ()))
        before = [s for s in samples if s[0] <= start]
        inside = [s for s in samples if start < s[0] <= end]
        timeline = ([before[-1]] if before else []) + inside
        gaps = []
        edges = [start] + [t for t, _ in inside] + [end]
        last_known = before[-1][0] if before else None
        for a, b in itertools.pairwise(edges):
            ref = a if a != start or last_known is None else last_known
            if b - ref > max_gap:
                gaps.append([iso(max(a, start)), iso(b)])
        failures = [iso(t) for t, st in timeline if st != "pass"]
        held: bool | None
        if failures:
            held = False
        elif not before or gaps:
            held = None  # unknown for part of the period
        else:
            held = True
        out[cid] = {
            "held_throughout": held,
            "samples": len(inside),
            "status_at_start": before[-1][1] if before else None,
            "not_passing_at": failures[:50],
            "gaps": gaps[:50],
        }
    return out


def build_report(
    assessment: Mapping[str, Any],
    run: Mapping[str, Any],
    *,
    waivers: Sequence[Mapping[str, Any]] = (),
    period: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The report of one framework's ``assessment`` of ``run``."""
    audit = run.get("audit") or None
    controls = [dict(c) for c in assessment["controls"]]
    if period is not None:
        checks = period["checks"]
        for control in controls:
            held = [checks[c["check_id"]]["held_throughout"] for c in control["checks"]]
            control["held_throughout"] = False if False in held else None if None in held else True
    return {
        "report": "pynomaly-security compliance report",
        "label": LABEL,
        "framework": assessment["framework"],
        "title": assessment["title"],
        "score": assessment["score"],
        "counts": assessment["counts"],
        "waived": assessment["waived"],
        "run": {
            "run_id": run["run_id"],
            "kind": run["kind"],
            "at": run["at"],
            "at_iso": run["at_iso"],
            "digest": run["digest"],
        },
        "audit_head": audit,
        "controls": controls,
        "waivers": list(waivers),
        "period": dict(period) if period is not None else None,
        "results": run["results"],
    }


def to_json(report: Mapping[str, Any]) -> str:
    return json.dumps(report, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


_CSV_FIELDS = [
    "framework", "control_id", "control_title", "control_status", "control_waived",
    "check_id", "check_status", "counted_as", "method", "summary", "observed", "expected",
    "asvs", "waiver_owner", "waiver_expires", "waiver_justification", "evidence_at",
    "run_id", "audit_seq", "audit_hash",
]  # fmt: skip


def to_csv(report: Mapping[str, Any]) -> str:
    """One row per (control, check), evidence as compact JSON."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=_CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    head = report.get("audit_head") or {}
    for control in report["controls"]:
        for check in control["checks"]:
            ev = check["evidence"]
            waiver = check.get("waiver") or control.get("waiver") or {}
            writer.writerow({
                "framework": report["framework"], "control_id": control["id"],
                "control_title": control["title"], "control_status": control["status"],
                "control_waived": control["waived"], "check_id": check["check_id"],
                "check_status": check["status"], "counted_as": check["counted_as"],
                "method": ev.get("method", ""), "summary": ev.get("summary", ""),
                "observed": json.dumps(ev.get("observed", {}), sort_keys=True),
                "expected": json.dumps(ev.get("expected", {}), sort_keys=True),
                "asvs": " ".join(check["asvs"]), "waiver_owner": waiver.get("owner", ""),
                "waiver_expires": waiver.get("expires", ""),
                "waiver_justification": waiver.get("justification", ""),
                "evidence_at": ev.get("at", ""), "run_id": report["run"]["run_id"],
                "audit_seq": head.get("seq", ""), "audit_hash": head.get("hash", ""),
            })  # fmt: skip
    return buf.getvalue()
