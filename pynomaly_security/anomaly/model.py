"""The behavioural model: profile + optional Isolation Forest, one calibrated score.

:class:`AnomalyModel` scores a batch of requests. Each gets an :class:`Assessment`:
the profile's surprisal plus ``forest_weight`` times the forest's (both in decimal
digits, :mod:`~pynomaly_security.anomaly.profile`), and the score an operator
reads, 1-99 like Cloudflare's attack score (low: likely an attack):
``99 - 98 * min(1, surprisal / 10)``, so each digit of surprisal costs about ten
points and a request as unlikely as one in 10^10 scores 1. On CSIC 2010, a score
of 50 or less flags about 0.5 % of normal requests, 20 or less about 0.1 %
(``bench/anomaly.py`` prints the measured rates). The findings that drove the
score (the profile's, largest first, then the forest's share) are its explanation.

Without NumPy (no ``[ml]`` extra) a model runs on its profile alone: a forest in
the model directory is then skipped with a warning, never half-used.

Files (:func:`save` / :func:`load`), all ours, no pickle anywhere::

    MODEL_DIR/manifest.json   format, version, SHA-256 of each file, settings
    MODEL_DIR/profile.json    the profile's counts and its digest salt
    MODEL_DIR/forest.npz      the trees as arrays (optional; np.load(allow_pickle=False))

:func:`load` reads only the directory it is given (the app's configured
``ANOMALY_MODEL_PATH``), refuses a manifest of another format or version, a file
whose digest differs, a file larger than :data:`MAX_FILE_BYTES`, malformed JSON or
arrays that do not describe walkable trees (:class:`ModelError`). The digests
catch corruption and files that are not ours; they do not authenticate (whoever
can write the directory can write a matching manifest), and need not: nothing
in these files can execute, the worst a forged model does is score badly.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pynomaly_security._log import get_logger
from pynomaly_security.anomaly.features import RequestFeatures
from pynomaly_security.anomaly.profile import Finding, Profile, ProfileBounds
from pynomaly_security.exceptions import SecurityError

if TYPE_CHECKING:
    from pynomaly_security.anomaly.forest import Forest

__all__ = [
    "FORMAT",
    "MAX_FILE_BYTES",
    "VERSION",
    "AnomalyModel",
    "Assessment",
    "ModelError",
    "assess_profile",
    "load",
    "numpy_available",
    "save",
    "score_of",
]

log = get_logger(__name__)

FORMAT = "pynomaly-anomaly-model"
VERSION = 1
MAX_FILE_BYTES = 64 * 1024 * 1024
SCALE = 10.0
"""Digits of surprisal that bring the score from 99 to 1."""
FOREST_WEIGHT = 0.25
"""The forest's share: on CSIC 2010 it adds nothing to the profile (it reaches
ROC-AUC 0.81 alone), so it is kept small; it matters where the profile is blind
(principal features: rate, spread, errors)."""
EXPLAIN = 5


class ModelError(SecurityError):
    """A model directory that is not one of ours, or not intact."""


def numpy_available() -> bool:
    try:
        import numpy  # noqa: F401
    except ImportError:
        return False
    return True


def score_of(surprisal: float) -> int:
    """The 1-99 score of a surprisal (module docstring); low means likely attack."""
    return max(1, min(99, round(99.0 - 98.0 * min(1.0, max(0.0, surprisal) / SCALE))))


@dataclass(frozen=True, slots=True)
class Assessment:
    """How unusual one request is, and why."""

    score: int
    surprisal: float
    profile: float
    forest: float | None
    findings: tuple[Finding, ...] = ()

    def explanation(self) -> list[dict[str, object]]:
        out = [f.explain() for f in self.findings[:EXPLAIN]]
        if self.forest is not None and self.forest >= 1.0:
            out.append(
                {
                    "feature": "isolation forest",
                    "where": "request shape",
                    "surprisal": round(self.forest, 2),
                }
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "surprisal": round(self.surprisal, 3),
            "profile": round(self.profile, 3),
            "forest": None if self.forest is None else round(self.forest, 3),
            "explanation": self.explanation(),
        }


@dataclass
class AnomalyModel:
    """A profile, an optional forest and the salt of the profile's value digests."""

    profile: Profile
    forest: Forest | None = None
    salt: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    forest_weight: float = FOREST_WEIGHT
    created: float = field(default_factory=time.time)

    def assess(self, features: Sequence[RequestFeatures]) -> list[Assessment]:
        """Score a micro-batch (the forest runs once over the whole batch)."""
        forest_part: list[float] | None = None
        if self.forest is not None and features:
            from pynomaly_security.anomaly.forest import request_vector

            forest_part = [
                float(v) for v in self.forest.surprisal([request_vector(f) for f in features])
            ]
        out = []
        for i, f in enumerate(features):
            prof, findings = self.profile.score(f)
            fs = forest_part[i] if forest_part is not None else None
            total = prof + (self.forest_weight * fs if fs is not None else 0.0)
            out.append(Assessment(score_of(total), total, prof, fs, tuple(findings[:EXPLAIN])))
        return out

    def assess_one(self, features: RequestFeatures) -> Assessment:
        """The profile's assessment alone (inline use: the forest runs in batches)."""
        return assess_profile(self.profile, features)


def assess_profile(profile: Profile, features: RequestFeatures) -> Assessment:
    """One request's assessment by a profile alone."""
    prof, findings = profile.score(features)
    return Assessment(score_of(prof), prof, prof, None, tuple(findings[:EXPLAIN]))


# -- files --------------------------------------------------------------------------
def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def save(model: AnomalyModel, directory: Path) -> dict[str, Any]:
    """Write the model's files and manifest into ``directory`` (created); returns the
    manifest. The manifest is written last: a crash leaves the old one, whose digests
    then refuse the half-written files."""
    directory.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    profile_doc = {
        "format": FORMAT + "/profile",
        "version": VERSION,
        "salt": model.salt.hex(),
        "min_requests": model.profile.min_requests,
        "tallies": model.profile.to_tallies(),
    }
    data = json.dumps(profile_doc, sort_keys=True, separators=(",", ":")).encode()
    _write(directory / "profile.json", data)
    files["profile.json"] = _digest(data)
    if model.forest is not None:
        import numpy as np

        f = model.forest
        buf = io.BytesIO()
        np.savez(
            buf,
            left=f.left,
            right=f.right,
            feature=f.feature,
            threshold=f.threshold,
            leaf_depth=f.leaf_depth,
            roots=f.roots,
            quantiles=f.quantiles,
            max_samples=np.asarray([f.max_samples], dtype=np.int64),
        )
        data = buf.getvalue()
        _write(directory / "forest.npz", data)
        files["forest.npz"] = _digest(data)
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "created": model.created,
        "files": files,
        "forest_weight": model.forest_weight,
        "forest_features": list(model.forest.features) if model.forest is not None else [],
        "profile": model.profile.summary(),
    }
    _write(directory / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True).encode())
    return manifest


def _read(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ModelError(f"{path.name}: larger than {MAX_FILE_BYTES} bytes")
        return path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path.name}: cannot be read ({exc.strerror})") from exc


def load(directory: Path, *, bounds: ProfileBounds | None = None) -> AnomalyModel:
    """The model saved in ``directory``, checked (module docstring); :class:`ModelError`
    when it is not one of ours or not intact."""
    try:
        manifest = json.loads(_read(directory / "manifest.json"))
    except ValueError as exc:
        raise ModelError("manifest.json: not JSON") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelError("manifest.json: not a pynomaly anomaly model")
    if manifest.get("version") != VERSION:
        raise ModelError(f"manifest.json: version {manifest.get('version')!r}, expected {VERSION}")
    files = manifest.get("files")
    if not isinstance(files, dict) or "profile.json" not in files:
        raise ModelError("manifest.json: no profile")
    if set(files) - {"profile.json", "forest.npz"}:
        raise ModelError("manifest.json: unknown files")
    blobs: dict[str, bytes] = {}
    for name, expected in files.items():
        data = _read(directory / name)
        if not isinstance(expected, str) or not secrets.compare_digest(_digest(data), expected):
            raise ModelError(f"{name}: digest differs from the manifest (corrupted or replaced)")
        blobs[name] = data
    try:
        doc = json.loads(blobs["profile.json"])
        if doc.get("format") != FORMAT + "/profile" or doc.get("version") != VERSION:
            raise ModelError("profile.json: not a profile of this version")
        salt = bytes.fromhex(doc["salt"])
        tallies = doc["tallies"]
        if not isinstance(tallies, dict) or not all(
            isinstance(k, str) and isinstance(v, int) for k, v in tallies.items()
        ):
            raise ModelError("profile.json: tallies are not counts")
        profile = Profile.from_tallies(
            tallies, bounds, min_requests=int(doc.get("min_requests", 20))
        )
        weight = float(manifest.get("forest_weight", FOREST_WEIGHT))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelError(f"profile.json: malformed ({type(exc).__name__})") from exc
    forest = None
    if "forest.npz" in blobs:
        if numpy_available():
            forest = _load_forest(blobs["forest.npz"], manifest.get("forest_features"))
        else:
            log.warning("anomaly_forest_skipped", reason="numpy not installed ([ml] extra)")
    return AnomalyModel(profile, forest, salt, weight, float(manifest.get("created") or 0.0))


def _load_forest(data: bytes, names: Any) -> Forest:
    import numpy as np

    from pynomaly_security.anomaly.forest import REQUEST_FEATURES, Forest

    if names != list(REQUEST_FEATURES):
        raise ModelError("manifest.json: the forest reads features this version does not make")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            forest = Forest(
                left=arrays["left"].astype(np.int64),
                right=arrays["right"].astype(np.int64),
                feature=arrays["feature"].astype(np.int64),
                threshold=arrays["threshold"].astype(np.float64),
                leaf_depth=arrays["leaf_depth"].astype(np.float64),
                roots=arrays["roots"].astype(np.int64),
                max_samples=int(arrays["max_samples"][0]),
                quantiles=arrays["quantiles"].astype(np.float64),
                features=tuple(names),
            )
        forest.check()
    except (ValueError, KeyError, IndexError, TypeError, OSError) as exc:
        raise ModelError(f"forest.npz: not a forest of ours ({exc})") from exc
    return forest
