"""Baselines of a run: fitted on exactly the model's fits, scored on the same items, compared to the
model with a paired bootstrap; and the small-data guards (fold flags, member weights, warnings)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from ddp_script import base_recipe, make_dataset
from scorecast.config import load_recipe
from scorecast.runs import baselines as bl
from scorecast.runs import guards
from scorecast.runs.cv import run_cv, run_train


def _recipe(**changes):
    d = base_recipe(lr=3e-2, max_epochs=3, batch_size=48)
    d["evaluate"]["bootstrap"] = 30
    # column 0 of feature `a` stands in for a pretrained MOS output (distillmos declares column 0 its score)
    d["encoders"] = [{"name": "distillmos", "input": "audio", "alias": "a"}, {"name": "egemaps", "alias": "b"}]
    d.update(changes)
    return load_recipe(d)


@pytest.fixture(scope="module")
def recorded_cv(tmp_path_factory):
    torch.set_num_threads(1)
    import scorecast.training.trainer as trainer

    items, fs = make_dataset(90, seed=3)
    fits, seen = [], {}
    real_fit, real_preds = trainer.fit_member, bl.baseline_predictions

    def fit(recipe, features, targets, train_idx, val_idx, **kw):
        fits.append(np.union1d(train_idx, val_idx))
        return real_fit(recipe, features, targets, train_idx, val_idx, **kw)

    def preds(baselines, features, targets, splits):
        seen["splits"] = splits
        return real_preds(baselines, features, targets, splits)

    mp = pytest.MonkeyPatch()
    mp.setattr(trainer, "fit_member", fit)
    mp.setattr(bl, "baseline_predictions", preds)
    import scorecast.runs.checks as checks

    mp.setattr(checks, "baseline_predictions", preds)
    try:
        recipe = _recipe(cv={"folds": 3, "seeds": [0, 1]})
        res = run_cv(recipe, items, fs, tmp_path_factory.mktemp("bl"))
    finally:
        mp.undo()
    return recipe, items, fs, res, fits, seen["splits"]


def test_baselines_fit_exactly_the_models_training_items(recorded_cv):
    _, items, _, res, fits, splits = recorded_cv
    assert len(splits) == len(fits) == 6  # 3 folds x 2 seeds
    n = len(items)
    for split, model_train in zip(splits, fits):
        assert np.array_equal(split.train, model_train)  # the model's training part (incl. early stopping)
        assert np.array_equal(np.sort(np.concatenate([split.train, split.val])), np.arange(n))
    # two seeds: each item is scored once per seed, as the model's out-of-fold predictions are
    assert sorted(s.column for s in splits) == [0, 0, 0, 1, 1, 1]


def test_mean_and_ridge_predictions_recomputed_by_hand(recorded_cv):
    recipe, items, fs, res, _, splits = recorded_cv
    from sklearn.linear_model import RidgeCV

    y = items.targets("score")
    frame = pd.read_csv(res.out_dir / "baselines.csv")
    assert frame["id"].tolist() == items.ids
    x = np.concatenate([fs.pooled["a"], fs.pooled["b"]], axis=1).astype(np.float64)
    mean_hand, ridge_hand = np.zeros(len(y)), np.zeros(len(y))
    for s in splits:
        mean_hand[s.val] += y[s.train].mean() / 2
        xs = (x - x[s.train].mean(0)) / x[s.train].std(0)
        ridge_hand[s.val] += RidgeCV(alphas=bl.RIDGE_ALPHAS).fit(xs[s.train], y[s.train]).predict(xs[s.val]) / 2
    np.testing.assert_allclose(frame["mean:score"], mean_hand, rtol=1e-9)
    np.testing.assert_allclose(frame["ridge:score"], ridge_hand, rtol=1e-6)
    raw = frame["a.mos (raw):score"].to_numpy()
    np.testing.assert_allclose(raw, fs.pooled["a"][:, 0], rtol=1e-6)


def test_metrics_json_sets_each_baseline_beside_the_model(recorded_cv):
    recipe, items, _, res, _, _ = recorded_cv
    m = json.loads((res.out_dir / "metrics.json").read_text())
    block = m["baselines"]
    assert block["metric"] == "lcc"
    info = block["targets"]["score"]
    assert set(info["baselines"]) == {"mean", "ridge", "a.mos (raw)", "a.mos (calibrated)"}
    raw = info["baselines"]["a.mos (raw)"]
    assert "rmse" not in raw["utterance"] and "lcc" in raw["utterance"]  # other units: correlations only
    cal = info["baselines"]["a.mos (calibrated)"]
    diff = cal["model_vs"]["utterance"]["lcc"]
    model_lcc = m["targets"]["score"]["utterance"]["lcc"]["value"]
    assert diff["value"] == pytest.approx(model_lcc - cal["utterance"]["lcc"]["value"])
    assert diff["verdict"] in ("better", "worse", "no clear difference")
    best = max((n for n in info["baselines"]), key=lambda n: info["baselines"][n]["utterance"]["lcc"]["value"])
    assert info["best"] == best
    assert len(info["baselines"]["ridge"]["fits"]) == 6
    card = (res.out_dir / "bundle" / "MODEL_CARD.md").read_text()
    assert "## Baselines: score" in card and "| ridge" in card and "## Ensemble members" in card


def test_train_scores_baselines_on_the_held_out_items(tmp_path):
    items, fs = make_dataset(60, seed=4)
    recipe = _recipe(cv={"seeds": [0]})
    res = run_train(recipe, items, fs, tmp_path)
    frame = pd.read_csv(tmp_path / "baselines.csv")
    oof = pd.read_csv(tmp_path / "oof.csv")
    assert frame["id"].tolist() == oof["id"].tolist()
    y = pd.Series(items.targets("score"), index=items.ids)
    train_mean = y.drop(frame["id"]).mean()
    np.testing.assert_allclose(frame["mean:score"], train_mean)
    assert res.metrics["baselines"]["targets"]["score"]["baselines"]["mean"]["n"] == len(frame)


def test_a_model_below_its_best_baseline_is_warned_about():
    rng = np.random.default_rng(0)
    n = 200
    truth = rng.normal(size=(n, 1))
    good = truth + 0.3 * rng.normal(size=(n, 1))
    model = rng.normal(size=(n, 1))
    recipe = _recipe()
    base = bl.ZeroShotBaseline("z", "a good score", good[:, 0], calibrated=False)
    block = bl.compare_baselines(recipe, model, truth, [None] * n, {base.name: good}, [base], lambda x: x)
    assert block["targets"]["score"]["best"] == "z (raw)"
    assert block["targets"]["score"]["model_beats_best"] is False
    assert len(block["warnings"]) == 1 and "does not beat the best baseline 'z (raw)'" in block["warnings"][0]


def test_without_bootstrap_only_the_point_difference_decides_the_warning():
    """evaluate.bootstrap 0 gives no interval: a model clearly ahead is not warned about, one behind is,
    and the warning says that no interval was computed (it used to read "no clear difference")."""
    rng = np.random.default_rng(1)
    n = 200
    truth = rng.normal(size=(n, 1))
    good = truth + 0.2 * rng.normal(size=(n, 1))
    weak = truth + 2.0 * rng.normal(size=(n, 1))
    recipe = _recipe(evaluate={"bootstrap": 0})
    for model, other, ahead in ((good, weak, True), (weak, good, False)):
        base = bl.ZeroShotBaseline("z", "a score", other[:, 0], calibrated=False)
        block = bl.compare_baselines(recipe, model, truth, [None] * n, {base.name: other}, [base], lambda x: x)
        assert block["targets"]["score"]["model_beats_best"] is ahead
        assert len(block["warnings"]) == (0 if ahead else 1)
    assert "bootstrap is 0: no interval" in block["warnings"][0] and "nan" not in block["warnings"][0]


def test_pair_cosine_is_a_zero_shot_score():
    from scorecast.data.features import FeatureSet

    recipe = load_recipe(
        {
            "encoders": [
                {"name": "sentence", "input": "text.s1", "alias": "s1"},
                {"name": "sentence", "input": "text.s2", "alias": "s2"},
            ]
        }
    )
    a = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]], dtype=np.float32)
    b = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    found = bl.zero_shot_scores(recipe, FeatureSet(["x", "y", "z"], {"s1": a, "s2": b}))
    assert [name for name, _, _ in found] == ["cosine(s1,s2)"]
    np.testing.assert_allclose(found[0][2], [1.0, 1 / np.sqrt(2), 0.0])


def test_folds_with_negative_or_undefined_correlation_are_flagged():
    folds = [
        {"fold": 0, "seed": 0, "repeat": 0, "n": 16, "score": {"lcc": 0.5, "rmse": 1.0}},
        {"fold": 1, "seed": 0, "repeat": 0, "n": 16, "score": {"lcc": -0.82, "rmse": 1.0}},
        {"fold": 2, "seed": 0, "repeat": 0, "n": 16, "score": {"lcc": float("nan"), "rmse": 1.0}},
    ]
    found = guards.flag_folds(folds, ["score"])
    assert "flags" not in folds[0]
    assert folds[1]["flags"] == {"score": {"lcc": "negative"}} and folds[2]["flags"] == {"score": {"lcc": "undefined"}}
    assert len(found) == 2 and "lcc -0.820 (negative)" in found[0]


def test_member_weights_say_why_a_member_got_zero():
    from scorecast.inference.ensemble import ensemble_weights

    scores = [0.0, 0.048, float("nan"), 0.95, -0.3]
    w = ensemble_weights("weighted", scores, "lcc")
    tags = [{"fold": k, "seed": 0, "repeat": 0} for k in range(5)]
    rows = guards.member_weights(tags, scores, w, "weighted", "lcc")
    assert [r["weight"] for r in rows] == pytest.approx(list(w))
    assert "<= 0" in rows[0]["reason"] and "undefined" in rows[2]["reason"] and "<= 0" in rows[4]["reason"]
    assert rows[3]["reason"] == "weight proportional to validation lcc"
    rows = guards.member_weights(tags[:2], [-0.1, float("nan")], np.array([0.5, 0.5]), "weighted", "lcc")
    assert all("uniform weights as a fallback" in r["reason"] for r in rows)


def test_a_correlation_interval_including_zero_is_warned_about():
    metrics = {
        "targets": {
            "score": {
                "utterance": {
                    "lcc": {"value": 0.05, "low": -0.1, "high": 0.2},
                    "rmse": {"value": 1, "low": 0, "high": 2},
                },
                "system": {"srcc": {"value": 0.9, "low": 0.7, "high": 0.99}},
            }
        }
    }
    found = guards.interval_warnings(metrics)
    assert len(found) == 1 and "utterance lcc 0.050" in found[0] and "includes zero" in found[0]


def test_report_draws_baselines_and_member_weights(recorded_cv):
    from scorecast.report.page import write_report

    _, _, _, res, _, _ = recorded_cv
    page = write_report(res.out_dir).read_text()
    assert '<section id="baselines">' in page and "a.mos (calibrated)" in page
    assert '<section id="members">' in page and "weight proportional to validation lcc" in page
    assert (res.out_dir / "report" / "baselines_score.png").is_file()
    assert (res.out_dir / "report" / "member_weights.png").is_file()
