"""Request builders shared by the detection tests."""

from __future__ import annotations

import json
from urllib.parse import quote

from pynomaly_security.detection import RequestParts


def query(value: str, name: str = "q") -> RequestParts:
    """``GET /search?<name>=<value>`` with the value percent-encoded as a browser would."""
    return RequestParts("GET", "/search", f"{name}={quote(value, safe='')}".encode())


def form(value: str, name: str = "comment") -> RequestParts:
    body = f"{name}={quote(value, safe='')}".encode()
    headers = ((b"content-type", b"application/x-www-form-urlencoded"),)
    return RequestParts("POST", "/submit", b"", headers, body)


def json_body(doc: object) -> RequestParts:
    headers = ((b"content-type", b"application/json"),)
    return RequestParts("POST", "/api/items", b"", headers, json.dumps(doc).encode())


def header(name: str, value: str) -> RequestParts:
    return RequestParts("GET", "/", b"", ((name.encode(), value.encode()),))
