"""The catalogue (shipped, extended, never loosened) and waivers (until their expiry)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from pynomaly_security import setup_security_middleware
from pynomaly_security.compliance import CheckContext, CheckResult, Status, load_catalogue
from pynomaly_security.exceptions import ConfigurationError

from ._app import build, settings, status

pytestmark = pytest.mark.anyio

# The controls the issue names, per framework (the catalogue may hold more).
NAMED = {
    "gdpr": {"art5", "art25", "art30", "art32", "art33"},
    "soc2": {"CC6.1", "CC6.6", "CC6.7", "CC6.8", "CC7.1", "CC7.2", "CC7.3", "CC7.4"},
    "iso27001": {"A.5.15", "A.8.5", "A.8.15", "A.8.16", "A.8.24", "A.8.28"},
    "nist-800-53": {"AC-7", "AU-2", "AU-9", "AU-11", "IA-2", "SC-8", "SC-13", "SI-10"},
}


def test_shipped_catalogue_has_every_named_control() -> None:
    """Each framework the issue lists is there with its controls, each with checks."""
    catalogue = load_catalogue()
    for fw, ids in NAMED.items():
        assert ids <= {c.id for c in catalogue.framework(fw).controls}, fw
    pci = {c.id.split(".")[0] for c in catalogue.framework("pci-dss").controls}
    assert {"3", "6", "7", "8", "10", "11"} <= pci
    assert any(c.id.startswith("6.4") for c in catalogue.framework("pci-dss").controls)
    hipaa = [c.id for c in catalogue.framework("hipaa").controls]
    assert any(i.startswith("164.308") for i in hipaa)
    assert any(i.startswith("164.312") for i in hipaa)
    assert catalogue.checks["headers.hsts"].asvs == ["3.4.1"]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_loosened_threshold_is_refused(tmp_path: Path) -> None:
    """An app's catalogue may tighten a shipped threshold but never loosen it."""
    tighter = _write(
        tmp_path / "t.yaml",
        """
checks:
  headers.hsts: {kind: hsts_setting, title: two years, params: {min_max_age: 63072000}}
""",
    )
    assert load_catalogue(tighter).checks["headers.hsts"].params["min_max_age"] == 63072000
    looser = _write(
        tmp_path / "l.yaml",
        """
checks:
  auth.lockout: {kind: lockout_threshold, title: lax, params: {max_attempts: 50}}
""",
    )
    with pytest.raises(ConfigurationError, match="loosens max_attempts"):
        load_catalogue(looser)
    fewer = _write(
        tmp_path / "f.yaml",
        """
checks:
  headers.csp: {kind: csp_setting, title: lax, params: {forbidden: []}}
""",
    )
    with pytest.raises(ConfigurationError, match="loosens forbidden"):
        load_catalogue(fewer)
    unknown = _write(
        tmp_path / "u.yaml",
        """
frameworks:
  gdpr: {title: GDPR, controls: [{id: art99, title: x, checks: [no.such.check]}]}
""",
    )
    with pytest.raises(ConfigurationError, match="unknown checks"):
        load_catalogue(unknown)


async def test_user_controls_and_check_kinds(tmp_path: Path) -> None:
    """An app adds a framework with a control evidenced by its own check kind."""
    extra = _write(
        tmp_path / "mine.yaml",
        """
checks:
  app.backups: {kind: backups_recent, title: Backups younger than a day, params: {max_age_h: 24}}
frameworks:
  internal:
    title: Our policy
    controls:
      - {id: BK-1, title: Backups, checks: [app.backups, headers.hsts]}
  pci-dss:
    title: PCI DSS 4.0
    controls:
      - {id: "12.10.1", title: Incident response plan, checks: [incidents.overdue]}
""",
    )
    _app, stack, validator = build(tmp_path, compliance_catalogue_file=str(extra))

    async def backups(ctx: CheckContext, cid: str, params: Mapping[str, Any]) -> CheckResult:
        return ctx.result(cid, Status.FAIL, "last backup 30 h ago", observed={"age_h": 30},
                          expected=dict(params), method="data")  # fmt: skip

    validator.register_kind("backups_recent", backups)
    async with stack:
        run = await validator.run("cheap")
    assert status(run, "app.backups") == "fail"
    assert run["controls"]["internal/BK-1"] == "fail"
    assert run["controls"]["pci-dss/12.10.1"] == "pass"
    assert run["scores"]["internal"] == 0.0


async def test_unknown_kind_stops_start(tmp_path: Path) -> None:
    extra = _write(tmp_path / "k.yaml", "checks:\n  x.y: {kind: nothing_like_it, title: t}\n")
    _app, _stack, validator = build(tmp_path, compliance_catalogue_file=str(extra))
    with pytest.raises(ConfigurationError, match="unknown kinds"):
        await validator.start()


def _waivers(tmp_path: Path, expires: dt.date, target: str = "check: mfa.admins") -> Path:
    return _write(
        tmp_path / "waivers.yaml",
        f"""
waivers:
  - {target}
    justification: admins sign in through the corporate IdP, which enforces MFA
    owner: security@example.com
    expires: {expires.isoformat()}
""",
    )


async def test_a_waiver_passes_a_failing_check_until_it_expires(tmp_path: Path) -> None:
    """Waived, the failing check counts as passing (shown waived, with the waiver); past
    its expiry day the same failure counts again and the waiver is listed as expired."""
    from ._app import users

    expires = dt.date(2031, 6, 30)
    path = _waivers(tmp_path, expires)
    _app, stack, validator = build(tmp_path, compliance_waivers_file=str(path))
    validator.sources.users = users(("a", True, False))
    end_of_day = dt.datetime(2031, 6, 30, 23, 59, 59, tzinfo=dt.UTC).timestamp()
    validator._clock = lambda: end_of_day
    async with stack:
        run = await validator.run("full")
        assert status(run, "mfa.admins") == "fail"  # the check still says what it saw
        assert run["controls"]["pci-dss/8.4.1"] == "pass"
        report = await validator.report("pci-dss")
        control = next(c for c in report["controls"] if c["id"] == "8.4.1")
        assert control["waived"] is True
        assert control["checks"][0]["waiver"]["owner"] == "security@example.com"
        validator._clock = lambda: end_of_day + 2
        run = await validator.run("full")
        assert run["controls"]["pci-dss/8.4.1"] == "fail"
        report = await validator.report("pci-dss")
        control = next(c for c in report["controls"] if c["id"] == "8.4.1")
        assert control["waived"] is False
        assert control["checks"][0]["expired_waiver"]["expires"] == "2031-06-30"


async def test_a_control_waiver(tmp_path: Path) -> None:
    from ._app import users

    path = _waivers(tmp_path, dt.date(2099, 1, 1), "control: gdpr/art32")
    _app, stack, validator = build(tmp_path, compliance_waivers_file=str(path))
    validator.sources.users = users(("a", True, False))
    async with stack:
        run = await validator.run("full")
    assert run["controls"]["gdpr/art32"] == "pass"
    assert run["controls"]["pci-dss/8.4.1"] == "fail"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        pytest.param("waivers:\n  - {check: mfa.users, owner: me, expires: 2030-01-01}\n",
                     "justification", id="no-justification"),
        pytest.param("waivers:\n  - {check: mfa.users, justification: a good reason here, "
                     "owner: me}\n", "expires", id="no-expiry"),
        pytest.param("waivers:\n  - {check: mfa.users, justification: a good reason here, "
                     "owner: me, expires: next year}\n", "expires", id="bad-date"),
        pytest.param("waivers:\n  - {check: mfa.users, justification: a good reason here, "
                     "owner: '', expires: 2030-01-01}\n", "owner", id="empty-owner"),
        pytest.param("waivers:\n  - {check: no.such, justification: a good reason here, "
                     "owner: me, expires: 2030-01-01}\n", "unknown check", id="unknown-check"),
        pytest.param("waivers:\n  - {control: gdpr/art99, justification: a good reason, "
                     "owner: me, expires: 2030-01-01}\n", "unknown control", id="unknown-ctl"),
        pytest.param("waivers: [1, 2\n", "COMPLIANCE_WAIVERS_FILE", id="not-yaml"),
        pytest.param("waivers:\n  - {check: mfa.users, control: gdpr/art32, justification: "
                     "a good reason, owner: me, expires: 2030-01-01}\n", "exactly one",
                     id="two-targets"),
    ],
)  # fmt: skip
def test_malformed_waivers_stop_start_up(tmp_path: Path, text: str, match: str) -> None:
    """setup_security_middleware raises, naming the file and the entry at fault."""
    path = _write(tmp_path / "w.yaml", text)
    with pytest.raises(ConfigurationError, match=match):
        setup_security_middleware(
            FastAPI(), settings=settings(tmp_path, compliance_waivers_file=str(path))
        )
