"""The report as one self-contained, printable HTML page for an auditor.

No script, no external asset: the style is one inline ``<style>`` block, allowed by
its hash in the page's own Content-Security-Policy (:func:`csp_for`), which the
routes send with it (the security headers leave a CSP the app set alone). Every
value is escaped. Evidence is printed in full (no collapsed sections: a printout
shows everything).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from html import escape
from typing import Any

__all__ = ["csp_for", "to_html"]

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111;
margin:2rem auto;max-width:1100px;padding:0 1rem}
h1{font-size:2rem;margin:.2rem 0}h2{font-size:1.3rem;margin-top:2rem;border-bottom:2px solid #333}
.label{border:3px solid #a00;background:#fff4f4;padding:.6rem 1rem;font-weight:700;margin:1rem 0}
.score{font-size:2.4rem;font-weight:800;margin:.5rem 0}
.meta{color:#333}.meta code{font-size:.85rem;word-break:break-all}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border:1px solid #999;padding:.3rem .45rem;vertical-align:top;text-align:left}
th{background:#eee}.control{page-break-inside:avoid}
.s{display:inline-block;padding:0 .4rem;border-radius:3px;font-weight:700;color:#fff}
.pass{background:#1a7f37}.fail{background:#c62828}.error{background:#8a5a00}
.not_applicable{background:#666}.waived{background:#5b3cc4}
pre{white-space:pre-wrap;word-break:break-word;font-size:.75rem;margin:.2rem 0;background:#f6f6f6;
padding:.3rem}
@media print{body{margin:0;max-width:none}.label{border-width:2px}h2{page-break-after:avoid}}
"""


def csp_for() -> str:
    """The page's Content-Security-Policy: nothing but its own style block."""
    digest = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
    return (
        f"default-src 'none'; style-src 'sha256-{digest}'; img-src data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )


def _badge(status: str, waived: bool = False) -> str:
    text = status.replace("_", " ")
    extra = ' <span class="s waived">waived</span>' if waived else ""
    return f'<span class="s {escape(status)}">{escape(text)}</span>{extra}'


def _json(value: Any) -> str:
    return escape(json.dumps(value, sort_keys=True, indent=1, ensure_ascii=False))


def _waiver(w: Mapping[str, Any] | None, word: str = "Waived") -> str:
    if not w:
        return ""
    return (
        f"<div><b>{word}</b> by {escape(str(w['owner']))} until {escape(str(w['expires']))}: "
        f"{escape(str(w['justification']))}</div>"
    )


def to_html(report: Mapping[str, Any]) -> str:
    score = report["score"]
    score_text = "n/a" if score is None else f"{score:g}%"
    run = report["run"]
    head = report.get("audit_head") or {}
    counts = report["counts"]
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(report['title'])} compliance evidence</title>",
        f"<style>{_STYLE}</style></head><body>",
        f'<div class="label">{escape(report["label"])}</div>',
        f"<h1>{escape(report['title'])}</h1>",
        f'<p class="score" id="score">Score: {escape(score_text)}</p>',
        "<p class=meta>"
        + ", ".join(f"{escape(k.replace('_', ' '))}: {v}" for k, v in counts.items())
        + f"; waived: {report['waived']}</p>",
        f"<p class=meta>Run <code>{escape(run['run_id'])}</code> ({escape(run['kind'])}) at "
        f"{escape(run['at_iso'])}; evidence digest <code>{escape(run['digest'])}</code></p>",
        "<p class=meta>Audit head: "
        + (
            f"seq <code>{escape(str(head.get('seq')))}</code> hash "
            f"<code>{escape(str(head.get('hash')))}</code>"
            if head
            else "none (the audit trail was not running)"
        )
        + " &mdash; check with <code>python -m pynomaly_security compliance verify REPORT"
        "</code></p>",
    ]
    period = report.get("period")
    if period:
        parts.append(
            f"<p class=meta>Period {escape(period['from'])} to {escape(period['to'])}: "
            "“held throughout” says whether every check of a control passed at every "
            "sample of the period.</p>"
        )
    parts.append("<h2>Controls</h2>")
    for control in report["controls"]:
        held = ""
        if "held_throughout" in control:
            value = control["held_throughout"]
            held = f" &middot; held throughout: {'unknown' if value is None else value}"
        asvs = ", ".join(control.get("asvs", []))
        parts.append(
            '<div class="control">'
            f"<h3>{escape(control['id'])} &mdash; {escape(control['title'])} "
            f"{_badge(control['status'], control['waived'])}</h3>"
            + (f"<div class=meta>OWASP ASVS 5.0: {escape(asvs)}{held}</div>" if asvs or held
               else "")
            + _waiver(control.get("waiver"))
            + _waiver(control.get("expired_waiver"), "Expired waiver")
            + "<table><tr><th>Check</th><th>Status</th><th>Evidence</th></tr>"
        )  # fmt: skip
        for check in control["checks"]:
            ev = check["evidence"]
            parts.append(
                f"<tr><td><b>{escape(check['check_id'])}</b><br>{escape(check['title'])}</td>"
                f"<td>{_badge(check['status'], bool(check.get('waiver')))}</td>"
                f"<td>{escape(str(ev.get('summary', '')))}"
                + _waiver(check.get("waiver"))
                + _waiver(check.get("expired_waiver"), "Expired waiver")
                + f"<div class=meta>{escape(str(ev.get('method', '')))} at "
                f"{escape(str(ev.get('at', '')))}: {escape(str(ev.get('how', '')))}</div>"
                f"<pre>observed: {_json(ev.get('observed', {}))}</pre>"
                f"<pre>expected: {_json(ev.get('expected', {}))}</pre></td></tr>"
            )
        parts.append("</table></div>")
    if report.get("waivers"):
        parts.append("<h2>Waivers</h2><table><tr><th>Target</th><th>Owner</th><th>Expires</th>"
                     "<th>Justification</th></tr>")  # fmt: skip
        for w in report["waivers"]:
            parts.append(
                f"<tr><td>{escape(w['target'])}</td><td>{escape(w['owner'])}</td>"
                f"<td>{escape(w['expires'])}"
                f"{'' if w.get('active_at_run', True) else ' (expired)'}</td>"
                f"<td>{escape(w['justification'])}</td></tr>"
            )
        parts.append("</table>")
    parts.append(f'<p class="label">{escape(report["label"])}</p></body></html>\n')
    return "\n".join(parts)
