"""The running process's own dependencies (issue 18, item 4).

Installed: every distribution ``importlib.metadata`` finds on ``sys.path`` (what pip
would list). Imported: the distributions owning a top-level module present in
``sys.modules`` now, through ``packages_distributions()`` (a module shipped by two
distributions counts for both). A vulnerable package the app has *imported* is
live code; one merely installed is still reported, with a lower priority.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from pynomaly_security.vulns.lockfiles import Package
from pynomaly_security.vulns.osv import normalize_name

__all__ = ["imported_distributions", "installed_packages"]

_SOURCE = Path("<environment>")


def installed_packages() -> list[Package]:
    """One :class:`Package` (``PyPI``) per installed distribution; the first on the path wins."""
    seen: dict[str, Package] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata is not None else None
        if not name or not dist.version:
            continue  # a broken .dist-info names nothing to check
        key = normalize_name("PyPI", name)
        if key not in seen:  # sys.path order: the one Python would import
            seen[key] = Package("PyPI", name, dist.version, _SOURCE)
    return sorted(seen.values(), key=lambda p: normalize_name("PyPI", p.name))


def imported_distributions() -> set[str]:
    """Normalized names of the distributions whose modules are in ``sys.modules``."""
    owners = metadata.packages_distributions()
    top = {name.partition(".")[0] for name in list(sys.modules)}
    return {normalize_name("PyPI", dist) for module in top for dist in owners.get(module, ())}
