"""The report as OSCAL 1.1 assessment results (JSON), for GRC tools.

One ``result`` per export: every check of the framework's controls is an
``observation`` (its evidence: summary, method, when, the observed and expected values
as props and remarks), every applicable control a ``finding`` whose target status is
``satisfied`` (pass, or waived, with the waiver in its remarks) or ``not-satisfied``;
controls with no applicable check are listed under ``exclude-controls``. Control ids
become OSCAL tokens (``pci-dss_8.3.4``; the catalogue's id is kept in a prop).

Every UUID is a UUID 5 of the run id and the object's name, and every time is the
run's, so two exports of one run are byte-identical. Validated in the tests with
compliance-trestle's OSCAL 1.1.3 models (the ``oscal`` extra), generated from NIST's
published JSON schema.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

from pynomaly_security.compliance.report import LABEL

__all__ = ["OSCAL_VERSION", "control_token", "to_oscal"]

OSCAL_VERSION = "1.1.3"
NS = "https://pynomaly-security.invalid/ns/compliance"
"""Our props' namespace (a name, never fetched: ``.invalid`` resolves nowhere)."""
_NAMESPACE = uuid.UUID("8d3e8f0e-5f1b-5c8e-9a51-7f2f3c1f9e19")
_METHOD = {"probe": "TEST", "settings": "EXAMINE", "data": "TEST"}


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "|".join(parts)))


def control_token(framework: str, control_id: str) -> str:
    """A TokenDatatype (letter first; letters, digits, ``.``, ``-``, ``_``)."""
    body = re.sub(r"[^A-Za-z0-9.\-_]+", "_", control_id).strip("_")
    return f"{framework}_{body}"


def _prop(name: str, value: Any) -> dict[str, str]:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return {"name": name, "ns": NS, "value": text or "-"}


def to_oscal(report: Mapping[str, Any]) -> str:
    run = report["run"]
    fw = report["framework"]
    run_id = run["run_id"]
    at = run["at_iso"]
    head = report.get("audit_head") or {}
    observations: dict[str, dict[str, Any]] = {}
    findings = []
    included, excluded = [], []
    for control in report["controls"]:
        token = control_token(fw, control["id"])
        obs_ids = []
        for check in control["checks"]:
            cid = check["check_id"]
            obs_uuid = _uuid(run_id, fw, "observation", cid)
            obs_ids.append(obs_uuid)
            if obs_uuid in observations:
                continue
            ev = check["evidence"]
            props = [
                _prop("check-id", cid),
                _prop("check-status", check["status"]),
                _prop("counted-as", check["counted_as"]),
            ]
            if check["asvs"]:
                props.append(_prop("asvs-5.0", " ".join(check["asvs"])))
            obs: dict[str, Any] = {
                "uuid": obs_uuid,
                "title": check["title"],
                "description": str(ev.get("summary") or check["title"]),
                "props": props,
                "methods": [_METHOD.get(str(ev.get("method")), "TEST")],
                "relevant-evidence": [
                    {"description": f"{ev.get('method', '')}: {ev.get('how', '') or 'n/a'}"}
                ],
                "collected": str(ev.get("at") or at),
                "remarks": json.dumps(
                    {
                        "observed": ev.get("observed", {}),
                        "expected": ev.get("expected", {}),
                        "waiver": check.get("waiver"),
                    },
                    sort_keys=True,
                ),
            }
            observations[obs_uuid] = obs
        if control["status"] == "not_applicable":
            excluded.append({"control-id": token})
            continue
        included.append({"control-id": token})
        satisfied = control["status"] == "pass"
        remarks = f"status: {control['status']}"
        if control["waived"]:
            remarks += "; waived: " + json.dumps(
                control.get("waiver") or [c["waiver"] for c in control["checks"] if c["waiver"]],
                sort_keys=True,
            )
        findings.append({
            "uuid": _uuid(run_id, fw, "finding", control["id"]),
            "title": f"{control['id']}: {control['title']}",
            "description": f"{report['title']} {control['id']} is {control['status']}"
            + (" (waived)" if control["waived"] else ""),
            "props": [_prop("control-id", control["id"]), _prop("status", control["status"])],
            "target": {
                "type": "objective-id",
                "target-id": token,
                "status": {"state": "satisfied" if satisfied else "not-satisfied"},
            },
            "related-observations": [{"observation-uuid": u} for u in obs_ids],
            "remarks": remarks,
        })  # fmt: skip
    selection: dict[str, Any] = {"description": f"{report['title']} controls of the catalogue"}
    if included:
        selection["include-controls"] = included
    if excluded:
        selection["exclude-controls"] = excluded
    result: dict[str, Any] = {
        "uuid": _uuid(run_id, fw, "result"),
        "title": f"{report['title']}: automated evidence",
        "description": LABEL,
        "start": at,
        "end": at,
        "props": [
            _prop("framework", fw),
            _prop("score", "n/a" if report["score"] is None else f"{report['score']:g}"),
            _prop("run-id", run_id),
            _prop("evidence-digest", run["digest"]),
            _prop("audit-seq", str(head.get("seq", "none"))),
            _prop("audit-hash", str(head.get("hash") or "none")),
        ],
        "reviewed-controls": {"control-selections": [selection]},
        "observations": list(observations.values()),
        "remarks": LABEL,
    }
    if findings:
        result["findings"] = findings
    doc = {
        "assessment-results": {
            "uuid": _uuid(run_id, fw),
            "metadata": {
                "title": f"{report['title']} compliance evidence (pynomaly-security)",
                "last-modified": at,
                "version": run_id,
                "oscal-version": OSCAL_VERSION,
                "remarks": LABEL,
            },
            "import-ap": {"href": f"urn:pynomaly-security:assessment-plan:{fw}"},
            "results": [result],
        }
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
