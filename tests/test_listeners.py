"""Listener-aware training and the split-half ceiling.

On generated data where panels of lenient and harsh listeners rated different kinds of items,
training on the individual ratings with a learned per-listener bias recovers the biases and predicts
the mean listener's score better than training on the clip means; the split-half ceiling equals a
hand computation; the run folder's metrics.json carries the ceiling.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import stats

from scorecast.config import load_recipe
from scorecast.data.features import FeatureSet
from scorecast.data.items import Item, ItemSet, Ratings
from scorecast.errors import ConfigError, DataError
from scorecast.metrics.ceiling import spearman_brown, split_half_ceiling, split_half_once
from scorecast.runs.cv import run_cv
from scorecast.training.trainer import fit_member

N_LISTENERS = 24


def panel_data(n: int = 300, seed: int = 0):
    """Items with a true quality ``q`` linear in the features; 24 listeners with known biases; each
    item rated by 4 listeners, drawn mostly from the harsh half when ``x0 > 0`` (so the clip means
    understate the effect of ``x0``)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    q = 3.0 + 0.6 * x[:, 0] + 0.3 * x[:, 1]
    bias = np.linspace(-1.0, 1.0, N_LISTENERS)  # listener k: harsh (k < 12) .. lenient
    names = [f"L{k:02d}" for k in range(N_LISTENERS)]
    items = []
    for i in range(n):
        harsh = x[i, 0] > 0
        p = np.where(np.arange(N_LISTENERS) < N_LISTENERS // 2, 0.85 if harsh else 0.15, 0.15 if harsh else 0.85)
        who = rng.choice(N_LISTENERS, size=4, replace=False, p=p / p.sum())
        values = q[i] + bias[who] + 0.2 * rng.normal(size=4)
        r = Ratings(values, [names[k] for k in who])
        items.append(Item(id=f"c{i:03d}", targets={"score": r.mean}, ratings={"score": r}, group=f"s{i % 10}"))
    ids = [it.id for it in items]
    return ItemSet(items, "generated", ["score"]), FeatureSet(ids, {"x": x}), q, dict(zip(names, bias - bias.mean()))


def recipe(listeners: bool, epochs: int = 60):
    d = {
        "targets": [{"name": "score", "low": -2, "high": 8, "step": 1}],
        "model": {"fusion": {"name": "concat"}, "head": {"name": "regression"}},
        "losses": [{"name": "mse"}],
        "training": {"max_epochs": epochs, "lr": 0.02, "batch_size": 64, "scheduler": "none", "early_stopping": None},
        "cv": {"folds": 3, "seeds": [0]},
        "evaluate": {"bootstrap": 20},
    }
    if listeners:
        d["training"]["listeners"] = {"scale": False, "l2": 0.0}
    return load_recipe(d)


def test_listener_aware_training_recovers_biases_and_beats_clip_means(tmp_path):
    torch.set_num_threads(1)
    items, fs, q, true_bias = panel_data()
    y = items.target_matrix()
    ratings = [it.ratings["score"] for it in items]
    train, test = np.arange(240), np.arange(240, 300)
    aware = fit_member(recipe(True), fs, y, train, [], seed=0, log_dir=tmp_path, ratings=ratings)
    plain = fit_member(recipe(False), fs, y, train, [], seed=0, log_dir=tmp_path, ratings=ratings)
    learned = aware.listeners
    assert sorted(learned) == sorted(true_bias)
    got = np.array([learned[k]["bias"] for k in sorted(true_bias)])
    want = np.array([true_bias[k] for k in sorted(true_bias)])
    assert np.corrcoef(got, want)[0, 1] > 0.95
    assert np.abs(got - want).max() < 0.35
    err_aware = np.mean((aware.predict(fs.subset(test)).mean[:, 0] - q[test]) ** 2)
    err_plain = np.mean((plain.predict(fs.subset(test)).mean[:, 0] - q[test]) ** 2)
    assert err_aware < 0.5 * err_plain, (err_aware, err_plain)
    assert not hasattr(plain, "listeners")


def test_listeners_need_rater_ids(tmp_path):
    items, fs, _, _ = panel_data(40)
    y = items.target_matrix()
    with pytest.raises(DataError, match=r"training.listeners: expected per-listener ratings with rater ids"):
        fit_member(recipe(True, 1), fs, y, np.arange(40), [], log_dir=tmp_path, ratings=[Ratings(np.ones(2))] * 40)


def test_listeners_refuse_mixup(tmp_path):
    items, fs, _, _ = panel_data(40)
    y = items.target_matrix()
    bad = recipe(True, 1).model_copy(deep=True)
    bad.training.mixup_alpha = 0.2
    with pytest.raises(ConfigError, match=r"training.listeners: mixup mixes two items' ratings"):
        fit_member(bad, fs, y, np.arange(40), [], log_dir=tmp_path, ratings=[it.ratings["score"] for it in items])


# ------------------------------------------------------------------------------------ ceiling


def small_panel():
    # 4 listeners, 5 items, 3 systems
    r = [
        Ratings(np.array([1.0, 2.0, 2.0]), ["a", "b", "c"]),
        Ratings(np.array([3.0, 4.0, 3.0, 5.0]), ["a", "b", "c", "d"]),
        Ratings(np.array([5.0, 4.0]), ["b", "d"]),
        Ratings(np.array([2.0, 1.0, 3.0]), ["a", "c", "d"]),
        Ratings(np.array([4.0, 5.0]), ["a", "b"]),
        Ratings(np.array([3.0, 3.0, 2.0]), ["b", "c", "d"]),
    ]
    groups = ["s1", "s1", "s2", "s2", "s3", "s3"]
    return r, groups


def test_split_half_against_a_hand_computation():
    ratings, groups = small_panel()
    half_of = {"a": 0, "c": 0, "b": 1, "d": 1}
    # by hand: half 0 = listeners a, c; half 1 = b, d; item means per half
    h0 = [np.mean([1, 2]), np.mean([3, 3]), np.nan, np.mean([2, 1]), 4.0, 3.0]
    h1 = [2.0, np.mean([4, 5]), np.mean([5, 4]), 3.0, 5.0, np.mean([3, 2])]
    both = [0, 1, 3, 4, 5]  # item 2 has no rating from half 0
    a, b = np.array(h0)[both], np.array(h1)[both]
    r_clip = stats.spearmanr(a, b).statistic
    l_clip = stats.pearsonr(a, b).statistic
    g = np.array(groups)[both]
    sa = np.array([a[g == s].mean() for s in ("s1", "s2", "s3")])
    sb = np.array([b[g == s].mean() for s in ("s1", "s2", "s3")])
    r_sys = stats.spearmanr(sa, sb).statistic
    got = split_half_once(ratings, half_of, groups)
    assert got["clip"]["srcc"] == pytest.approx(2 * r_clip / (1 + r_clip))
    assert got["clip"]["lcc"] == pytest.approx(2 * l_clip / (1 + l_clip))
    assert got["system"]["srcc"] == pytest.approx(2 * r_sys / (1 + r_sys))
    assert spearman_brown(0.5) == pytest.approx(2 / 3)


def test_split_half_ceiling_is_the_mean_over_seeded_random_halves():
    ratings, groups = small_panel()
    raters = ["a", "b", "c", "d"]
    rng = np.random.default_rng(3)
    by_hand = []
    for _ in range(7):
        order = rng.permutation(4)
        half_of = {raters[k]: int(pos >= 2) for pos, k in enumerate(order)}
        by_hand.append(split_half_once(ratings, half_of, groups)["clip"]["srcc"])
    got = split_half_ceiling(ratings, groups, splits=7, seed=3)
    assert got["clip"]["srcc"] == pytest.approx(np.nanmean(by_hand))
    assert got["listeners"] == 4 and got["splits"] == 7 and got["n_systems"] == 3


def test_ceiling_needs_rater_ids():
    with pytest.raises(DataError, match=r"split-half ceiling: expected per-listener ratings with rater ids, got none"):
        split_half_ceiling([Ratings(np.array([1.0, 2.0]))])


def test_cv_writes_the_ceiling_and_trains_listener_aware(tmp_path):
    torch.set_num_threads(1)
    items, fs, _, _ = panel_data(90)
    res = run_cv(recipe(True, 5), items, fs, tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    ceiling = metrics["targets"]["score"]["ceiling"]
    assert ceiling["listeners"] == N_LISTENERS and ceiling["items"] == 90
    assert -1.0 <= ceiling["clip"]["srcc"] <= 1.0 and "system" in ceiling
    assert res.metrics["targets"]["score"]["ceiling"] == ceiling
    from scorecast.report.page import write_report

    page = write_report(tmp_path / "run").read_text()
    assert "Ceiling: the listeners' own agreement" in page
    assert f"{ceiling['clip']['srcc']:.4f}" in page
