"""Untrusted XML (pom.xml, Gradle's verification-metadata.xml) read safely, with lines.

A pom is attacker-supplied input (a scanned repository, a pull request), so it is
parsed by ``defusedxml`` with ``forbid_dtd=True``: any ``<!DOCTYPE`` is refused
before an entity can be declared, which stops external entities (XXE: reading
local files or URLs) and internal entity expansion (billion laughs) alike. Neither
a pom nor Gradle's metadata needs a DTD. The file's own ``encoding`` declaration
is honoured (poms in ISO-8859-1 exist), so bytes go to the parser as they are.

``parse_xml`` returns the root element and a map element -> line of its start tag,
taken from expat while it parses (ElementTree itself keeps no line numbers).
Namespaces are stripped from tags so callers match ``dependency``, not
``{http://maven.apache.org/POM/4.0.0}dependency``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from pynomaly_security.vulns.lockfiles._base import error

__all__ = ["children", "parse_xml", "text_of"]

_POSITION = re.compile(r": line \d+, column \d+$")
_MAX_BYTES = 16 * 1024 * 1024  # a pom or metadata file is kilobytes; refuse a flood


class _LineBuilder(TreeBuilder):
    def __init__(self) -> None:
        super().__init__()
        self.parser: Any = None
        self.lines: dict[int, int] = {}

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        element = super().start(tag.rsplit("}", 1)[-1], attrs)
        self.lines[id(element)] = int(self.parser.parser.CurrentLineNumber)
        return element

    def end(self, tag: str) -> Element:
        return super().end(tag.rsplit("}", 1)[-1])


def parse_xml(path: Path) -> tuple[Element, dict[int, int]]:
    """The root and ``{id(element): line}``; :class:`LockfileError` for bad or unsafe XML."""
    data = path.read_bytes()
    if len(data) > _MAX_BYTES:
        raise error(path, None, f"larger than {_MAX_BYTES} bytes")
    builder = _LineBuilder()
    parser = DefusedXMLParser(target=builder, forbid_dtd=True)
    builder.parser = parser
    try:
        parser.feed(data)
        root = parser.close()
    except ParseError as exc:
        line, column = exc.position if exc.position else (None, 0)
        what = _POSITION.sub("", str(exc))
        raise error(path, line, f"invalid XML: {what} (column {column})") from None
    except DefusedXmlException as exc:
        line = parser.parser.CurrentLineNumber
        raise error(path, line, f"refused: {type(exc).__name__} (no DTD is allowed)") from None
    return root, builder.lines


def children(element: Element | None, *tags: str) -> list[Element]:
    """Elements at the path ``tags`` under ``element`` (all matches of the last step)."""
    found = [element] if element is not None else []
    for tag in tags:
        found = [child for parent in found for child in parent if child.tag == tag]
    return found


def text_of(element: Element | None, tag: str) -> str | None:
    """The stripped text of the first child ``tag``, or ``None``."""
    if element is None:
        return None
    child = element.find(tag)
    if child is None or child.text is None:
        return None
    return child.text.strip()
