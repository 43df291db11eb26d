"""Threat intelligence (issue 16, item 5): each list format read, malformed lines
named by number, ranges merged and looked up (IPv4 and IPv6), stored and read back,
the CLI end to end (import, list, remove) on a SQLite state, and alerts and incidents
enriched with the lists an address is on and advice per alert type."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi import FastAPI

from pynomaly_security import setup_security_middleware
from pynomaly_security.intel import IntelParseError, IPRangeSet, mitigation_advice, parse_list
from pynomaly_security.intel.store import IntelStore
from pynomaly_security.monitor.events import SecurityAlert, ThreatLevel
from pynomaly_security.settings import SecuritySettings
from pynomaly_security.storage import StorageRegistry

ROOT = Path(__file__).resolve().parents[2]

# -- fixture lists, small and made up (documentation ranges, RFC 5737 / RFC 3849) -----
FIREHOL = """\
#
# firehol_level1
# Maintainer      : FireHOL
#
0.0.0.0/8
192.0.2.0/24
198.51.100.7
2001:db8:10::/48
"""
SPAMHAUS_DROP = """\
; Spamhaus DROP List 2026/12/05 - (c) 2026 The Spamhaus Project SLU
; Last-Modified: Sat, 05 Dec 2026 10:00:00 GMT
192.0.2.0/25 ; SBL123
192.0.2.128/25 ; SBL124
203.0.113.0/26 ; SBL125
"""
TOR_BULK = "203.0.113.77\n203.0.113.78\n2001:db8::77\n"
TOR_DNSEL = """\
ExitNode 0011BD2485AD45D984EC4159C88FC066E5E3300E
Published 2026-12-04 23:19:23
LastStatus 2026-12-05 01:00:00
ExitAddress 203.0.113.90 2026-12-05 01:21:42
ExitNode 0091174DE56EB7F4F8D6C7C1C0C2B2C3D4E5F6A7
ExitAddress 2001:db8::90 2026-12-05 02:00:00
"""
CROWDSEC_CSV = """\
value,scope,reason,duration
203.0.113.100,Ip,crowdsecurity/ssh-bf,24h
198.51.100.0/28,Range,crowdsecurity/http-probing,24h
"""


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        pytest.param(FIREHOL, ["0.1.2.3", "192.0.2.200", "198.51.100.7", "2001:db8:10::9"],
                     ["198.51.100.8", "2001:db8:11::1"], id="firehol"),
        pytest.param(SPAMHAUS_DROP, ["192.0.2.1", "192.0.2.255", "203.0.113.63"],
                     ["203.0.113.64"], id="spamhaus-drop"),
        pytest.param(TOR_BULK, ["203.0.113.77", "2001:db8::77"], ["203.0.113.79"], id="tor-bulk"),
        pytest.param(TOR_DNSEL, ["203.0.113.90", "2001:db8::90"], ["203.0.113.91"], id="tor-dnsel"),
        pytest.param(CROWDSEC_CSV, ["203.0.113.100", "198.51.100.15"], ["198.51.100.16"],
                     id="crowdsec-csv"),
    ],
)  # fmt: skip
def test_each_format_is_read(text: str, inside: list[str], outside: list[str]) -> None:
    """The addresses a list names are in its set; neighbours are not."""
    ranges = IPRangeSet(parse_list(text))
    assert all(ranges.contains(ip) for ip in inside), inside
    assert not any(ranges.contains(ip) for ip in outside), outside


@pytest.mark.parametrize(
    ("text", "line", "why"),
    [
        pytest.param("192.0.2.1\n192.0.2.300\n", 2, "not an IP address", id="bad-octet"),
        pytest.param("# c\n\n10.0.0.0/33\n", 3, "not an IP address or CIDR", id="bad-prefix"),
        pytest.param("192.0.2.1 192.0.2.2\n", 1, "more than one value", id="two-values"),
        pytest.param("1.2.3.4 ; SBL1\nhello ; SBL2\n", 2, "not an IP", id="drop-bad"),
        pytest.param("ExitNode AB\nExitAddress\n", 2, "without an address", id="tor-empty"),
        pytest.param("value,scope\n192.0.2.1,ip\nexample.com,ip\n", 3, "not an IP", id="csv-bad"),
        pytest.param("value,scope\n192.0.2.1,country\n", 2, "scope", id="csv-scope"),
        pytest.param("name,reason\nx,y\n", 1, "CSV header", id="csv-no-column"),
    ],
)
def test_a_malformed_line_is_an_error_naming_its_number(text: str, line: int, why: str) -> None:
    """Nothing half read: the error says which line and why."""
    with pytest.raises(IntelParseError, match=why) as error:
        parse_list(text)
    assert error.value.line == line
    assert str(error.value).startswith(f"line {line}: ")


def test_ranges_are_merged_and_survive_a_round_trip() -> None:
    """Overlapping and adjacent entries merge; an IPv4-mapped IPv6 address is looked up
    as IPv4; dump/load gives the same answers; damaged data is a ValueError."""
    ranges = IPRangeSet(["192.0.2.0/25", "192.0.2.128/25", "192.0.2.10", "198.51.100.0/24", "::/0"])
    assert ranges.entries == 5 and len(ranges) == 3
    assert ranges.contains("::ffff:192.0.2.200") and ranges.contains("2001:db8::1")
    assert not ranges.contains("203.0.113.1") and not ranges.contains("nonsense")
    loaded = IPRangeSet.load(json.loads(json.dumps(ranges.dump())))
    for ip in ("192.0.2.5", "198.51.100.255", "203.0.113.1", "fe80::1"):
        assert loaded.contains(ip) == ranges.contains(ip), ip
    with pytest.raises(ValueError, match="damaged"):
        IPRangeSet.load({"v4s": "!!", "v4e": "", "v6s": "", "v6e": ""})


def test_advice_per_alert_type() -> None:
    """Detector types and correlation rules (``correlation:<id>``) get advice; unknown
    types none."""
    assert "MFA" in (mitigation_advice("brute_force") or "")
    assert mitigation_advice("correlation:brute_force_success") == mitigation_advice("brute_force")
    assert mitigation_advice("correlation:scanner_sweep") is not None
    assert mitigation_advice("something_new") is None


def _cli(*args: str, env_state: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    if env_state is not None:
        env["PYNOMALY_SECURITY__STATE_URL"] = env_state
    return subprocess.run(
        [sys.executable, "-m", "pynomaly_security", "intel", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )


@pytest.mark.anyio
async def test_the_cli_imports_lists_and_removes_them(tmp_path: Path) -> None:
    """``intel import`` stores the list (one JSON line), ``intel list`` shows it,
    a malformed file exits 2 naming the line and stores nothing, ``intel remove``
    removes it; the store reads back what the CLI wrote."""
    state = f"sqlite:///{tmp_path / 'state.db'}"
    drop = tmp_path / "drop.txt"
    drop.write_text(SPAMHAUS_DROP)
    imported = _cli("import", str(drop), "--name", "spamhaus-drop", "--action", "ban",
                    "--ttl", "24h", env_state=state)  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    summary = json.loads(imported.stdout)
    assert summary["name"] == "spamhaus-drop" and summary["entries"] == 3
    assert summary["ranges"] == 2 and summary["expires_at"] - summary["created_at"] == 86_400

    bad = tmp_path / "bad.netset"
    bad.write_text("# list\n192.0.2.1\n192.0.2.999\n")
    refused = _cli("import", str(bad), "--name", "bad", "--state", state)
    assert refused.returncode == 2 and "line 3:" in refused.stderr

    listed = _cli("list", "--state", state)
    assert [json.loads(line)["name"] for line in listed.stdout.splitlines()] == ["spamhaus-drop"]
    async with StorageRegistry() as registry:
        store = IntelStore(registry.state(state))  # type: ignore[arg-type]
        await registry.start()
        lists = await store.load({})
    assert lists["spamhaus-drop"].ranges.contains("192.0.2.77")

    assert _cli("remove", "spamhaus-drop", "--state", state).returncode == 0
    assert _cli("list", "--state", state).stdout == ""
    assert _cli("remove", "spamhaus-drop", "--state", state).returncode == 2
    no_state = _cli("list")
    assert no_state.returncode == 2 and "STATE_URL" in no_state.stderr


@pytest.mark.anyio
async def test_alerts_and_incidents_name_the_lists_their_address_is_on() -> None:
    """An alert from an address on a ``flag`` list carries ``intel_lists`` and advice
    for its type; an incident with that address among its observables names the list."""
    app = FastAPI()
    stack = setup_security_middleware(
        app,
        settings=SecuritySettings(_env_file=None, development_mode=True, admin_api_key="k" * 32),
        enable_audit_logging=False,
    )
    async with stack:
        assert stack.decisions is not None and stack.incidents is not None
        await stack.decisions.import_list(
            "tor-exits", IPRangeSet(parse_list(TOR_BULK)), action="flag", ttl=3600
        )
        alert = SecurityAlert("brute_force", ThreatLevel.HIGH, "many failures", "203.0.113.77")
        await stack.security_monitor.raise_alert(alert)
        stored = await stack.security_monitor.get_active_alerts()
        assert stored[0].details["intel_lists"] == ["tor-exits"]
        assert stored[0].recommended_actions == [mitigation_advice("brute_force")]
        clean = SecurityAlert("brute_force", ThreatLevel.HIGH, "many failures", "192.0.2.1")
        await stack.security_monitor.raise_alert(clean)
        assert "intel_lists" not in clean.details

        incident_id = await stack.incidents.create_incident(
            "Brute force", observables={"ips": ["192.0.2.1", "203.0.113.77"]}
        )
        incident = await stack.incidents.get_incident(incident_id)
        assert incident is not None and incident["intel_lists"] == ["tor-exits"]
