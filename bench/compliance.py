"""How long a compliance run takes on the example app (issue 19): full runs (every check:
probes through the app, the audit chain's verification, users) and cheap runs
(settings, checkpoint, keys, incidents), with an audit trail of ``--records`` records.

    python bench/compliance.py [--runs 5] [--records 10000]

Printed: the median and the slowest of ``--runs`` runs of each kind, in milliseconds,
Nothing of it is on the request path
(the runs are a background task); this is what a worker's event loop gives to it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from examples.app import create_app
from pynomaly_security import SecuritySettings
from pynomaly_security.crypto.keys import generate_master_key


async def main(runs: int, records: int) -> None:
    tmp = Path(tempfile.mkdtemp())
    settings = SecuritySettings(
        _env_file=None,  # type: ignore[call-arg]
        admin_api_key="bench-admin-key-0123456789abcdef",
        master_key=generate_master_key(),
        audit_db_url=f"sqlite:///{tmp / 'audit.db'}",
        compliance_enabled=True,
    )
    app = create_app(settings, demo_totp_secret="JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    stack = app.state.pynomaly_security
    validator = stack.compliance
    async with app.router.lifespan_context(app):
        await validator.wait_first_run(timeout=300)
        for i in range(records):
            stack.audit_logger.log_audit_event("bench", f"item:{i}")
        await stack.audit_logger.flush()
        timings: dict[str, list[float]] = {"full": [], "cheap": []}
        last = None
        for _ in range(runs):
            for kind in ("full", "cheap"):
                start = time.perf_counter()
                run = await validator.run(kind)
                timings[kind].append((time.perf_counter() - start) * 1000)
                if kind == "full":
                    last = run
    for kind, values in timings.items():
        print(
            f"{kind:5} run: median {statistics.median(values):8.1f} ms, "
            f"slowest {max(values):8.1f} ms ({runs} runs, {records} audit records)"
        )
    assert last is not None
    print(f"checks in a full run: {len(last['checks_run'])}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--records", type=int, default=10_000)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.records))
