"""Without the [ml] extra the package imports and runs on the profile alone (issue 22)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ._traffic import anomalies, normal

BLOCK = "import sys\nfor m in ('numpy', 'sklearn', 'scipy'): sys.modules[m] = None\n"
"""Imports of these then raise ImportError, as when the extra is not installed."""


def _run(code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parents[2]
    return subprocess.run(
        [sys.executable, "-c", BLOCK + textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )


def _corpus(tmp_path: Path) -> Path:
    path = tmp_path / "traffic.jsonl"
    lines = [*normal(400), *(r for _, r in anomalies())]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


@pytest.mark.slow
def test_train_and_serve_without_numpy(tmp_path: Path) -> None:
    """Training writes a profile-only model; an app in detect mode loads it and alerts;
    evaluate says it needs the extra."""
    corpus = _corpus(tmp_path)
    code = """
        import asyncio, sys
        from pynomaly_security.__main__ import main
        assert main(["anomaly", "train", sys.argv[1], "--output", sys.argv[2]]) == 0
        assert main(["anomaly", "evaluate", sys.argv[1], "--model", sys.argv[2]]) == 2

        import httpx
        from fastapi import FastAPI
        from pynomaly_security import SecuritySettings, setup_security_middleware

        async def go():
            app = FastAPI()

            @app.get("/items")
            async def items(page: int = 1, sort: str = "name"):
                return []

            settings = SecuritySettings(
                _env_file=None, development_mode=True, enable_audit_logging=False,
                anomaly_mode="detect", anomaly_model_path=sys.argv[2],
            )
            stack = setup_security_middleware(app, settings=settings)
            async with app.router.lifespan_context(app):
                t = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=t, base_url="http://testserver") as c:
                    assert (await c.get("/items?page=3&sort=price")).status_code == 200
                    r = await c.get("/items?page=2&sort=name&debug=true")
                    assert r.status_code == 200
                await stack.security_monitor.flush()
                alerts = await stack.security_monitor.get_active_alerts()
                assert stack.anomaly.model.forest is None
                kinds = [a.alert_type for a in alerts]
                assert "behavioural_anomaly" in kinds, kinds
            assert "numpy" not in [m for m in sys.modules if sys.modules[m] is not None]
            print("ok")

        asyncio.run(go())
    """
    done = _run(code, str(corpus), str(tmp_path / "model"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ok" in done.stdout
    assert "needs the [ml] extra" in done.stderr
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    assert set(manifest["files"]) == {"profile.json"}
