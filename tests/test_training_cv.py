"""Cross-validation end to end on generated features: it learns a known function, writes every file
of the run folder, and its bundle reproduces the out-of-fold members' predictions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from ddp_script import base_recipe, known_function, make_dataset
from scorecast.config import load_recipe
from scorecast.errors import DataError
from scorecast.inference.bundle import load_bundle
from scorecast.runs.cv import run_cv, run_train


@pytest.fixture(scope="module")
def cv_run(tmp_path_factory):
    torch.set_num_threads(1)
    items, fs = make_dataset(240)
    d = base_recipe(lr=3e-2, max_epochs=15, scheduler="onecycle", batch_size=48)
    d["training"]["early_stopping"]["patience"] = 8
    d["cv"].update(kind="group", folds=3)
    d["evaluate"]["system_level"] = True
    recipe = load_recipe(d)
    out = tmp_path_factory.mktemp("cv")
    identities = {"a": {"name": "gen-a", "dim": 4}, "b": {"name": "gen-b", "dim": 3}}
    return recipe, items, fs, run_cv(recipe, items, fs, out, encoder_identities=identities)


def test_cv_learns_the_known_function(cv_run):
    _, items, _, res = cv_run
    utt = res.metrics["targets"]["score"]["utterance"]
    assert utt["lcc"]["value"] > 0.8
    assert utt["lcc"]["low"] <= utt["lcc"]["value"] <= utt["lcc"]["high"]
    # the OOF predictions track the noiseless function better than a constant would
    assert utt["rmse"]["value"] < 0.6 * np.std(items.targets("score"))
    assert "system" in res.metrics["targets"]["score"]


def test_run_folder_has_every_file(cv_run):
    recipe, items, _, res = cv_run
    out = res.out_dir
    for name in (
        "recipe.yaml",
        "items.csv",
        "oof.csv",
        "metrics.json",
        "history.csv",
        "bundle/scorecast.json",
        "bundle/MODEL_CARD.md",
        "bundle/members/00.safetensors",
        "bundle/members/02.safetensors",
    ):
        assert (out / name).is_file(), name
    assert load_recipe(out / "recipe.yaml") == recipe
    oof = pd.read_csv(out / "oof.csv")
    assert list(oof.columns) == ["id", "fold", "group", "score", "pred.score"]  # one prediction per item: no spread
    assert oof["id"].tolist() == items.ids and set(oof["fold"]) == {0, 1, 2}
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["folds"]) == 3 and metrics["folds"][0]["score"]["lcc"] > 0.5
    assert metrics["per_bin"]["score"][0].keys() >= {"bin", "n", "rmse"}
    assert sum(row["n"] for row in metrics["per_bin"]["score"]) == len(items)
    weights = metrics["ensemble"]["weights"]
    assert len(weights) == 3 and sum(weights) == pytest.approx(1.0)
    hist = pd.read_csv(out / "history.csv")
    assert set(hist["fold"]) == {0, 1, 2} and {"epoch", "train_loss", "val_loss", "val_lcc"} <= set(hist.columns)
    assert pd.read_csv(out / "items.csv").columns.tolist() == ["id", "group", "score"]
    assert yaml.safe_load((out / "recipe.yaml").read_text())["cv"]["kind"] == "group"


def test_grouped_cv_validates_each_group_in_one_fold(cv_run):
    _, _, _, res = cv_run
    per_group = res.oof.groupby("group")["fold"].nunique()
    assert (per_group == 1).all()


def test_bundle_predicts_the_weighted_members(cv_run):
    _, _, fs, res = cv_run
    bundle = load_bundle(res.bundle_path)
    pred = bundle.predict_features(fs)
    members = np.stack([m.predict(fs).mean for m in res.members])
    expected = np.clip(np.tensordot(res.weights, members, axes=1), -3, 6)
    np.testing.assert_allclose(pred.mean, expected, rtol=1e-6, atol=1e-6)
    assert bundle.encoder_identities["a"] == {"name": "gen-a", "dim": 4}
    assert "Cross-validation figures" in bundle.model_card and "| score | utterance | lcc |" in bundle.model_card


def test_stacked_estimators_and_test_data(tmp_path):
    items, fs = make_dataset(150)
    test_items, test_fs = make_dataset(40, seed=5)
    d = base_recipe()
    d["model"]["head"] = {"name": "svr", "params": {"C": 3.0}}
    d["cv"].update(ensemble="stack", seeds=[0, 1], folds=3)
    res = run_cv(load_recipe(d), items, fs, tmp_path, test=(test_items, test_fs))
    assert len(res.members) == 6 and res.stacker is not None and len(res.stacker.columns) == 2
    assert res.metrics["targets"]["score"]["utterance"]["lcc"]["value"] > 0.8
    pred = pd.read_csv(tmp_path / "predictions.csv")
    assert pred["id"].tolist() == test_items.ids and {"score", "pred.score", "std.score"} <= set(pred.columns)
    assert res.metrics["test"]["targets"]["score"]["utterance"]["lcc"]["value"] > 0.7
    again = load_bundle(tmp_path / "bundle").predict_features(test_fs)
    np.testing.assert_allclose(again.mean[:, 0], pred["pred.score"], rtol=1e-9)
    truth = known_function(test_fs.pooled["a"][:, 0], test_fs.pooled["b"][:, 1])
    assert np.corrcoef(again.mean[:, 0], truth)[0, 1] > 0.75


def test_run_train_holds_out_for_early_stopping(tmp_path):
    items, fs = make_dataset(120)
    d = base_recipe(max_epochs=3, val_fraction=0.25)
    res = run_train(load_recipe(d), items, fs, tmp_path)
    assert len(res.members) == 1 and len(res.oof) == 30
    assert (tmp_path / "bundle" / "scorecast.json").is_file()
    assert res.metrics["holdout"] is True and "lcc" in res.metrics["targets"]["score"]["utterance"]


def test_features_out_of_order_are_refused(tmp_path):
    items, fs = make_dataset(30)
    shuffled = fs.subset(np.arange(30)[::-1])
    with pytest.raises(DataError, match="items' order"):
        run_cv(load_recipe(base_recipe()), items, shuffled, tmp_path)


def test_a_target_no_item_has_is_refused(tmp_path):
    items, fs = make_dataset(30)
    d = base_recipe()
    d["targets"] = [{"name": "other", "low": 0, "high": 1}]
    with pytest.raises(DataError, match="target 'other': no item has a value"):
        run_cv(load_recipe(d), items, fs, tmp_path)


def test_weights_follow_the_fold_metric_even_when_not_reported(tmp_path):
    items, fs = make_dataset(90)
    d = base_recipe()
    d["model"]["head"] = {"name": "svr", "params": {"C": 3.0}}
    d["cv"].update(weight_metric="srcc", folds=3)
    d["evaluate"].update(metrics=["rmse"])
    res = run_cv(load_recipe(d), items, fs, tmp_path)
    srcc = np.array([f["score"]["srcc"] for f in res.metrics["folds"]])
    assert (srcc > 0.3).all()
    np.testing.assert_allclose(res.weights, srcc / srcc.sum())
    assert list(res.metrics["targets"]["score"]["utterance"]) == ["rmse"]
    d["cv"]["weight_metric"] = "pearson"
    from scorecast.errors import ConfigError

    with pytest.raises(ConfigError, match="cv.weight_metric: expected one of .*got 'pearson'"):
        run_cv(load_recipe(d), items, fs, tmp_path / "x")


def test_augmented_copies_of_training_items_only():
    from scorecast.data.features import FeatureSet
    from scorecast.runs.cv import _augmented_part

    n, copies = 5, 2
    aug = FeatureSet(
        [f"i{i}#aug{k}" for i in range(n) for k in range(copies)],
        {"a": np.repeat(np.arange(n), copies)[:, None].astype(np.float32)},
    )
    targets = np.arange(n, dtype=float)[:, None] * 10
    fs, y = _augmented_part(aug, n, np.array([1, 3]), targets)
    assert fs.ids == ["i1#aug0", "i1#aug1", "i3#aug0", "i3#aug1"]
    np.testing.assert_array_equal(y[:, 0], [10, 10, 30, 30])


def test_every_option_at_once(tmp_path):
    """Ratings -> distribution head with kl, sample weights, negatives, mixup, augmented copies,
    repeats and two seeds: trains, and the run folder's spread comes from the seeds."""
    from scorecast.data.items import Ratings

    items, fs = make_dataset(60)
    rng = np.random.default_rng(0)
    for item in items.items[::2]:
        item.ratings["score"] = Ratings(item.targets["score"] + rng.normal(scale=0.5, size=4))
    d = base_recipe(max_epochs=2, mixup_alpha=0.3, sample_weights={"kind": "sqrt-inverse"}, negatives={"ratio": 0.3})
    d["targets"] = [{"name": "score", "low": -3, "high": 6, "step": 1}]
    d["model"]["head"] = {"name": "distribution"}
    d["losses"] = [{"name": "kl", "weight": 0.5}, {"name": "mse", "weight": 0.5}]
    d["cv"].update(folds=2, repeats=2, seeds=[0, 1], kind="stratified")
    aug = fs.subset(np.repeat(np.arange(60), 1))
    aug.ids = [f"{i}#aug0" for i in fs.ids]
    res = run_cv(load_recipe(d), items, fs, tmp_path, augmented=aug)
    assert len(res.members) == 8 and len(res.weights) == 8
    assert np.isfinite(res.oof["pred.score"]).all() and (res.oof["std.score"] > 0).all()
    assert len(res.metrics["folds"]) == 8
