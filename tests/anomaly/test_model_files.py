"""Model files: the forest equals scikit-learn's, and a corrupted or foreign model is refused."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from pynomaly_security.anomaly.corpus import request_features
from pynomaly_security.anomaly.forest import REQUEST_FEATURES, Forest, request_vector
from pynomaly_security.anomaly.model import AnomalyModel, ModelError, load, save
from pynomaly_security.anomaly.profile import Profile

from ._traffic import anomalies, normal

np = pytest.importorskip("numpy")  # the [ml] extra (a dev dependency)
sklearn_ensemble = pytest.importorskip("sklearn.ensemble")

SALT = b"fedcba9876543210"


@pytest.fixture(scope="module")
def model() -> AnomalyModel:
    profile = Profile(min_requests=20)
    rows = []
    for record in normal(600):
        f = request_features(record, salt=SALT)
        profile.learn(f)
        rows.append(request_vector(f))
    return AnomalyModel(profile, Forest.train(rows, REQUEST_FEATURES, n_estimators=30), SALT)


def test_forest_scores_equal_scikit_learns() -> None:
    """Our NumPy walk of the copied trees gives scikit-learn's score_samples."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, len(REQUEST_FEATURES))).astype(np.float32)
    ours = Forest.train(x, REQUEST_FEATURES, n_estimators=25, max_samples=128, seed=3)
    theirs = sklearn_ensemble.IsolationForest(n_estimators=25, max_samples=128, random_state=3).fit(
        x
    )
    probe = rng.normal(scale=2.0, size=(300, len(REQUEST_FEATURES)))
    assert np.allclose(ours.score_samples(probe), theirs.score_samples(probe), atol=1e-12)


def test_saved_model_loads_and_scores_the_same(model: AnomalyModel, tmp_path: Path) -> None:
    """Saved and loaded, a model gives every request the same assessment."""
    manifest = save(model, tmp_path / "m")
    assert manifest["version"] == 1 and set(manifest["files"]) == {"profile.json", "forest.npz"}
    loaded = load(tmp_path / "m")
    records = [*normal(40, seed=5), *(r for _, r in anomalies())]
    feats = [request_features(r, salt=SALT) for r in records]
    for a, b in zip(model.assess(feats), loaded.assess(feats), strict=True):
        assert a.score == b.score and abs(a.surprisal - b.surprisal) < 1e-9
    bad = loaded.assess([request_features(dict(anomalies())["sqli_in_page"], salt=SALT)])[0]
    assert bad.score <= 30 and bad.explanation()


def _corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["profile.json", "forest.npz"])
def test_a_corrupted_file_is_refused(model: AnomalyModel, tmp_path: Path, name: str) -> None:
    """One flipped bit in any file: the digest differs and the model is refused."""
    save(model, tmp_path)
    _corrupt(tmp_path / name)
    with pytest.raises(ModelError, match="digest differs"):
        load(tmp_path)


def test_a_foreign_pickle_is_refused_unread(model: AnomalyModel, tmp_path: Path) -> None:
    """A pickle put in the forest's place is never unpickled: its digest is refused, and
    even with a matching manifest NumPy reads it with allow_pickle=False."""
    import hashlib

    save(model, tmp_path)

    class Boom:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("unpickled!",))

    payload = pickle.dumps(Boom())
    (tmp_path / "forest.npz").write_bytes(payload)
    with pytest.raises(ModelError, match="digest differs"):
        load(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["files"]["forest.npz"] = hashlib.sha256(payload).hexdigest()
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="not a forest of ours"):
        load(tmp_path)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"format": "sklearn-joblib"}, id="other-format"),
        pytest.param({"version": 99}, id="other-version"),
        pytest.param({"files": {"profile.json": "0" * 64, "model.pkl": "0" * 64}}, id="extra"),
        pytest.param({"forest_features": ["a", "b"]}, id="other-features"),
    ],
)
def test_a_foreign_manifest_is_refused(
    model: AnomalyModel, tmp_path: Path, change: dict[str, object]
) -> None:
    """A manifest of another format, version, file set or feature list is refused."""
    save(model, tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest.update(change)
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError):
        load(tmp_path)


def test_a_missing_or_garbage_directory_is_refused(tmp_path: Path) -> None:
    """No manifest, or one that is not JSON: refused with a clear message."""
    with pytest.raises(ModelError, match="cannot be read"):
        load(tmp_path)
    (tmp_path / "manifest.json").write_bytes(b"\x80\x04not json")
    with pytest.raises(ModelError, match="not JSON"):
        load(tmp_path)


def test_forest_arrays_that_would_loop_are_refused(model: AnomalyModel, tmp_path: Path) -> None:
    """Trees whose children point backwards (a loop) or out of range are refused."""
    import dataclasses

    forest = model.forest
    assert forest is not None
    left = forest.left.copy()
    inner = np.flatnonzero(left != -1)
    left[inner[1]] = inner[0]  # a child before its parent
    broken = dataclasses.replace(forest, left=left)
    save(AnomalyModel(model.profile, broken, SALT), tmp_path)
    with pytest.raises(ModelError, match="out of range"):
        load(tmp_path)
