"""Differential privacy for counts, sums and means, with a per-dataset budget.

Mechanisms (noise from ``secrets.SystemRandom``, i.e. the OS CSPRNG, so the
noise cannot be predicted from earlier releases):

* Laplace: ``b = sensitivity / epsilon`` (pure epsilon-DP);
* Gaussian: ``sigma = sensitivity * sqrt(2 ln(1.25 / delta)) / epsilon``, the
  classic bound, valid for ``0 < epsilon < 1`` only (so larger epsilons are refused).

Values are clamped to ``bounds`` first: that is what bounds the sensitivity
(one person changes a sum by at most ``max(|lo|, |hi|)``). A mean is a noisy
sum over a noisy count, each with half of the field's epsilon, clamped back
into the bounds. A call's ``epsilon`` is split evenly across its fields and
charged once to the dataset's :class:`PrivacyAccountant` (sequential composition).

Known limitation: floating-point Laplace sampling leaks through the low bits
of the result (Mironov, CCS 2012); results are rounded to ``decimals`` which
mitigates but does not implement the snapping mechanism.

References:
    Dwork & Roth, "The Algorithmic Foundations of Differential Privacy" (2014),
    3.3 (Laplace), A.1 (Gaussian), 3.5 (composition).
"""

from __future__ import annotations

import math
import secrets
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pynomaly_security.exceptions import ConfigurationError, SecurityError

__all__ = [
    "PrivacyAccountant",
    "PrivacyBudgetExhausted",
    "apply_differential_privacy",
    "gaussian_noise",
    "laplace_noise",
]

Query = Literal["count", "sum", "mean"]
Mechanism = Literal["laplace", "gaussian"]


class PrivacyBudgetExhausted(SecurityError):
    """The dataset's privacy budget cannot pay for this query; nothing was released."""


def laplace_noise(scale: float, rng: secrets.SystemRandom) -> float:
    """One Laplace(0, scale) draw: the difference of two exponentials with mean ``scale``."""
    return rng.expovariate(1 / scale) - rng.expovariate(1 / scale)


def gaussian_noise(sigma: float, rng: secrets.SystemRandom) -> float:
    """One Normal(0, sigma**2) draw."""
    return rng.gauss(0.0, sigma)


class PrivacyAccountant:
    """Track the epsilon (and delta) spent per dataset; refuse queries beyond the budget.

    Args:
        epsilon_budget: total epsilon each dataset may spend.
        delta_budget: total delta each dataset may spend (Gaussian queries).
        max_datasets: bound of the map; a *new* dataset beyond it is refused
            rather than evicting an old one (eviction would reset its budget).
    """

    def __init__(
        self, epsilon_budget: float, *, delta_budget: float = 1e-5, max_datasets: int = 10_000
    ) -> None:
        if not epsilon_budget > 0 or not 0 <= delta_budget < 1:
            raise ConfigurationError("epsilon_budget must be > 0 and 0 <= delta_budget < 1")
        self.epsilon_budget = epsilon_budget
        self.delta_budget = delta_budget
        self.max_datasets = max_datasets
        self._spent: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def spent(self, dataset: str) -> tuple[float, float]:
        """``(epsilon, delta)`` spent so far on ``dataset``."""
        return self._spent.get(dataset, (0.0, 0.0))

    def remaining(self, dataset: str) -> float:
        """Epsilon ``dataset`` may still spend."""
        return max(0.0, self.epsilon_budget - self.spent(dataset)[0])

    def charge(self, dataset: str, epsilon: float, delta: float = 0.0) -> None:
        """Record a query's cost, atomically, or raise without recording it.

        Raises:
            PrivacyBudgetExhausted: the budget cannot pay for ``epsilon``/``delta``.
        """
        with self._lock:
            if dataset not in self._spent and len(self._spent) >= self.max_datasets:
                raise PrivacyBudgetExhausted("too many datasets tracked; refusing a new one")
            eps, dlt = self.spent(dataset)
            # A tiny tolerance so that e.g. ten charges of 0.1 fit a budget of 1.0.
            if eps + epsilon > self.epsilon_budget * (1 + 1e-9) or dlt + delta > self.delta_budget:
                raise PrivacyBudgetExhausted(
                    f"privacy budget of dataset {dataset!r} exhausted "
                    f"(spent epsilon {eps:.4g} of {self.epsilon_budget:.4g})"
                )
            self._spent[dataset] = (eps + epsilon, dlt + delta)


def _noise(
    sensitivity: float,
    epsilon: float,
    mechanism: Mechanism,
    delta: float,
    rng: secrets.SystemRandom,
) -> float:
    if mechanism == "laplace":
        return laplace_noise(sensitivity / epsilon, rng)
    sigma = sensitivity * math.sqrt(2 * math.log(1.25 / delta)) / epsilon
    return gaussian_noise(sigma, rng)


def apply_differential_privacy(
    dataset: Sequence[Mapping[str, Any]],
    epsilon: float,
    fields: Mapping[str, tuple[float, float]] | Sequence[str],
    *,
    query: Query = "mean",
    mechanism: Mechanism = "laplace",
    delta: float = 1e-6,
    accountant: PrivacyAccountant | None = None,
    dataset_id: str = "default",
    decimals: int = 6,
) -> dict[str, float]:
    """Release a noisy count, sum or mean of each field of ``dataset``.

    Args:
        dataset: records (missing or non-numeric values are skipped).
        epsilon: total privacy loss of this call, split evenly across ``fields``.
        fields: ``{field: (lower, upper)}`` clamping bounds; a plain list of
            names is accepted for ``query="count"`` only.
        mechanism: ``"laplace"`` or ``"gaussian"`` (needs ``0 < epsilon < 1`` per field).
        accountant: charged before anything is computed; refuses when spent.
        dataset_id: the accountant's key for this dataset.

    Raises:
        PrivacyBudgetExhausted: the accountant refused; nothing was released.
        ConfigurationError: invalid epsilon, delta, bounds or query.
    """
    if not (isinstance(epsilon, int | float) and math.isfinite(epsilon) and epsilon > 0):
        raise ConfigurationError("epsilon must be a positive finite number")
    if query not in ("count", "sum", "mean") or mechanism not in ("laplace", "gaussian"):
        raise ConfigurationError(f"unsupported query {query!r} or mechanism {mechanism!r}")
    if isinstance(fields, Mapping):
        bounds = dict(fields)
    elif query == "count":
        bounds = {name: (-math.inf, math.inf) for name in fields}
    else:
        raise ConfigurationError(f"{query} needs clamping bounds: fields={{name: (lower, upper)}}")
    if not bounds:
        raise ConfigurationError("fields must name at least one field")
    for name, (lo, hi) in bounds.items():
        if query != "count" and not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise ConfigurationError(f"bounds of {name!r} must be finite with lower <= upper")
    per_field = epsilon / len(bounds)
    # A mean releases two quantities per field (sum and count), each paying delta.
    releases = len(bounds) * (2 if query == "mean" else 1)
    used_delta = delta * releases if mechanism == "gaussian" else 0.0
    if mechanism == "gaussian" and not (0 < delta < 1 and per_field < 1):
        raise ConfigurationError("the Gaussian mechanism needs 0 < delta < 1 and epsilon < 1")
    if accountant is not None:
        accountant.charge(dataset_id, epsilon, used_delta)

    rng = secrets.SystemRandom()
    out: dict[str, float] = {}
    for name, (lo, hi) in bounds.items():
        values = [
            min(max(float(r[name]), lo), hi)
            for r in dataset
            if isinstance(r.get(name), int | float) and not isinstance(r.get(name), bool)
        ]
        if query == "count":
            result = len(values) + _noise(1.0, per_field, mechanism, delta, rng)
        elif query == "sum":
            sens = max(abs(lo), abs(hi))
            result = sum(values) + _noise(sens, per_field, mechanism, delta, rng)
        else:
            half = per_field / 2
            noisy_sum = sum(values) + _noise(max(abs(lo), abs(hi)), half, mechanism, delta, rng)
            noisy_count = len(values) + _noise(1.0, half, mechanism, delta, rng)
            # A count near zero makes the ratio meaningless; fall back to the midpoint.
            raw = noisy_sum / noisy_count if noisy_count >= 1 else (lo + hi) / 2
            result = min(max(raw, lo), hi)
        out[name] = round(result, decimals)
    return out
