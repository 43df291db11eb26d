"""Differential privacy: noise distributions (statistically), clamping and the budget."""

from __future__ import annotations

import math
import secrets
import statistics

import pytest

from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.protection import (
    PrivacyAccountant,
    PrivacyBudgetExhausted,
    apply_differential_privacy,
)
from pynomaly_security.protection.privacy import gaussian_noise, laplace_noise

N = 20_000
# Tolerances are ~6 standard errors: a false failure is rarer than one in 10**8 runs.


def test_laplace_noise_mean_variance_and_shape() -> None:
    """Laplace(b): mean 0, variance 2b^2, P(|x| < b) = 1 - 1/e."""
    rng, b = secrets.SystemRandom(), 2.0
    draws = [laplace_noise(b, rng) for _ in range(N)]
    assert abs(statistics.fmean(draws)) < 6 * math.sqrt(2) * b / math.sqrt(N)
    assert statistics.pvariance(draws) == pytest.approx(
        2 * b**2, rel=6 * math.sqrt(20 / 4) / math.sqrt(N)
    )
    inside = sum(abs(x) < b for x in draws) / N
    assert inside == pytest.approx(1 - math.exp(-1), abs=6 * math.sqrt(0.25 / N))


def test_gaussian_noise_mean_and_variance() -> None:
    """Normal(0, sigma^2): mean 0, variance sigma^2, 68.3% within one sigma."""
    rng, sigma = secrets.SystemRandom(), 3.0
    draws = [gaussian_noise(sigma, rng) for _ in range(N)]
    assert abs(statistics.fmean(draws)) < 6 * sigma / math.sqrt(N)
    assert statistics.pvariance(draws) == pytest.approx(sigma**2, rel=6 * math.sqrt(2 / N))
    assert sum(abs(x) < sigma for x in draws) / N == pytest.approx(
        0.6827, abs=6 * math.sqrt(0.25 / N)
    )


def test_noisy_count_is_unbiased_with_scale_one_over_epsilon() -> None:
    """A count with epsilon=0.5 has Laplace(2) noise: over many releases, mean n, variance 8."""
    data = [{"x": 1}] * 100
    releases = [
        apply_differential_privacy(data, 0.5, ["x"], query="count")["x"] for _ in range(5000)
    ]
    assert statistics.fmean(releases) == pytest.approx(100, abs=6 * math.sqrt(8 / 5000))
    assert statistics.pvariance(releases) == pytest.approx(8, rel=0.2)


def test_gaussian_sum_uses_the_classic_sigma() -> None:
    """Gaussian sum noise has sigma = sens * sqrt(2 ln(1.25/delta)) / epsilon."""
    data = [{"v": 5.0}] * 10
    eps, delta = 0.5, 1e-5
    sigma = 10 * math.sqrt(2 * math.log(1.25 / delta)) / eps
    releases = [
        apply_differential_privacy(
            data, eps, {"v": (0, 10)}, query="sum", mechanism="gaussian", delta=delta
        )["v"]
        for _ in range(4000)
    ]
    assert statistics.fmean(releases) == pytest.approx(50, abs=6 * sigma / math.sqrt(4000))
    assert statistics.pstdev(releases) == pytest.approx(sigma, rel=0.1)


def test_mean_is_clamped_and_close_for_large_data() -> None:
    """Values outside the bounds are clamped; the noisy mean lies within the bounds."""
    data = [{"age": 30}] * 5000 + [{"age": 10_000}]  # one outlier, clamped to 100
    result = apply_differential_privacy(data, 1.0, {"age": (0, 100)})["age"]
    assert 0 <= result <= 100  # a range: the mean is noised (random), within the bounds
    assert result == pytest.approx(30.014, abs=2.0)


def test_non_numeric_and_missing_values_are_skipped() -> None:
    """Strings, booleans and missing fields do not count."""
    data = [{"v": 1}, {"v": "2"}, {"v": True}, {}, {"v": 3.0}]
    releases = [
        apply_differential_privacy(data, 5.0, ["v"], query="count")["v"] for _ in range(2000)
    ]
    assert statistics.fmean(releases) == pytest.approx(2, abs=0.1)


def test_budget_is_charged_and_exhausted() -> None:
    """Queries spend the dataset's budget; once spent, the next query is refused and not charged."""
    accountant = PrivacyAccountant(1.0)
    data = [{"v": 1.0}] * 10
    for _ in range(4):
        apply_differential_privacy(
            data, 0.25, {"v": (0, 1)}, accountant=accountant, dataset_id="customers"
        )
    assert accountant.remaining("customers") == pytest.approx(0)
    with pytest.raises(PrivacyBudgetExhausted, match="customers"):
        apply_differential_privacy(
            data, 0.01, {"v": (0, 1)}, accountant=accountant, dataset_id="customers"
        )
    assert accountant.spent("customers")[0] == pytest.approx(1.0)
    # Other datasets have their own budget.
    apply_differential_privacy(data, 1.0, {"v": (0, 1)}, accountant=accountant, dataset_id="orders")


def test_gaussian_charges_delta() -> None:
    """Gaussian queries spend delta (twice per field for a mean); the delta budget is enforced."""
    accountant = PrivacyAccountant(10.0, delta_budget=3e-6)
    data = [{"v": 1.0}] * 10
    kwargs = {"mechanism": "gaussian", "delta": 1e-6, "accountant": accountant}
    apply_differential_privacy(data, 0.5, {"v": (0, 1)}, **kwargs)  # type: ignore[arg-type]
    assert accountant.spent("default")[1] == pytest.approx(2e-6)
    with pytest.raises(PrivacyBudgetExhausted):
        apply_differential_privacy(data, 0.5, {"v": (0, 1)}, **kwargs)  # type: ignore[arg-type]


def test_accountant_bounds_datasets_without_eviction() -> None:
    """Beyond max_datasets a new dataset is refused (evicting would reset a budget)."""
    accountant = PrivacyAccountant(1.0, max_datasets=2)
    accountant.charge("a", 0.1)
    accountant.charge("b", 0.1)
    with pytest.raises(PrivacyBudgetExhausted):
        accountant.charge("c", 0.1)
    accountant.charge("a", 0.1)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        pytest.param((0.0, {"v": (0, 1)}), {}, id="epsilon-zero"),
        pytest.param((math.inf, {"v": (0, 1)}), {}, id="epsilon-inf"),
        pytest.param((1.0, ["v"]), {"query": "mean"}, id="mean-without-bounds"),
        pytest.param((1.0, {"v": (1, 0)}), {}, id="inverted-bounds"),
        pytest.param((1.0, {"v": (0, math.inf)}), {"query": "sum"}, id="infinite-bounds"),
        pytest.param((1.0, {}), {}, id="no-fields"),
        pytest.param((2.0, {"v": (0, 1)}), {"mechanism": "gaussian"}, id="gaussian-epsilon-ge-1"),
        pytest.param((0.5, {"v": (0, 1)}), {"query": "median"}, id="unknown-query"),
    ],
)
def test_invalid_parameters(args: tuple[object, object], kwargs: dict[str, object]) -> None:
    """Invalid parameters are ConfigurationErrors and charge nothing."""
    accountant = PrivacyAccountant(1.0)
    with pytest.raises(ConfigurationError):
        apply_differential_privacy([{"v": 1}], *args, accountant=accountant, **kwargs)  # type: ignore[arg-type]
    assert accountant.spent("default") == (0.0, 0.0)
