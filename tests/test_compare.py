"""``paired_bootstrap`` against a direct resampling loop with scipy/sklearn, and ``scorecast evaluate
--baseline`` end to end on small CSV files."""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import mean_squared_error

from scorecast.metrics.compare import verdict
from scorecast.metrics.functional import MetricWarning, bootstrap_ci, paired_bootstrap

REFERENCE = {
    "srcc": (lambda p, t: stats.spearmanr(p, t).statistic, True),
    "lcc": (lambda p, t: stats.pearsonr(p, t).statistic, True),
    "mse": (lambda p, t: mean_squared_error(t, p), False),
    "rmse": (lambda p, t: math.sqrt(mean_squared_error(t, p)), False),
}


def _systems(n: int = 50, seed: int = 3, noise_a: float = 1.0, noise_b: float = 1.1):
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 10, n)
    return t + rng.normal(0, noise_a, n), t + rng.normal(0, noise_b, n), t


@pytest.mark.parametrize("name,alpha", [("srcc", 0.05), ("mse", 0.1)])
def test_paired_bootstrap_matches_direct_resampling(name: str, alpha: float) -> None:
    a, b, t = _systems()
    ref, higher = REFERENCE[name]
    out = paired_bootstrap(name, a, b, t, n=300, seed=11, alpha=alpha)
    assert out["higher_is_better"] is higher
    assert out["value"] == pytest.approx(ref(a, t) - ref(b, t), abs=1e-12)
    rng = np.random.default_rng(11)
    draws, draws_a = [], []
    for _ in range(300):
        i = rng.integers(0, t.size, size=t.size)
        draws.append(ref(a[i], t[i]) - ref(b[i], t[i]))
        draws_a.append(ref(a[i], t[i]))
    draws = np.array(draws)
    assert out["low"] == pytest.approx(np.percentile(draws, 100 * alpha / 2), abs=1e-9)
    assert out["high"] == pytest.approx(np.percentile(draws, 100 * (1 - alpha / 2)), abs=1e-9)
    expected_p = np.mean(draws <= 0) if higher else np.mean(draws >= 0)
    assert 0 < expected_p < 1  # close systems: the share is not trivially 0 or 1
    assert out["p_not_better"] == pytest.approx(expected_p, abs=1e-12)
    # the same resampled indices as bootstrap_ci draws for one system
    _, low_a, high_a = bootstrap_ci(name, a, t, n=300, alpha=alpha, seed=11)
    assert (low_a, high_a) == pytest.approx(
        tuple(np.percentile(draws_a, [100 * alpha / 2, 100 * (1 - alpha / 2)])), abs=1e-9
    )


@pytest.mark.parametrize("name", ["srcc", "lcc", "rmse", "mse"])
def test_clearly_better_and_worse_systems(name: str) -> None:
    a, b, t = _systems(n=80, noise_a=0.3, noise_b=2.5)
    better = paired_bootstrap(name, a, b, t, n=200)
    worse = paired_bootstrap(name, b, a, t, n=200)
    good_side = 1 if REFERENCE[name][1] else -1
    assert (better["low"] > 0) if good_side > 0 else (better["high"] < 0)
    assert better["p_not_better"] <= 0.01 and worse["p_not_better"] >= 0.99
    assert worse["value"] == pytest.approx(-better["value"], abs=1e-12)
    assert verdict(better) == "better" and verdict(worse) == "worse"


def test_identical_systems_give_zero() -> None:
    a, _, t = _systems()
    for name in ("srcc", "mae"):
        out = paired_bootstrap(name, a, a.copy(), t, n=100)
        assert (out["value"], out["low"], out["high"]) == (0.0, 0.0, 0.0)
        assert out["p_not_better"] == 1.0  # a tie is not better
        assert verdict(out) == "no clear difference"


def test_nan_items_are_dropped_for_both_systems() -> None:
    a, b, t = _systems(n=40)
    a[3], b[7], t[11] = np.nan, np.nan, np.inf
    keep = np.ones(40, dtype=bool)
    keep[[3, 7, 11]] = False
    with pytest.warns(MetricWarning, match="dropped 3 of 40 pairs"):
        out = paired_bootstrap("lcc", a, b, t, n=100, seed=2)
    assert out == paired_bootstrap("lcc", a[keep], b[keep], t[keep], n=100, seed=2)
    ref = REFERENCE["lcc"][0]
    assert out["value"] == pytest.approx(ref(a[keep], t[keep]) - ref(b[keep], t[keep]), abs=1e-12)


def test_no_resamples_and_bad_arguments() -> None:
    a, b, t = _systems(n=20)
    out = paired_bootstrap("srcc", a, b, t, n=0)
    assert math.isnan(out["low"]) and math.isnan(out["high"]) and math.isnan(out["p_not_better"])
    assert out["value"] == pytest.approx(REFERENCE["srcc"][0](a, t) - REFERENCE["srcc"][0](b, t))
    assert verdict(out) == "no clear difference"
    with pytest.raises(ValueError, match="preds_a and preds_b of the same length, got 20 and 19"):
        paired_bootstrap("srcc", a, b[:-1], t)
    with pytest.raises(ValueError, match="same length, got 20 and 19"):
        paired_bootstrap("srcc", a, b, t[:-1])
    with pytest.raises(ValueError, match="expected a metric with a higher_is_better attribute"):
        paired_bootstrap(lambda p, q: 0.0, a, b, t)
    with pytest.raises(ValueError, match="0 < alpha < 1, got 1.5"):
        paired_bootstrap("srcc", a, b, t, alpha=1.5)


# ---------------------------------------------------------------------------------------------- CLI


def run(*args) -> tuple[int, str]:
    """The real entry point (scorecast errors -> message + exit 2), in-process: (exit code, output)."""
    from scorecast.cli.app import main

    out, argv = io.StringIO(), sys.argv
    sys.argv = ["scorecast", *map(str, args)]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), warnings.catch_warnings():
            main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = argv
    return code, " ".join(out.getvalue().split())


@pytest.fixture
def tables(tmp_path: Path) -> dict[str, Path]:
    """truth.csv (60 ids), system.csv (all 60, shuffled), baseline.csv (noisier, 5 ids missing, one NaN)."""
    rng = np.random.default_rng(5)
    n = 60
    ids = [f"clip{i:02d}.wav" for i in range(n)]
    truth = rng.uniform(0, 10, n)
    pd.DataFrame({"wav_file_name": ids, "average_score": truth}).to_csv(tmp_path / "truth.csv", index=False)
    order = rng.permutation(n)
    system = pd.DataFrame(
        {"wav_file_name": [ids[i] for i in order], "prediction": truth[order] + rng.normal(0, 0.3, n)}
    )
    system.to_csv(tmp_path / "system.csv", index=False)
    base = pd.DataFrame({"wav_file_name": ids, "prediction": truth + rng.normal(0, 3.0, n)}).iloc[5:].copy()
    base.loc[20, "prediction"] = np.nan
    base.to_csv(tmp_path / "baseline.csv", index=False)
    base.rename(columns={"prediction": "pred_score"}).to_csv(tmp_path / "renamed.csv", index=False)
    return {
        "truth": tmp_path / "truth.csv",
        "system": tmp_path / "system.csv",
        "baseline": tmp_path / "baseline.csv",
        "renamed": tmp_path / "renamed.csv",
        "dir": tmp_path,
    }


def _verdict_cell(text: str, metric: str) -> str | None:
    """The verdict printed on the metric's row of the comparison table (its 7th cell)."""
    found = re.search(rf"[│|] {metric} [│|](?:[^│|]*[│|]){{5}} (better|worse|no clear difference) [│|]", text)
    return found.group(1) if found else None


def _aligned(tables: dict[str, Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """System, baseline and truth on the ids of all three, in the system file's order (as evaluate does)."""
    system = pd.read_csv(tables["system"])
    base = pd.read_csv(tables["baseline"]).set_index("wav_file_name")["prediction"]
    truth = pd.read_csv(tables["truth"]).set_index("wav_file_name")["average_score"]
    system = system[system["wav_file_name"].isin(base.index)]
    ids = system["wav_file_name"]
    return system["prediction"].to_numpy(), base[ids].to_numpy(), truth[ids].to_numpy()


def test_cli_baseline_comparison(tables: dict[str, Path]) -> None:
    out = tables["dir"] / "result.json"
    code, text = run(
        "evaluate",
        tables["system"],
        tables["truth"],
        "--baseline",
        tables["baseline"],
        "--bootstrap",
        "200",
        "--metrics",
        "srcc,lcc,rmse",
        "-o",
        out,
    )
    assert code == 0, text
    assert "model vs baseline (n=54, 200 paired resamples)" in text
    assert "5 matched id(s) without a baseline prediction dropped" in text
    assert [_verdict_cell(text, m) for m in ("SRCC", "LCC", "RMSE")] == ["better"] * 3
    data = json.loads(out.read_text())
    comparison = data["comparison"]
    assert set(comparison) == {
        "baseline",
        "baseline_id_column",
        "n_baseline",
        "n_compared",
        "dropped",
        "unmatched_baseline",
        "bootstrap",
        "targets",
    }
    assert (
        comparison["n_baseline"],
        comparison["n_compared"],
        comparison["dropped"],
        comparison["unmatched_baseline"],
    ) == (55, 55, 5, 0)
    assert comparison["bootstrap"] == 200 and comparison["baseline"] == str(tables["baseline"])
    assert any("5 of the 60 matched id(s) have no baseline prediction" in w for w in data["warnings"])
    assert any("comparison: dropped 1 of 55 items" in w for w in data["warnings"])
    entry = comparison["targets"]["average_score"]
    assert entry["n"] == 54 and list(entry["utterance"]) == ["srcc", "lcc", "rmse"]
    a, b, t = _aligned(tables)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        for name, row in entry["utterance"].items():
            expected = paired_bootstrap(name, a, b, t, n=200)
            for key in ("value", "low", "high", "p_not_better", "higher_is_better"):
                assert row[key] == pytest.approx(expected[key], abs=1e-12), (name, key)
            keep = np.isfinite(b)
            ref = REFERENCE[name][0]
            assert row["model"] == pytest.approx(ref(a[keep], t[keep]), abs=1e-12)
            assert row["baseline"] == pytest.approx(ref(b[keep], t[keep]), abs=1e-12)
            assert row["verdict"] == "better"
    # the system's own table is still over all 60 matched items, without intervals (no --bootstrap given there)
    assert data["targets"]["average_score"]["n"] == 60

    # swapped: the baseline is now the better one; --bootstrap defaults to 1000 with --baseline
    code, text = run(
        "evaluate", tables["baseline"], tables["truth"], "--baseline", tables["system"], "--metrics", "mse", "-o", out
    )
    assert code == 0, text
    data = json.loads(out.read_text())
    assert data["comparison"]["bootstrap"] == 1000
    assert data["targets"]["average_score"]["utterance"]["mse"]["low"] is None
    row = data["comparison"]["targets"]["average_score"]["utterance"]["mse"]
    assert row["verdict"] == "worse" and row["low"] > 0 and row["higher_is_better"] is False
    assert _verdict_cell(text, "MSE") == "worse" and data["comparison"]["unmatched_baseline"] == 5


def test_cli_baseline_errors(tables: dict[str, Path]) -> None:
    code, text = run("evaluate", tables["system"], tables["truth"], "--baseline", tables["renamed"])
    assert code == 2
    assert "renamed.csv" in text and "missing column 'prediction'" in text and "'pred_score'" in text
    code, text = run(
        "evaluate", tables["system"], tables["truth"], "--baseline", tables["baseline"], "--bootstrap", "0"
    )
    assert code == 2 and "--baseline needs resamples" in text
    (tables["dir"] / "other.csv").write_text("wav_file_name,prediction\nelse.wav,1\n")
    code, text = run("evaluate", tables["system"], tables["truth"], "--baseline", tables["dir"] / "other.csv")
    assert code == 2 and "other.csv" in text and "the baseline has none of the 60 ids" in text
