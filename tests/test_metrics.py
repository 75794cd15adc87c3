"""Metrics against scipy/sklearn (and naive loops), system level included, and their edge cases."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import mean_absolute_error, mean_squared_error

from scorecast.errors import ConfigError, DataError
from scorecast.metrics.functional import (
    METRICS,
    MetricWarning,
    bootstrap_ci,
    compute_metrics,
    ktau,
    lcc,
    mae,
    mse,
    per_bin_rmse,
    rmse,
    srcc,
    system_level,
)


def _data(n: int = 200, seed: int = 0, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    target = rng.uniform(0, 10, n)
    preds = 0.6 * target + rng.normal(0, 2, n)
    if ties:
        target, preds = np.round(target), np.round(preds * 2) / 2
    return preds, target


def _naive_tau_b(x: np.ndarray, y: np.ndarray) -> float:
    n = len(x)
    conc = disc = tx = ty = 0
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                tx += 1
            elif dy == 0:
                ty += 1
            elif dx == dy:
                conc += 1
            else:
                disc += 1
    return (conc - disc) / math.sqrt((conc + disc + tx) * (conc + disc + ty))


@pytest.mark.parametrize("ties", [False, True])
def test_metrics_match_scipy_and_sklearn(ties: bool) -> None:
    p, t = _data(ties=ties)
    assert mse(p, t) == pytest.approx(mean_squared_error(t, p), rel=1e-12)
    assert rmse(p, t) == pytest.approx(math.sqrt(mean_squared_error(t, p)), rel=1e-12)
    assert mae(p, t) == pytest.approx(mean_absolute_error(t, p), rel=1e-12)
    assert lcc(p, t) == pytest.approx(stats.pearsonr(p, t).statistic, abs=1e-12)
    assert srcc(p, t) == pytest.approx(stats.spearmanr(p, t).statistic, abs=1e-12)
    assert ktau(p, t) == pytest.approx(stats.kendalltau(p, t).statistic, abs=1e-12)
    assert ktau(p[:60], t[:60]) == pytest.approx(_naive_tau_b(p[:60], t[:60]), abs=1e-12)


def test_registry_holds_every_metric_with_its_direction() -> None:
    assert METRICS.names() == ["ktau", "lcc", "mae", "mse", "rmse", "srcc"]
    assert METRICS.get("srcc") is srcc and srcc.higher_is_better and not rmse.higher_is_better
    with pytest.raises(ConfigError, match="unknown metric 'r2'; expected one of: ktau, lcc"):
        METRICS.get("r2")


def test_nan_pairs_are_dropped_with_a_warning() -> None:
    p, t = _data(50)
    p2, t2 = p.copy(), t.copy()
    p2[3], t2[7] = np.nan, np.inf
    with pytest.warns(MetricWarning, match="dropped 2 of 50 pairs"):
        value = lcc(p2, t2)
    keep = np.ones(50, bool)
    keep[[3, 7]] = False
    assert value == pytest.approx(stats.pearsonr(p[keep], t[keep]).statistic, abs=1e-12)


@pytest.mark.parametrize("fn", [lcc, srcc, ktau])
def test_constant_input_gives_zero_correlation_with_a_warning(fn) -> None:
    with pytest.warns(MetricWarning, match="preds constant"):
        assert fn(np.full(5, 0.1), np.arange(5.0)) == 0.0
    with pytest.warns(MetricWarning, match="target constant"):
        assert fn(np.arange(5.0), np.full(5, 3.0)) == 0.0


def test_too_few_pairs_give_nan_with_a_warning() -> None:
    with pytest.warns(MetricWarning, match="at least 2 valid pair"):
        assert math.isnan(srcc([1.0], [2.0]))
    with (
        pytest.warns(MetricWarning, match="at least 1 valid pair"),
        pytest.warns(MetricWarning, match="dropped 1 of 1"),
    ):
        assert math.isnan(mse([np.nan], [2.0]))
    with pytest.raises(ValueError, match="same length, got 2 and 3"):
        mse([1, 2], [1, 2, 3])


def test_system_level_means_per_group_match_a_pandas_groupby() -> None:
    import pandas as pd

    p, t = _data(120)
    groups = [f"S{i % 7:03d}" for i in range(120)]
    sys = system_level(p, t, groups)
    frame = pd.DataFrame({"p": p, "t": t, "g": groups}).groupby("g").mean()
    assert sys.systems == list(frame.index)
    np.testing.assert_allclose(sys.preds, frame["p"].to_numpy())
    np.testing.assert_allclose(sys.target, frame["t"].to_numpy())
    assert sys.counts.sum() == 120
    out = compute_metrics(p, t, ["lcc", "srcc", "ktau", "mse"], groups=groups)
    assert out["n_systems"] == 7
    assert out["system"]["lcc"]["value"] == pytest.approx(stats.pearsonr(frame["p"], frame["t"]).statistic, abs=1e-12)
    assert out["system"]["srcc"]["value"] == pytest.approx(stats.spearmanr(frame["p"], frame["t"]).statistic, abs=1e-12)
    assert out["system"]["ktau"]["value"] == pytest.approx(
        stats.kendalltau(frame["p"], frame["t"]).statistic, abs=1e-12
    )
    assert out["system"]["mse"]["value"] == pytest.approx(mean_squared_error(frame["t"], frame["p"]), rel=1e-12)


def test_system_level_with_given_system_truth() -> None:
    p = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    groups = ["A", "A", "B", "B", "C", "C"]
    truth = {"A": 2.0, "B": 1.0, "C": 5.0, "D": 9.0}
    sys = system_level(p, None, groups, system_truth=truth)
    np.testing.assert_allclose(sys.preds, [1.5, 3.5, 5.5])
    np.testing.assert_allclose(sys.target, [2.0, 1.0, 5.0])
    out = compute_metrics(p, np.arange(6.0), ["srcc"], groups=groups, system_truth=truth)
    assert out["system"]["srcc"]["value"] == pytest.approx(stats.spearmanr([1.5, 3.5, 5.5], [2, 1, 5]).statistic)
    with pytest.raises(DataError, match="no score for 1 system.*: C"):
        system_level(p, None, groups, system_truth={"A": 1.0, "B": 2.0})


def test_per_bin_rmse() -> None:
    p = np.array([1.0, 2.0, 4.0, 9.0, 10.0])
    t = np.array([0.0, 2.0, 5.0, 8.0, 10.0])
    bins = per_bin_rmse(p, t, [0, 5, 10])
    assert [b["n"] for b in bins] == [2, 3]
    assert bins[0]["rmse"] == pytest.approx(math.sqrt(0.5))
    assert bins[1]["rmse"] == pytest.approx(math.sqrt(2 / 3))
    assert bins[1]["bin"] == "[5, 10]" and bins[0]["bin"] == "[0, 5)"
    assert bins[0]["bias"] == pytest.approx(0.5)
    empty = per_bin_rmse(p, t, [0, 1, 1.5, 20])
    assert empty[1]["n"] == 0 and math.isnan(empty[1]["rmse"])
    assert sum(b["n"] for b in per_bin_rmse(p, t, 3)) == 5
    with pytest.raises(ValueError, match="increasing bin edges"):
        per_bin_rmse(p, t, [0, 0])


def test_bootstrap_ci_matches_a_naive_percentile_bootstrap() -> None:
    p, t = _data(80)
    value, low, high = bootstrap_ci("srcc", p, t, n=300, alpha=0.1, seed=3)
    rng = np.random.default_rng(3)
    draws = []
    for _ in range(300):
        i = rng.integers(0, 80, size=80)
        draws.append(stats.spearmanr(p[i], t[i]).statistic)
    assert value == pytest.approx(stats.spearmanr(p, t).statistic)
    assert low == pytest.approx(np.percentile(draws, 5)) and high == pytest.approx(np.percentile(draws, 95))
    assert low < value < high
    out = compute_metrics(p, t, ["mse"], bootstrap=100)
    assert out["utterance"]["mse"]["low"] < out["utterance"]["mse"]["value"] < out["utterance"]["mse"]["high"]


def test_bootstrap_of_degenerate_input_does_not_crash() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        value, low, high = bootstrap_ci(lcc, [1.0, 1.0, 2.0], [1.0, 2.0, 3.0], n=50)
    assert value == pytest.approx(stats.pearsonr([1.0, 1.0, 2.0], [1.0, 2.0, 3.0]).statistic)
    assert -1 <= low <= high <= 1
