"""What the browser tests share: an app served by a real uvicorn in a thread, and a
headless Chromium with its DevTools port (the tests drive it through ``_cdp.py``)."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

OFFLINE = "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
"""Host rules under which every name but 127.0.0.1 fails at once: no test reaches the
network."""


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run ``app`` in a real uvicorn on a free 127.0.0.1 port; yield its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("uvicorn did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@contextmanager
def chromium_devtools(
    chromium: str, profile: Path, rules: str = OFFLINE, extra: tuple[str, ...] = ()
) -> Iterator[int]:
    """A headless Chromium with a new profile in ``profile`` resolving names by
    ``rules``; yields its DevTools port. Its output goes to ``<profile>.log``."""
    args = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
        f"--host-resolver-rules={rules}", *extra,
        "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank",
    ]  # fmt: skip
    log_path = profile.with_name(profile.name + ".log")
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        try:
            active = profile / "DevToolsActivePort"
            deadline = time.monotonic() + 30
            while not (active.exists() and active.read_text().strip()):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"chromium did not start (exit {proc.poll()}); see {log_path}")
                time.sleep(0.1)
            yield int(active.read_text().split()[0])
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
