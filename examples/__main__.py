"""``python -m examples``: serve the example app on 127.0.0.1 (``make demo``).

Honours ``PORT`` (default 8000), ``HOST`` (default 127.0.0.1; the container
image sets 0.0.0.0, reached only through the port docker-compose publishes)
and every ``PYNOMALY_*`` variable. With no admin key set it generates one and
prints it once; with no master key it keeps a demo key in
``.pynomaly-demo-master-key`` (so the audit trail verifies across restarts).

What the example shows of itself: no ``server: uvicorn`` header
(``server_header=False``; ``--no-server-header`` on uvicorn's command line), an
access log without query strings (a token sent in one would be logged:
:class:`~pynomaly_security.logsafe.RedactQueryStrings`), and structlog lines with
control characters escaped (:class:`~pynomaly_security.logsafe.EscapeControlCharacters`).
The app answers to ``localhost`` and ``127.0.0.1`` (``ALLOWED_HOSTS``'s default);
name the host you serve it as in ``PYNOMALY_SECURITY__ALLOWED_HOSTS``.
"""

from __future__ import annotations

import copy
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import pyotp
import structlog
import uvicorn
from uvicorn.config import LOGGING_CONFIG

from examples.app import DEMO_MFA_ADMIN, create_app
from examples.vulndb import DEMO_DB, ensure_demo_database
from pynomaly_security.crypto import generate_master_key
from pynomaly_security.logsafe import EscapeControlCharacters
from pynomaly_security.settings import load_settings


def log_config() -> dict[str, Any]:
    """uvicorn's logging configuration with query strings kept out of the access log."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_query"] = {
        "()": "pynomaly_security.logsafe.RedactQueryStrings"
    }
    config["loggers"]["uvicorn.access"]["filters"] = ["redact_query"]
    return config


def configure_structlog() -> None:
    """The app's structlog chain (the library never configures it): request ids from
    the context, and every string escaped before the console renderer writes it."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            EscapeControlCharacters(),
            structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()),
        ],
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )


def server_config(app: Any, host: str, port: int) -> uvicorn.Config:
    """How the example is served (also what tests/test_end_to_end.py runs)."""
    # proxy_headers=False: uvicorn otherwise rewrites the client address from
    # X-Forwarded-For for peers in --forwarded-allow-ips (127.0.0.1 by default), so a
    # local client could pick its own IP before our resolver (trusted_proxies) sees it.
    # server_header=False: no "server: uvicorn" (a version-free banner is still a
    # fingerprint), like --no-server-header.
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info",
        proxy_headers=False,
        server_header=False,
        log_config=log_config(),
    )


def main() -> None:
    port = int(os.environ.get("PORT", "8000"))
    host = os.environ.get("HOST", "127.0.0.1")
    overrides: dict[str, object] = {}
    if not os.environ.get("PYNOMALY_SECURITY__ADMIN_API_KEY"):
        key = secrets.token_urlsafe(32)
        overrides["admin_api_key"] = key
        print(
            f"\n  Generated admin API key (shown once): {key}\n"
            "  Use it as 'X-API-Key: <key>' or 'Authorization: Bearer <key>' on /api/security/*.\n"
            "  Set PYNOMALY_SECURITY__ADMIN_API_KEY to keep one across restarts.\n",
            file=sys.stderr,
            flush=True,
        )
    if not os.environ.get("PYNOMALY_MASTER_KEY"):
        # The demo keeps its own master key in a file so the audit trail written by one
        # run still decrypts and verifies after a restart (an ephemeral key would not).
        key_file = Path(os.environ.get("DEMO_MASTER_KEY_FILE", ".pynomaly-demo-master-key"))
        if not key_file.exists():
            key_file.write_text(generate_master_key() + "\n")
            key_file.chmod(0o600)
        overrides["master_key"] = key_file.read_text().strip()
        print(
            f"  Demo master key kept in {key_file} (demo only: set PYNOMALY_MASTER_KEY in "
            "production, e.g. from `.venv/bin/python -m pynomaly_security keys generate`).\n",
            file=sys.stderr,
        )
    totp_secret = os.environ.get("PYNOMALY_DEMO_TOTP_SECRET") or pyotp.random_base32(32)
    print(
        f"  Demo admin with MFA: carol / {DEMO_MFA_ADMIN[1]}, TOTP secret {totp_secret}\n"
        "  (a code: .venv/bin/python -c \"import pyotp; print(pyotp.TOTP('<secret>').now())\";"
        " set PYNOMALY_DEMO_TOTP_SECRET to keep one across restarts).\n",
        file=sys.stderr,
    )
    if not os.environ.get("PYNOMALY_SECURITY__VULNS_DB_PATH"):
        overrides["vulns_db_path"] = DEMO_DB
    vulndb = ensure_demo_database(os.environ.get("PYNOMALY_SECURITY__VULNS_DB_PATH") or DEMO_DB)
    print(
        f"  The app's own dependencies: GET /api/security/vulnerabilities ({vulndb}).\n",
        file=sys.stderr,
    )
    configure_structlog()
    settings = load_settings(**overrides)
    app = create_app(settings, demo_totp_secret=totp_secret)
    print(
        f"  Serving the example on http://{host}:{port}  (docs: /docs; security dashboard:"
        f" http://{host}:{port}/api/security/dashboard with the admin key)\n",
        file=sys.stderr,
    )
    uvicorn.Server(server_config(app, host, port)).run()


if __name__ == "__main__":
    main()
