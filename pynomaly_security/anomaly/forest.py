"""The Isolation Forest over generic request (and principal) features: NumPy arrays we own.

Trained with scikit-learn (the ``[ml]`` extra); kept and scored without it. After
training, every tree's arrays (children, split feature, threshold, samples per
node) are copied out of the estimator into flat NumPy arrays, saved as an ``.npz``
read with ``allow_pickle=False`` (no object in the file can run code), and scored
here in micro-batches: all trees advance one level per step over the whole batch,
a few dozen vectorised operations for a batch of any size, where scikit-learn's
``score_samples`` costs about a millisecond per call however small the batch.
The scores are scikit-learn's (``tests/anomaly/test_forest.py`` checks it).

The forest's score is turned into the profile's unit, surprisal in decimal
digits, by its rank among the training requests' scores (quantiles kept with the
trees): a request that scores as only 1 in 1,000 training requests do costs 3.

References:
    F. T. Liu, K. M. Ting, Z.-H. Zhou, "Isolation Forest", ICDM 2008.
    scikit-learn ``IsolationForest.score_samples``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pynomaly_security.anomaly.features import RequestFeatures

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["REQUEST_FEATURES", "Forest", "request_vector"]

_EULER = 0.5772156649015329

REQUEST_FEATURES: tuple[str, ...] = (
    "method_get",
    "method_post",
    "method_other",
    "depth",
    "endpoint_length",
    "has_extension",
    "params",
    "query_length",
    "body_length",
    "body_form",
    "body_json",
    "body_other",
    "max_value_length",
    "mean_value_length",
    "value_classes",
    "value_punctuation",
    "value_high",
    "value_control",
    "headers",
)
"""The generic request features (the naive baseline the issue measures: 19)."""

_PUNCT_BITS = ~0b1111111
_HIGH_BITS = 0b11000
_CONTROL_BIT = 0b100000


def request_vector(f: RequestFeatures) -> list[float]:
    """:data:`REQUEST_FEATURES` of one request, in order."""
    lengths = [p.length for p in f.params]
    mask = 0
    for p in f.params:
        mask |= p.mask
    return [
        float(f.method == "GET"),
        float(f.method == "POST"),
        float(f.method not in ("GET", "POST")),
        float(f.depth),
        float(len(f.endpoint)),
        float(bool(f.extension)),
        float(len(f.params)),
        float(f.query_length),
        float(f.body_length),
        float(f.body_type == "form"),
        float(f.body_type == "json"),
        float(f.body_type not in ("form", "json", "none")),
        float(max(lengths, default=0)),
        float(sum(lengths) / len(lengths)) if lengths else 0.0,
        float(mask.bit_count()),
        float((mask & _PUNCT_BITS).bit_count()),
        float(bool(mask & _HIGH_BITS)),
        float(bool(mask & _CONTROL_BIT)),
        float(len(f.header_names)),
    ]


def _average_path_length(n: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    import numpy as np

    n = n.astype(np.float64)
    out = np.zeros_like(n)
    big = n > 2
    out[n == 2] = 1.0
    out[big] = 2.0 * (np.log(n[big] - 1.0) + _EULER) - 2.0 * (n[big] - 1.0) / n[big]
    return out


@dataclass(frozen=True)
class Forest:
    """Isolation trees as flat arrays (global node ids; ``left == -1`` at leaves)."""

    left: npt.NDArray[np.int64]
    right: npt.NDArray[np.int64]
    feature: npt.NDArray[np.int64]
    threshold: npt.NDArray[np.float64]
    leaf_depth: npt.NDArray[np.float64]
    """Per node: ``c(samples in it)``, what a leaf adds to the path length."""
    roots: npt.NDArray[np.int64]
    max_samples: int
    quantiles: npt.NDArray[np.float64]
    """Anomaly (``-score_samples``) of the training requests at evenly spaced ranks."""
    features: tuple[str, ...]

    # -- training (scikit-learn) ------------------------------------------------------
    @classmethod
    def train(
        cls,
        rows: Sequence[Sequence[float]],
        features: Sequence[str],
        *,
        n_estimators: int = 100,
        max_samples: int = 256,
        seed: int = 0,
    ) -> Forest:
        """Fit scikit-learn's IsolationForest and copy its trees out (needs ``[ml]``)."""
        import numpy as np
        from sklearn.ensemble import IsolationForest

        x = np.asarray(rows, dtype=np.float32)
        model = IsolationForest(
            n_estimators=n_estimators, max_samples=min(max_samples, len(x)), random_state=seed
        ).fit(x)
        lefts, rights, feats, thrs, sizes, roots = [], [], [], [], [], []
        offset = 0
        for tree, cols in zip(model.estimators_, model.estimators_features_, strict=True):
            t = tree.tree_
            left = t.children_left.astype(np.int64)
            leaf = left == -1
            lefts.append(np.where(leaf, -1, left + offset))
            rights.append(np.where(leaf, -1, t.children_right.astype(np.int64) + offset))
            feats.append(np.where(leaf, 0, np.asarray(cols)[np.maximum(t.feature, 0)]))
            thrs.append(t.threshold.astype(np.float64))
            sizes.append(t.n_node_samples)
            roots.append(offset)
            offset += t.node_count
        forest = cls(
            left=np.concatenate(lefts),
            right=np.concatenate(rights),
            feature=np.concatenate(feats).astype(np.int64),
            threshold=np.concatenate(thrs),
            leaf_depth=_average_path_length(np.concatenate(sizes)),
            roots=np.asarray(roots, dtype=np.int64),
            max_samples=int(model.max_samples_),
            quantiles=np.zeros(1),
            features=tuple(features),
        )
        anomaly = -forest.score_samples(x)
        quantiles = np.quantile(anomaly, np.linspace(0.0, 1.0, 2001))
        return cls(**{**forest.__dict__, "quantiles": quantiles})

    # -- scoring (NumPy only) ---------------------------------------------------------
    def score_samples(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """scikit-learn's ``IsolationForest.score_samples`` (lower: more abnormal)."""
        import numpy as np

        data = np.asarray(x, dtype=np.float32).astype(np.float64)
        n = data.shape[0]
        if n == 0:
            return np.zeros(0)
        node = np.broadcast_to(self.roots, (n, self.roots.size)).copy()
        depth = np.zeros(node.shape)
        rows = np.arange(n)[:, None]
        left, right, feature, threshold = self.left, self.right, self.feature, self.threshold
        while True:
            child = left[node]
            inner = child != -1
            if not inner.any():
                break
            go_left = data[rows, feature[node]] <= threshold[node]
            node = np.where(inner, np.where(go_left, child, right[node]), node)
            depth += inner
        depth += self.leaf_depth[node]
        mean = depth.sum(axis=1) / self.roots.size
        scale = float(_average_path_length(np.asarray([self.max_samples]))[0])
        result: npt.NDArray[np.float64] = -np.power(2.0, -mean / scale)
        return result

    def surprisal(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Decimal digits: ``log10(1 / share of training requests as abnormal)``."""
        import numpy as np

        anomaly = -self.score_samples(x)
        q = self.quantiles
        rank = np.searchsorted(q, anomaly, side="left") / q.size  # share below
        n = 10_000.0  # resolution of the quantiles, as a count of training requests
        at_least = (1.0 - rank) * n
        out: npt.NDArray[np.float64] = np.log10((n + 1.0) / (at_least + 0.5))
        return out

    # -- checks for a loaded forest -----------------------------------------------------
    def check(self) -> None:
        """Raise ValueError unless the arrays describe trees this code can walk."""
        import numpy as np

        size = self.left.size
        arrays = (self.right, self.feature, self.threshold, self.leaf_depth)
        if any(a.ndim != 1 or a.size != size for a in (self.left, *arrays)):
            raise ValueError("forest arrays differ in shape")
        inner = self.left != -1
        for a in (self.left, self.right):
            if ((a[inner] <= np.flatnonzero(inner)) | (a[inner] >= size)).any():
                raise ValueError("forest children out of range")
        if (self.right[~inner] != -1).any() or (self.right[inner] == -1).any():
            raise ValueError("forest leaves disagree")
        if ((self.feature < 0) | (self.feature >= len(self.features))).any():
            raise ValueError("forest feature out of range")
        if self.roots.ndim != 1 or ((self.roots < 0) | (self.roots >= size)).any():
            raise ValueError("forest roots out of range")
        if self.quantiles.ndim != 1 or self.quantiles.size < 2 or self.max_samples < 1:
            raise ValueError("forest quantiles missing")
        if not math.isfinite(float(self.threshold[inner].sum() if inner.any() else 0.0)):
            raise ValueError("forest thresholds not finite")
