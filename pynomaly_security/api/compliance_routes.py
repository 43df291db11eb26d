"""``/compliance``: the validator's latest status and the reports (issue 19).

Included by the main router under ``/api/security`` behind the admin key (no check
here). ``GET /compliance/status``: every framework's score and each control's status
with its checks' evidence summaries, from the newest run of any worker (at start-up
it waits, bounded, for the first run). ``GET /compliance/report?framework=pci-dss&
format=json|html|oscal|csv[&from=&to=]``: one framework's report; ``html`` is a
self-contained page with its own CSP.

Errors: an unknown framework is 404 naming the known ones; a bad format or time 422;
no run yet 503 with Retry-After; a state backend that fails 503.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import JSONResponse, Response

from pynomaly_security.compliance.html import csp_for, to_html
from pynomaly_security.compliance.oscal import to_oscal
from pynomaly_security.compliance.report import LABEL, to_csv, to_json
from pynomaly_security.compliance.validator import ComplianceValidator

__all__ = ["build_compliance_router"]

_NOT_YET = JSONResponse(
    {"detail": "no compliance run yet; the first runs at start-up"},
    503,
    headers={"Retry-After": "5"},
)


def _ts(value: dt.datetime | None) -> float | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()


def build_compliance_router(validator: ComplianceValidator) -> APIRouter:
    router = APIRouter(prefix="/compliance", tags=["security", "compliance"])

    @router.get("/status")
    async def compliance_status() -> Any:
        await validator.wait_first_run(timeout=30.0)
        run = await validator.latest()
        if run is None:
            return _NOT_YET
        frameworks: dict[str, Any] = {}
        for key in validator.catalogue.frameworks:
            a = validator.assess_run(run, key)
            frameworks[key] = {
                "title": a["title"],
                "score": a["score"],
                "counts": a["counts"],
                "waived": a["waived"],
                "controls": [
                    {
                        "id": c["id"], "title": c["title"], "status": c["status"],
                        "waived": c["waived"],
                        "checks": {k["check_id"]: k["status"] for k in c["checks"]},
                    }
                    for c in a["controls"]
                ],
            }  # fmt: skip
        evidence = {
            cid: {k: doc[k] for k in ("status", "summary", "method", "at", "observed")}
            for cid, doc in run["results"].items()
        }
        return {
            "label": LABEL,
            "run": {
                "run_id": run["run_id"],
                "kind": run["kind"],
                "at": run["at_iso"],
                "digest": run["digest"],
                "audit_head": run.get("audit"),
            },
            "frameworks": frameworks,
            "evidence": evidence,
        }

    @router.get("/report")
    async def compliance_report(
        framework: Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[a-z0-9\-]+$")],
        format: Annotated[Literal["json", "html", "oscal", "csv"], Query()] = "json",
        since: Annotated[
            dt.datetime | None, Query(alias="from", description="ISO 8601 or Unix time")
        ] = None,
        until: Annotated[dt.datetime | None, Query(alias="to")] = None,
    ) -> Response:
        if framework not in validator.catalogue.frameworks:
            known = ", ".join(sorted(validator.catalogue.frameworks))
            raise HTTPException(404, f"unknown framework {framework!r} (known: {known})")
        start, end = _ts(since), _ts(until)
        if start is not None and end is not None and start > end:
            raise HTTPException(422, "from is after to")
        await validator.wait_first_run(timeout=30.0)
        try:
            report = await validator.report(framework, since=start, until=end)
        except LookupError:
            return _NOT_YET
        name = f"compliance-{framework}-{report['run']['run_id']}"
        if format == "html":
            return Response(
                to_html(report),
                media_type="text/html; charset=utf-8",
                headers={"Content-Security-Policy": csp_for()},
            )
        if format == "csv":
            return Response(
                to_csv(report),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
            )
        body = to_oscal(report) if format == "oscal" else to_json(report)
        return Response(body, media_type="application/json")

    return router
