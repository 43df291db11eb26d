"""From check results to per-framework control statuses and scores (waivers applied).

Pure: the same results, waivers and time give the same assessment, so a report
rebuilt from a stored run is the report of that run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pynomaly_security.compliance.catalogue import Catalogue
from pynomaly_security.compliance.results import CheckResult, Status, control_status, score
from pynomaly_security.compliance.waivers import Waivers

__all__ = ["assess", "assess_all", "effective_status"]

WAIVED = "waived"


def effective_status(
    result: CheckResult | None, waivers: Waivers, now: float
) -> tuple[Status, dict[str, Any] | None, dict[str, Any] | None]:
    """(status counted, the active waiver, an expired waiver) of one check."""
    if result is None:
        return Status.ERROR, None, None
    active, expired = waivers.for_check(result.check_id, now)
    if result.status in (Status.FAIL, Status.ERROR) and active is not None:
        return Status.PASS, active.to_dict(), None
    return result.status, None, expired.to_dict() if expired is not None else None


def assess(
    catalogue: Catalogue,
    framework: str,
    results: Mapping[str, CheckResult],
    waivers: Waivers,
    now: float,
) -> dict[str, Any]:
    """One framework: its controls (status, checks with evidence, waivers) and score."""
    fw = catalogue.framework(framework)
    controls: list[dict[str, Any]] = []
    for control in fw.controls:
        checks: list[dict[str, Any]] = []
        counted: list[Status] = []
        for check_id in control.checks:
            result = results.get(check_id)
            status, check_waiver, check_expired = effective_status(result, waivers, now)
            counted.append(status)
            spec = catalogue.checks[check_id]
            checks.append({
                "check_id": check_id,
                "title": spec.title,
                "asvs": list(spec.asvs),
                "status": result.status.value if result is not None else Status.ERROR.value,
                "counted_as": status.value,
                "waiver": check_waiver,
                "expired_waiver": check_expired,
                "evidence": result.to_dict() if result is not None else
                {"summary": "the check has not run yet"},
            })  # fmt: skip
        status = control_status(counted)
        key = f"{framework}/{control.id}"
        active, expired = waivers.for_control(key, now)
        waiver: dict[str, Any] | None = None
        if status in (Status.FAIL, Status.ERROR) and active is not None:
            status, waiver = Status.PASS, active.to_dict()
        waived = waiver is not None or any(c["waiver"] for c in checks)
        controls.append({
            "id": control.id,
            "title": control.title,
            "status": status.value,
            "waived": waived,
            "waiver": waiver,
            "expired_waiver": expired.to_dict() if expired is not None else None,
            "asvs": catalogue.asvs_of(control),
            "checks": checks,
        })  # fmt: skip
    statuses = [Status(str(c["status"])) for c in controls]
    return {
        "framework": framework,
        "title": fw.title,
        "score": score(statuses),
        "counts": {s.value: statuses.count(s) for s in Status},
        "waived": sum(c["waived"] for c in controls),
        "controls": controls,
    }


def assess_all(
    catalogue: Catalogue, results: Mapping[str, CheckResult], waivers: Waivers, now: float
) -> dict[str, dict[str, Any]]:
    return {fw: assess(catalogue, fw, results, waivers, now) for fw in catalogue.frameworks}
