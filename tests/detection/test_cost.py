"""Inspection cost is bounded per request (issue 12, "Beyond the list"): header
bytes, JSON elements and normalized text are capped and counted, and long values
are segmented after normalization, so no request stalls the loop and no payload
hides at a segment edge. No timed assertions: refusals are asserted by status and
reason, the budget's clock is injected, and work by what normalization reports."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest

from pynomaly_security.detection import Inspector, RequestParts
from pynomaly_security.detection._engine import SHELL_OVERLAP, SHELL_WINDOW
from pynomaly_security.detection.inspector import SEGMENT_CHARS
from pynomaly_security.detection.types import InspectionLimits

from ._helpers import query

JSON = ((b"content-type", b"application/json"),)
MIB = 1 << 20


def _json(body: bytes) -> RequestParts:
    return RequestParts("POST", "/", b"", JSON, body)


def _refusal(verdict: object) -> tuple[object, object]:
    return (getattr(verdict, "reject_status", None), getattr(verdict, "reject_reason", None))


def _frozen() -> float:
    """A CPU clock that never advances: the budget is never exceeded."""
    return 0.0


def _always_over() -> Callable[[], float]:
    """A CPU clock whose every read after the first is an hour later: the first
    budget check refuses."""
    reads = iter(range(0, 10**9, 3600))
    return lambda: float(next(reads))


# -- F1a: header values ----------------------------------------------------------------


def test_a_hundred_megabyte_headers_are_refused_before_any_scan() -> None:
    """100 headers of 1 MB each (uvicorn accepts them) took seconds to scan and
    passed; now the inspected header bytes are capped: 431 ``headers_too_large``."""
    value = b"lorem ipsum " * (MIB // 12)
    headers = tuple((f"x-h{i}".encode(), value) for i in range(100))
    verdict = Inspector().inspect(RequestParts("GET", "/", b"", headers))
    assert _refusal(verdict) == (431, "headers_too_large")


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(((b"user-agent", b"a" * 70_000),), id="one-user-agent"),
        pytest.param(tuple((b"cookie", b"c=" + b"v" * 30_000) for _ in range(3)), id="cookies"),
        pytest.param(tuple((f"x-{i}".encode(), b"v" * 20_000) for i in range(4)), id="x-headers"),
    ],
)
def test_inspected_header_bytes_past_the_cap_are_refused(
    headers: tuple[tuple[bytes, bytes], ...],
) -> None:
    """The cap is on the inspected header values of the request together."""
    verdict = Inspector().inspect(RequestParts("GET", "/", b"", headers))
    assert _refusal(verdict) == (431, "headers_too_large")


def test_the_header_cap_is_a_setting_and_ordinary_headers_pass() -> None:
    """Browser-sized headers pass; the cap is ``max_header_bytes``; headers that are
    not inspected (``Accept-Encoding``) do not count."""
    browser = (
        (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
        (b"cookie", "; ".join(f"pref{i}=value-{i}" for i in range(200)).encode()),
        (b"referer", b"https://example.com/some/page?with=query"),
        (b"accept-encoding", b"gzip, br, " * 10_000),
    )
    inspector = Inspector(clock=_frozen)
    assert _refusal(inspector.inspect(RequestParts("GET", "/", b"", browser))) == (None, None)
    small = Inspector(limits=InspectionLimits(max_header_bytes=1000), clock=_frozen)
    assert _refusal(small.inspect(RequestParts("GET", "/", b"", browser))) == (
        431,
        "headers_too_large",
    )


def test_header_scanning_is_within_the_cpu_budget() -> None:
    """A request whose path, query and body are small used to have no budget at
    all, so large header values were scanned unmetered; the budget now counts them."""
    headers = ((b"x-note", ("lorem ipsum dolor sit amet " * 2000).encode()),)
    verdict = Inspector(clock=_always_over()).inspect(RequestParts("GET", "/", b"", headers))
    assert _refusal(verdict) == (413, "inspection_budget_exceeded")
    assert _refusal(Inspector(clock=_frozen).inspect(RequestParts("GET", "/", b"", headers))) == (
        None,
        None,
    )


# -- F1b: JSON elements ----------------------------------------------------------------


@pytest.mark.parametrize(
    "element",
    [
        pytest.param(b"{}", id="empty-objects"),
        pytest.param(b"[]", id="empty-arrays"),
        pytest.param(b"0", id="numbers"),
        pytest.param(b"true", id="constants"),
        pytest.param(b'{"a":null}', id="members"),
    ],
)
def test_a_json_body_of_more_elements_than_the_cap_is_refused_before_parsing(
    element: bytes,
) -> None:
    """``[{},{},...]`` of 1 MB took seconds to parse and walk before its 413; the
    elements are now counted first: 413 ``json_too_many_elements``."""
    body = b"[" + b",".join([element] * (MIB // (len(element) + 1))) + b"]"
    verdict = Inspector().inspect(_json(body))
    assert _refusal(verdict) == (413, "json_too_many_elements")


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16", "utf-32-be", "utf-8-sig"])
def test_the_json_element_count_reads_the_bodys_encoding(encoding: str) -> None:
    """``json.loads`` reads UTF-16 and UTF-32 bodies (and a BOM): so does the count,
    whose escaped quote cannot hide the elements after it."""
    body = ('["\\"", ' + ",".join(["{}"] * 30_000) + "]").encode(encoding)
    verdict = Inspector(clock=_frozen).inspect(_json(body))
    assert _refusal(verdict) == (413, "json_too_many_elements")


def test_the_json_element_cap_counts_structure_not_text() -> None:
    """Commas and brackets inside strings are text, not elements: a body of prose
    full of them passes; the cap is ``max_json_elements``."""
    prose = 'a, b, [c], {d}, \\"e, f\\", ' * 400
    doc = {"notes": [prose] * 10, "list": list(range(90))}
    body = json.dumps(doc).encode()
    assert body.count(b",") == 24_099  # 6 x 400 x 10 notes, 89 in the list, 10 between
    inspector = Inspector(limits=InspectionLimits(max_json_elements=120), clock=_frozen)
    assert _refusal(inspector.inspect(_json(body))) == (None, None)
    doc["list"] = list(range(200))
    assert _refusal(inspector.inspect(_json(json.dumps(doc).encode()))) == (
        413,
        "json_too_many_elements",
    )


# -- F1c: normalized text ----------------------------------------------------------------


@pytest.mark.parametrize("count", [400, 5_000], ids=["short-value", "long-value"])
def test_a_value_that_expands_past_the_length_cap_is_refused(count: int) -> None:
    """U+FDFA becomes 18 characters under NFKC: the length cap applies to the
    normalized text, so expansion cannot multiply the scan past it."""
    inspector = Inspector(max_input_length=4_000, clock=_frozen)
    value = "\ufdfa" * count
    verdict = inspector.inspect(_json(json.dumps({"t": value}, ensure_ascii=False).encode()))
    assert _refusal(verdict) == (413, "value_too_long")
    plain = inspector.inspect(_json(json.dumps({"t": "\ufdfa" * 100}).encode()))
    assert _refusal(plain) == (None, None)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("\ufdfa" * 50_000, id="nfkc-expansion"),
        pytest.param("a" + "\u0301\u0316" * 30_000, id="combining-marks-to-reorder"),
        pytest.param("%u0041" * 50_000, id="iis-escapes"),
        pytest.param("&#60;" * 60_000, id="entities"),
        pytest.param("\\x41" * 60_000, id="js-escapes"),
        pytest.param("/*a" * 60_000, id="unclosed-comments"),
        pytest.param("\x00" * 60_000 + "a", id="nul-run"),
    ],
)
def test_normalizing_a_long_value_is_metered_by_the_budget(value: str) -> None:
    """Expensive normalizations (expansion, reordering, callbacks per escape) run in
    steps the budget checks: a budget that is over at its first check refuses."""
    parts = _json(json.dumps({"t": value}).encode())
    verdict = Inspector(clock=_always_over()).inspect(parts)
    assert _refusal(verdict) == (413, "inspection_budget_exceeded")


# -- F2: segments on normalized text -----------------------------------------------------

# Obfuscations that collapse under normalization, so the raw payload is much longer
# than the text the rules see.
_GAPS = {
    "spaces": " " * 1500,
    "tabs-encoded": "%09" * 600,
    "sql-comments": "/**/" * 400,
    "double-encoded-spaces": "%2520" * 400,
}
_PAYLOADS = {
    "sqli": "1' union{gap}select null,password from users--",
    "xss": "<img{gap}src=x onerror=alert(document.cookie)>",
    "cmdi": "x; cat{gap}/etc/passwd",
    "backticks": "`id{gap}`",
}


def _head(filler: str, normalized_length: int) -> str:
    """Filler whose normalized text is ``normalized_length`` characters (each filler
    normalizes to ``lorem ipsum `` alone)."""
    count, rest = divmod(normalized_length, 12)
    return filler * count + "x" * rest


# Fillers before the payload: plain, and one that collapses (19 raw characters, 12
# normalized), so raw and normalized segment edges fall in different places.
_FILLERS = {"plain": "lorem ipsum ", "collapsing": "lorem%20%20ipsum%09"}


def _cases() -> list[object]:
    cases = []
    for gap_id, gap in _GAPS.items():
        for family_id, template in _PAYLOADS.items():
            payload = template.format(gap=gap)
            for filler_id, filler in _FILLERS.items():
                for shift in (-40, -2):
                    # The payload straddles the first edge of the raw value (raw
                    # head) or of its normalized text (normalized head).
                    raw_head = (filler * (SEGMENT_CHARS // 12))[: SEGMENT_CHARS + shift]
                    heads = {"raw-edge": raw_head}
                    if filler_id == "collapsing":
                        heads["normalized-edge"] = _head(filler, SEGMENT_CHARS + shift)
                    for edge, head in heads.items():
                        cases.append(
                            pytest.param(
                                head, payload, id=f"{family_id}-{gap_id}-{filler_id}-{edge}{shift}"
                            )
                        )
    return cases


@pytest.mark.parametrize(("head", "payload"), _cases())
def test_a_payload_across_a_segment_edge_is_seen_whole(head: str, payload: str) -> None:
    """The overlap between segments is on the normalized text: a payload whose raw
    form is longer than the overlap (collapsing gaps) is seen whole at an edge,
    also after a filler that collapses too: every rule the payload alone fires
    fires there. (Each gap is longer than the overlap.)"""
    inspector = Inspector(limits=InspectionLimits(budget_ms=60_000))

    def rules(value: str) -> set[str]:
        parts = RequestParts("GET", "/search", f"q={quote(value, safe='')}".encode())
        verdict = inspector.inspect(parts)
        assert verdict.reject_status is None
        return set(verdict.rules)

    tail = " and the rest of the text" * 20
    alone = rules(" " + payload + tail)
    assert alone
    assert rules(head + " " + payload + tail) >= alone


# -- the shell reading of a long value -----------------------------------------------------

SHELL_PAYLOADS = [
    line
    for line in (Path(__file__).parent / "data" / "shell_obfuscation.txt")
    .read_text(encoding="utf-8")
    .splitlines()
    if line and line[0] != "#"
]


@pytest.mark.parametrize(
    "offset",
    [
        pytest.param(2_100, id="after-the-first-window"),
        pytest.param(3 * (SHELL_WINDOW - SHELL_OVERLAP) - 8, id="across-a-window-edge"),
        pytest.param(SEGMENT_CHARS + 5_000, id="in-the-second-segment"),
    ],
)
def test_a_shell_obfuscated_command_is_read_anywhere_in_a_long_value(offset: int) -> None:
    """Only the first 2,048 characters of a value were read as a shell would read
    them: an obfuscated command after them passed. Long values are read in
    overlapping windows, each metered."""
    inspector = Inspector(limits=InspectionLimits(budget_ms=60_000))
    filler = "word " * (offset // 5)  # whole words: the payload starts a word
    missed = []
    for payload in SHELL_PAYLOADS:
        verdict = inspector.inspect(query(filler + payload))
        if not verdict.blocked or "cmdi" not in verdict.families:
            missed.append(payload)
    assert missed == []
