"""Fixtures for the real-browser tests: the docs assets, a fake CDN, Chromium.

The assets are the npm packages FastAPI's docs pages name (``swagger-ui-dist@5``,
``redoc@2`` today), fetched once with ``npm pack`` into pytest's cache directory;
nothing is vendored into git. Where npm or Chromium is missing the tests skip,
except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import re
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html

from tests.conftest import require, require_program

from ._fake_cdn import FakeCDN, serve_fake_cdn
from ._local import OFFLINE, chromium_devtools

# FastAPI's own docs pages decide which packages (and major versions) to fetch.
_NPM_URL = re.compile(r"https://cdn\.jsdelivr\.net/npm/((?:@[^/@]+/)?[^/@]+@[^/]+)/")


def docs_npm_specs() -> list[str]:
    html = (
        get_swagger_ui_html(openapi_url="/openapi.json", title="t").body
        + get_redoc_html(openapi_url="/openapi.json", title="t").body
    ).decode()
    return sorted(set(_NPM_URL.findall(html)))


def _fetch(spec: str, cache: Path) -> Path:
    """``npm pack`` one package into ``cache`` and unpack it; reuse it if already there."""
    name = spec.rsplit("@", 1)[0]
    target = cache / spec.replace("/", "__")
    if (target / ".complete").exists():
        return target / "package"
    npm = require_program("npm")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            done = subprocess.run(
                [npm, "pack", spec, "--pack-destination", tmp, "--silent"],
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
        except subprocess.TimeoutExpired:
            done = None
        tarballs = list(Path(tmp).glob("*.tgz"))
        require(
            done is not None and done.returncode == 0 and len(tarballs) == 1,
            f"could not fetch {spec} from the npm registry"
            + (f": {done.stderr.strip()[-300:]}" if done is not None else " (timed out)"),
        )
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tarballs[0]) as tar:
            tar.extractall(target, filter="data")
    require((target / "package" / "package.json").exists(), f"{name}: unexpected tarball layout")
    (target / ".complete").touch()
    return target / "package"


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's ``chromium``; checked first so a machine without it skips before any fetch."""
    return require_program("chromium")


@pytest.fixture(scope="session")
def docs_assets(
    chromium: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """npm package name -> unpacked package directory, for every CDN package the docs load."""
    config_cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    cache = (
        Path(config_cache.mkdir("docs-assets"))
        if config_cache is not None
        else tmp_path_factory.mktemp("docs-assets")
    )
    specs = docs_npm_specs()
    require(bool(specs), "FastAPI's docs pages no longer load from cdn.jsdelivr.net/npm")
    return {spec.rsplit("@", 1)[0]: _fetch(spec, cache) for spec in specs}


@pytest.fixture(scope="session")
def fake_cdn(
    docs_assets: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FakeCDN]:
    with serve_fake_cdn(docs_assets, tmp_path_factory.mktemp("fake-cdn")) as cdn:
        yield cdn


@pytest.fixture(scope="session")
def devtools_port(
    chromium: str, fake_cdn: FakeCDN, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    """A headless Chromium whose view of the CDN hosts is the fake CDN; its DevTools port."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    rules = ", ".join(f"MAP {host} 127.0.0.1:{fake_cdn.port}" for host in fake_cdn.hosts)
    # Every other name fails to resolve at once: the test never reaches the network.
    rules += ", " + OFFLINE
    with chromium_devtools(chromium, profile, rules, ("--ignore-certificate-errors",)) as port:
        yield port
