"""``python -m examples``: serve the example app on 127.0.0.1 (``make demo``).

Honours ``PORT`` (default 8000), ``HOST`` (default 127.0.0.1; the container
image sets 0.0.0.0, reached only through the port docker-compose publishes)
and every ``PYNOMALY_*`` variable. With no admin key set it generates one and
prints it once; with no master key it keeps a demo key in
``.pynomaly-demo-master-key`` (so the audit trail verifies across restarts).
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import uvicorn

from examples.app import create_app
from pynomaly_security.crypto import generate_master_key
from pynomaly_security.settings import load_settings


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
            "production, e.g. from `python -m pynomaly_security keys generate`).\n",
            file=sys.stderr,
        )
    settings = load_settings(**overrides)
    app = create_app(settings)
    print(f"  Serving the example on http://{host}:{port}  (docs: /docs)\n", file=sys.stderr)
    # proxy_headers=False: uvicorn otherwise rewrites the client address from
    # X-Forwarded-For for peers in --forwarded-allow-ips (127.0.0.1 by default), so a
    # local client could pick its own IP before our resolver (trusted_proxies) sees it.
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False)


if __name__ == "__main__":
    main()
