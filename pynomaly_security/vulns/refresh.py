"""``vulndb refresh``: download OSV's per-ecosystem ``all.zip`` exports, rebuild, swap.

Each ``<base>/<ecosystem>/all.zip`` (``VULNS_OSV_URL``, ``VULNS_OSV_ECOSYSTEMS``) is
streamed to a temporary file beside the database with a progress bar (tqdm, on
stderr) and hashed on the way (SHA-256). A new database is built from the zips into
``<db>.new`` (EPSS and KEV tables carried over from the old one) and moved over the
old file with ``os.replace``: a reader sees the old database or the new one, never a
half-built one, and a failed download or build leaves the old one untouched. The
sources (URL, bytes, SHA-256, records) and the import time are written to the audit
trail as one ``data_import`` event.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from pynomaly_security.vulns.osv import AdvisoryError
from pynomaly_security.vulns.sources import OSVSource
from pynomaly_security.vulns.store import AdvisoryDB

if TYPE_CHECKING:
    from pynomaly_security.audit import AuditLogger

__all__ = ["MAX_EXPORT_BYTES", "audit_refresh", "refresh"]

MAX_EXPORT_BYTES = 8 * 1024**3
"""A download larger than this is refused (all of npm is a few hundred MB)."""


def _download(
    client: httpx.Client, url: str, dest: Path, *, progress: bool, label: str
) -> dict[str, Any]:
    from tqdm import tqdm

    digest = hashlib.sha256()
    size = 0
    try:
        with client.stream("GET", url) as response:
            if response.status_code != 200:
                raise AdvisoryError(f"{url}: HTTP {response.status_code}")
            total = int(response.headers.get("content-length") or 0) or None
            with (
                dest.open("wb") as out,
                tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    desc=label,
                    disable=not progress,
                    leave=False,
                ) as bar,
            ):
                for chunk in response.iter_bytes(1 << 20):
                    size += len(chunk)
                    if size > MAX_EXPORT_BYTES:
                        raise AdvisoryError(f"{url}: larger than {MAX_EXPORT_BYTES} bytes")
                    digest.update(chunk)
                    out.write(chunk)
                    bar.update(len(chunk))
    except httpx.HTTPError as exc:
        raise AdvisoryError(f"{url}: download failed: {type(exc).__name__}: {exc}") from None
    return {"url": url, "bytes": size, "sha256": digest.hexdigest()}


def refresh(
    db_path: str | Path,
    *,
    base_url: str,
    ecosystems: Sequence[str],
    client: httpx.Client | None = None,
    progress: bool = True,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Download, build and swap in; returns what was imported (:func:`audit_refresh` it)."""
    if not ecosystems:
        raise AdvisoryError("no ecosystems to refresh (VULNS_OSV_ECOSYSTEMS)")
    target = Path(db_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    owned = client is None
    client = client or httpx.Client(timeout=httpx.Timeout(60.0), follow_redirects=True)
    new = target.with_name(target.name + ".new")
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".vulndb-") as tmp:
        try:
            downloads: list[tuple[Path, dict[str, Any]]] = []
            for eco in ecosystems:
                url = f"{base_url.rstrip('/')}/{quote(eco)}/all.zip"
                dest = Path(tmp) / f"{len(downloads)}.zip"
                downloads.append((dest, _download(client, url, dest, progress=progress, label=eco)))
        finally:
            if owned:
                client.close()
        new.unlink(missing_ok=True)
        sources = [OSVSource(dest) for dest, _ in downloads]
        try:
            with AdvisoryDB(new, building=True) as built:
                result = built.import_sources(sources, clock=clock)
                if target.is_file():
                    with AdvisoryDB(target, create=False) as old:
                        old.copy_intel_to(built)
                advisories = built.stats()["advisories"]
            os.replace(new, target)  # atomic on one file system: old or new, never half
        finally:
            with contextlib.suppress(FileNotFoundError):
                new.unlink()
    described = [
        {**meta, "records": s.records, "errors": s.error_count}
        for (_, meta), s in zip(downloads, sources, strict=True)
    ]
    summary = {
        "database": str(target),
        "imported_at": clock(),
        "advisories": advisories,
        "withdrawn": result["withdrawn"],
        "sources": described,
    }
    return summary


async def audit_refresh(audit_logger: AuditLogger, summary: dict[str, Any]) -> None:
    """Commit the refresh to the audit trail: sources (URL, bytes, SHA-256, records) and time."""
    from pynomaly_security.audit import AuditLevel, SecurityEventType

    await audit_logger.log_audit_event(
        "vulndb_refresh",
        f"vulndb:{Path(summary['database']).name}",
        message=f"advisory database refreshed: {summary['advisories']} advisories",
        details=summary,
        event_type=SecurityEventType.DATA_IMPORT,
        level=AuditLevel.INFO,
    )
