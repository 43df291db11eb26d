"""A local HTTPS server standing in for the CDNs FastAPI's docs pages load from.

The machine running the tests has no internet, so the outside world is faked and
only that: Chromium maps the CDN host names to this server
(``--host-resolver-rules``) and accepts its self-signed certificate
(``--ignore-certificate-errors``). The assets it serves are the real
``swagger-ui-dist`` and ``redoc`` npm packages, so the browser runs the same
JavaScript (and hits the same CSP needs) as against jsDelivr.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# Hosts the default docs pages reach besides jsDelivr: the favicon, ReDoc's Google
# fonts (a stylesheet whose @font-face rules load from fonts.gstatic.com) and
# ReDoc's logo CDN.
EXTRA_HOSTS = ("fastapi.tiangolo.com", "fonts.googleapis.com", "fonts.gstatic.com", "cdn.redoc.ly")
# A stand-in OAuth2 authorization server for Swagger UI's "Authorize" popup: it
# redirects straight back to the redirect_uri with a code and the state.
IDP_HOST = "idp.pynomaly.test"

_FONTS_CSS = b"""\
@font-face { font-family: 'Montserrat'; font-style: normal; font-weight: 400;
  src: url(https://fonts.gstatic.com/s/montserrat/v1/montserrat.woff2) format('woff2'); }
@font-face { font-family: 'Roboto'; font-style: normal; font-weight: 400;
  src: url(https://fonts.gstatic.com/s/roboto/v1/roboto.woff2) format('woff2'); }
"""

_TYPES = {
    ".js": "application/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".json": "application/json",
    ".map": "application/json",
    ".html": "text/html",
}


@dataclass
class FakeCDN:
    """Where the fake CDN listens and what it was asked for."""

    port: int
    hosts: tuple[str, ...]
    requests: list[tuple[str, str, int]] = field(default_factory=list)

    def served(self, host: str, path_suffix: str) -> bool:
        return any(h == host and p.endswith(path_suffix) and s < 400 for h, p, s in self.requests)


def _self_signed(directory: Path, hosts: tuple[str, ...]) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pynomaly-security fake CDN")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(h) for h in hosts]
                + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cdn.crt", directory / "cdn.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@contextmanager
def serve_fake_cdn(packages: Mapping[str, Path], workdir: Path) -> Iterator[FakeCDN]:
    """Serve ``https://cdn.jsdelivr.net/npm/<name>@<range>/<file>`` from ``packages``
    (npm package name -> unpacked directory), plus the other docs hosts."""
    hosts = ("cdn.jsdelivr.net", *EXTRA_HOSTS, IDP_HOST)
    cert, key = _self_signed(workdir, hosts)
    favicon = next(
        (d / "favicon-32x32.png" for d in packages.values() if (d / "favicon-32x32.png").is_file()),
        None,
    )
    requests: list[tuple[str, str, int]] = []

    class Handler(BaseHTTPRequestHandler):
        timeout = 10

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _resolve(self, host: str, path: str) -> tuple[bytes, str] | None:
            if host == "cdn.jsdelivr.net" and path.startswith("/npm/"):
                spec, _, rest = path[len("/npm/") :].partition("/")
                root = packages.get(spec.rsplit("@", 1)[0] if "@" in spec[1:] else spec)
                if root is None:
                    return None
                file = (root / rest).resolve()
                if not file.is_relative_to(root.resolve()) or not file.is_file():
                    return None
                return file.read_bytes(), _TYPES.get(file.suffix, "application/octet-stream")
            if host == "fastapi.tiangolo.com" and path == "/img/favicon.png" and favicon:
                return favicon.read_bytes(), "image/png"
            if host == "fonts.googleapis.com" and path.startswith("/css"):
                return _FONTS_CSS, "text/css"
            # fonts.gstatic.com and cdn.redoc.ly: no real files to hand out; a 404
            # is a network error in the console, never a CSP violation.
            return None

        def _authorize(self, query: str) -> None:
            params = dict(urllib.parse.parse_qsl(query))
            back = urllib.parse.urlencode({"code": "fake-code", "state": params.get("state", "")})
            self.send_response(302)
            self.send_header("Location", f"{params.get('redirect_uri', '/')}?{back}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            host = self.headers.get("Host", "").rsplit(":", 1)[0]
            path, _, query = self.path.partition("?")
            if host == IDP_HOST and path == "/authorize":
                requests.append((host, path, 302))
                self._authorize(query)
                return
            found = self._resolve(host, path)
            status = 200 if found else 404
            body, ctype = found if found else (b"not found", "text/plain")
            requests.append((host, path, status))
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            # As jsDelivr and Google Fonts do: fonts are fetched in CORS mode.
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Cross-Origin-Resource-Policy", "cross-origin")
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    # The handshake runs in the handler thread, so a speculative connection that
    # never speaks TLS cannot stall the accept loop.
    server.socket = context.wrap_socket(
        server.socket, server_side=True, do_handshake_on_connect=False
    )
    thread = threading.Thread(target=server.serve_forever, name="fake-cdn", daemon=True)
    thread.start()
    try:
        yield FakeCDN(port=server.server_address[1], hosts=hosts, requests=requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
