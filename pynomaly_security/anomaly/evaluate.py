"""Detection quality of a model on labelled requests, with bootstrap intervals.

ROC-AUC, PR-AUC (average precision) and the share of anomalous requests detected
at a false-alarm rate of 0.1 %, 0.5 % and 1 % of the normal requests (the
threshold is the normal scores' quantile), each with a 95 % percentile interval
from ``rounds`` stratified bootstrap resamples (normal and anomalous requests
resampled apart, so every resample has both). Per category (``category`` in the
records: an attack type) where the labels have one. Needs the ``[ml]`` extra
(scikit-learn's metrics).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FALSE_ALARM_RATES", "Metrics", "evaluate_scores"]

FALSE_ALARM_RATES = (0.001, 0.005, 0.01)


@dataclass
class Metrics:
    roc_auc: tuple[float, float, float]
    pr_auc: tuple[float, float, float]
    detection: dict[float, tuple[float, float, float]]
    """False-alarm rate -> (detected share, low, high)."""
    normal: int
    anomalous: int
    per_category: dict[str, tuple[int, float]] = field(default_factory=dict)
    """Category -> (requests, share detected at 0.5 % false alarms)."""

    def lines(self, label: str = "") -> list[str]:
        def fmt(v: tuple[float, float, float]) -> str:
            return f"{v[0]:.4f} [{v[1]:.4f}, {v[2]:.4f}]"

        prefix = f"{label} " if label else ""
        out = [f"{prefix}ROC-AUC {fmt(self.roc_auc)}", f"{prefix}PR-AUC {fmt(self.pr_auc)}"]
        for rate, v in self.detection.items():
            out.append(f"{prefix}detection@{rate * 100:g}%FA {fmt(v)}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "roc_auc": self.roc_auc,
            "pr_auc": self.pr_auc,
            "detection": {f"{k * 100:g}%": v for k, v in self.detection.items()},
            "normal": self.normal,
            "anomalous": self.anomalous,
            "per_category": self.per_category,
        }


def _point(normal: Any, anomalous: Any, rates: Sequence[float]) -> tuple[float, float, list[float]]:
    import numpy as np
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = np.concatenate([np.zeros(normal.size), np.ones(anomalous.size)])
    s = np.concatenate([normal, anomalous])
    detected = [float((anomalous > np.quantile(normal, 1.0 - r)).mean()) for r in rates]
    return float(roc_auc_score(y, s)), float(average_precision_score(y, s)), detected


def evaluate_scores(
    scores: Sequence[float],
    anomalous: Sequence[bool],
    categories: Sequence[str] | None = None,
    *,
    rounds: int = 200,
    seed: int = 0,
    rates: Sequence[float] = FALSE_ALARM_RATES,
) -> Metrics:
    """Metrics of ``scores`` (higher: more anomalous) against the labels."""
    import numpy as np

    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(anomalous, dtype=bool)
    normal, bad = s[~y], s[y]
    if normal.size == 0 or bad.size == 0:
        raise ValueError("evaluation needs both normal and anomalous requests")
    auc, ap, det = _point(normal, bad, rates)
    rng = np.random.default_rng(seed)
    boot: list[tuple[float, float, list[float]]] = []
    for _ in range(rounds):
        boot.append(
            _point(
                normal[rng.integers(0, normal.size, normal.size)],
                bad[rng.integers(0, bad.size, bad.size)],
                rates,
            )
        )

    def interval(values: list[float], point: float) -> tuple[float, float, float]:
        lo, hi = np.quantile(values, [0.025, 0.975]) if values else (point, point)
        return (point, float(lo), float(hi))

    metrics = Metrics(
        roc_auc=interval([b[0] for b in boot], auc),
        pr_auc=interval([b[1] for b in boot], ap),
        detection={r: interval([b[2][i] for b in boot], det[i]) for i, r in enumerate(rates)},
        normal=int(normal.size),
        anomalous=int(bad.size),
    )
    if categories is not None:
        cats = np.asarray(categories)[y]
        if len(set(cats.tolist())) > 1:
            threshold = np.quantile(normal, 0.995)
            for cat in sorted(set(cats.tolist())):
                mine = bad[cats == cat]
                metrics.per_category[str(cat)] = (int(mine.size), float((mine > threshold).mean()))
    return metrics
