"""A separate validation split (``val_data``) for ``scorecast train``, and the torch threads knob
(``training.threads`` / ``--threads``)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from scipy import stats
from typer.testing import CliRunner

from ddp_script import base_recipe, make_dataset
from scorecast.cli.app import app
from scorecast.config import load_recipe
from scorecast.data.features import FeatureSet
from scorecast.data.items import Item, ItemSet
from scorecast.errors import ConfigError, DataError
from scorecast.runs.cv import run_cv, run_train
from scorecast.training import trainer
from test_cli_train import _recipe as cli_recipe
from test_cli_train import _table


def renamed(items: ItemSet, fs: FeatureSet, prefix: str, source: str) -> tuple[ItemSet, FeatureSet]:
    """The same items and features under ids ``<prefix><n>`` (make_dataset always names them item0000...)."""
    ids = [f"{prefix}{i:04d}" for i in range(len(items))]
    new = [Item(id=i, targets=dict(it.targets), group=it.group) for i, it in zip(ids, items)]
    return ItemSet(new, source=source, target_names=list(items.target_names)), FeatureSet(ids, dict(fs.pooled))


def split_data(n_train: int = 90, n_val: int = 30):
    items, fs = make_dataset(n_train)
    items.source = "train.csv"
    val = renamed(*make_dataset(n_val, seed=3), prefix="val", source="dev.csv")
    return items, fs, val


class FitRecorder:
    """Wraps ``trainer.fit_member``: records the ids each fit trains and early-stops on, and the
    augmented copies it gets, then trains as usual."""

    def __init__(self, monkeypatch):
        self.calls: list[dict] = []
        self.members: list = []
        original = trainer.fit_member

        def record(recipe, features, targets, train_idx, val_idx, **kwargs):
            aug = kwargs.get("augmented")
            self.calls.append(
                {
                    "train": [features.ids[i] for i in train_idx],
                    "val": [features.ids[i] for i in val_idx],
                    "augmented": list(aug[0].ids) if aug is not None else None,
                }
            )
            member = original(recipe, features, targets, train_idx, val_idx, **kwargs)
            self.members.append(member)
            return member

        monkeypatch.setattr(trainer, "fit_member", record)


# ------------------------------------------------------------------------------ config


def test_recipe_accepts_val_data_and_threads():
    d = base_recipe(threads=2)
    d["val_data"] = {"reader": "stsb", "path": "/data/sts-dev.csv"}
    recipe = load_recipe(d)
    assert recipe.val_data.reader == "stsb" and recipe.val_data.path == "/data/sts-dev.csv"
    assert recipe.training.threads == 2
    plain = load_recipe(base_recipe())
    assert plain.val_data is None and plain.training.threads is None


def test_recipe_rejects_bad_val_data_and_threads():
    d = base_recipe()
    d["val_data"] = {"reader": "stsb", "paht": "/data/sts-dev.csv"}
    with pytest.raises(ConfigError, match=r"val_data\.paht"):
        load_recipe(d)
    for bad in (0, -1):
        with pytest.raises(ConfigError, match=rf"training.threads: expected a whole number >= 1 .*got {bad}"):
            load_recipe(base_recipe(threads=bad))
    with pytest.raises(ConfigError, match="training.threads"):
        load_recipe(base_recipe(threads="many"))


# ------------------------------------------------------------------------------ run_train with val


def test_run_train_early_stops_and_reports_on_the_val_split(tmp_path, monkeypatch):
    items, fs, (val_items, val_fs) = split_data()
    recipe = load_recipe({**base_recipe(max_epochs=6, batch_size=32), "cv": {"seeds": [0, 1]}})
    rec = FitRecorder(monkeypatch)
    res = run_train(recipe, items, fs, tmp_path, val=(val_items, val_fs))

    assert len(rec.calls) == 2 and len(res.members) == 2
    for call in rec.calls:  # every member: all training items, early stopping on exactly the val items
        assert call["train"] == items.ids and call["val"] == val_items.ids and call["augmented"] is None
    # the monitored val_lcc at the restored (best) epoch is the member's correlation on the val split
    hist = res.history
    y = val_items.targets("score")
    for seed, member in zip((0, 1), rec.members):
        best = hist[hist["seed"] == seed]["val_lcc"].max()
        assert best == pytest.approx(stats.pearsonr(member.predict(val_fs).mean[:, 0], y)[0], abs=1e-4)

    # held-out frame and metrics: the val items, scored by the mean of the members (clipped to the target)
    assert res.oof["id"].tolist() == val_items.ids
    expected = np.clip(np.mean([m.predict(val_fs).mean[:, 0] for m in rec.members], axis=0), -3, 6)
    np.testing.assert_allclose(res.oof["pred.score"], expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(res.oof["score"], y)
    utt = res.metrics["targets"]["score"]["utterance"]
    assert utt["lcc"]["value"] == pytest.approx(stats.pearsonr(expected, y)[0], abs=1e-9)
    assert utt["srcc"]["value"] == pytest.approx(stats.spearmanr(expected, y)[0], abs=1e-9)
    assert [f["n"] for f in res.metrics["folds"]] == [30, 30] and res.metrics["holdout"] is True

    # the run folder: items.csv lists what was trained on, the bundle counts both splits
    assert pd.read_csv(tmp_path / "items.csv")["id"].tolist() == items.ids
    assert pd.read_csv(tmp_path / "oof.csv")["id"].tolist() == val_items.ids
    manifest = json.loads((tmp_path / "bundle" / "scorecast.json").read_text())
    assert manifest["data"]["items"] == 90 and manifest["data"]["val_items"] == 30


def test_without_val_the_split_is_val_fraction_of_the_items(tmp_path, monkeypatch):
    items, fs, _ = split_data(80)
    rec = FitRecorder(monkeypatch)
    res = run_train(load_recipe(base_recipe(max_epochs=2, val_fraction=0.25)), items, fs, tmp_path)
    (call,) = rec.calls
    assert len(call["val"]) == 20 and sorted(call["train"] + call["val"]) == sorted(items.ids)
    assert res.oof["id"].tolist() == [i for i in items.ids if i in set(call["val"])]
    assert "val_items" not in json.loads((tmp_path / "bundle" / "scorecast.json").read_text())["data"]


def test_augmented_copies_belong_to_the_training_items_only(tmp_path, monkeypatch):
    items, fs, val = split_data(40, 12)
    aug = fs.subset(np.repeat(np.arange(40), 2))
    aug.ids = [f"{i}#aug{k}" for i in fs.ids for k in range(2)]
    d = base_recipe()
    d["model"]["head"] = {"name": "svr", "params": {"C": 3.0}}
    rec = FitRecorder(monkeypatch)
    res = run_train(load_recipe(d), items, fs, tmp_path, augmented=aug, val=val)
    assert rec.calls[0]["augmented"] == aug.ids and rec.calls[0]["val"] == val[0].ids
    assert res.oof["id"].tolist() == val[0].ids


def test_val_ids_that_collide_with_the_training_ids_are_refused(tmp_path):
    items, fs, (val_items, val_fs) = split_data(40, 12)
    clash = renamed(val_items, val_fs, prefix="item", source="dev.csv")  # item0000.. as in train.csv
    with pytest.raises(DataError, match=r"12 id\(s\) in both train.csv and dev.csv \(first: item0000"):
        run_train(load_recipe(base_recipe()), items, fs, tmp_path, val=clash)


def test_val_split_without_scores_or_with_other_features_is_refused(tmp_path):
    items, fs, (val_items, val_fs) = split_data(40, 12)
    for item in val_items:
        item.targets.clear()
    with pytest.raises(DataError, match="val_data: expected scores of target 'score' to validate on, got none"):
        run_train(load_recipe(base_recipe()), items, fs, tmp_path, val=(val_items, val_fs))
    _, _, (val_items, val_fs) = split_data(40, 12)
    narrow = FeatureSet(val_fs.ids, {"a": val_fs.pooled["a"]})
    with pytest.raises(DataError, match=r"val_data features: expected the training features \{'a': 4, 'b': 3\}"):
        run_train(load_recipe(base_recipe()), items, fs, tmp_path, val=(val_items, narrow))


def test_cv_ignores_val_data_and_says_so(tmp_path, caplog):
    items, fs, _ = split_data(60)
    d = base_recipe()
    d["model"]["head"] = {"name": "svr", "params": {"C": 3.0}}
    d["val_data"] = {"reader": "table", "path": "dev.csv"}
    with caplog.at_level(logging.INFO, logger="scorecast.runs.cv"):
        res = run_cv(load_recipe(d), items, fs, tmp_path)
    assert res.oof["id"].tolist() == items.ids
    notes = [r.getMessage() for r in caplog.records if "val_data" in r.getMessage()]
    assert len(notes) == 1 and "not used" in notes[0]


# ------------------------------------------------------------------------------ threads


def test_torch_threads_sets_and_restores():
    torch.set_num_threads(1)
    with trainer.torch_threads(2):
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == 1
    with pytest.raises(RuntimeError, match="boom"), trainer.torch_threads(2):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == 1
    with trainer.torch_threads(None):
        assert torch.get_num_threads() == 1
    with pytest.raises(ConfigError, match=r"expected a whole number >= 1 or None, got 0"), trainer.torch_threads(0):
        pass


@pytest.mark.parametrize(("threads", "inside"), [(2, 2), (None, 1)])
def test_fit_member_trains_on_the_configured_threads(threads, inside, monkeypatch, tmp_path):
    items, fs = make_dataset(40)
    seen = []
    original = trainer._fit_neural

    def spy(*args):
        seen.append(torch.get_num_threads())
        return original(*args)

    monkeypatch.setattr(trainer, "_fit_neural", spy)
    recipe = load_recipe(base_recipe(max_epochs=1, threads=threads))
    trainer.fit_member(recipe, fs, items.targets("score"), np.arange(30), np.arange(30, 40), log_dir=tmp_path)
    assert seen == [inside] and torch.get_num_threads() == 1


# ------------------------------------------------------------------------------ CLI


def test_cli_train_with_val_data_and_threads(tmp_path, monkeypatch):
    recipe_path = cli_recipe(tmp_path)  # train.csv: 150 rows with ids r0_*
    _table(tmp_path / "dev.csv", 40, 2)  # ids r2_*
    raw = yaml.safe_load(recipe_path.read_text())
    raw["val_data"] = {**raw["data"], "path": str(tmp_path / "dev.csv")}
    recipe_path.write_text(yaml.safe_dump(raw))
    seen = []
    original = trainer._fit_neural
    monkeypatch.setattr(trainer, "_fit_neural", lambda *a: seen.append(torch.get_num_threads()) or original(*a))
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        [
            "train",
            str(recipe_path),
            "--var",
            f"DATA={tmp_path / 'train.csv'}",
            "--set",
            "training.max_epochs=4",
            "--threads",
            "2",
            "--cache",
            str(tmp_path / "cache"),
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert seen == [2] and torch.get_num_threads() == 1
    saved = yaml.safe_load((out / "recipe.yaml").read_text())
    assert saved["training"]["threads"] == 2 and saved["val_data"]["path"] == str(tmp_path / "dev.csv")
    dev = pd.read_csv(tmp_path / "dev.csv")
    oof = pd.read_csv(out / "oof.csv")
    assert oof["id"].tolist() == dev["id"].tolist()
    np.testing.assert_allclose(oof["score"], dev["score"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["folds"][0]["n"] == 40
    lcc = metrics["targets"]["score"]["utterance"]["lcc"]["value"]
    assert lcc == pytest.approx(stats.pearsonr(oof["pred.score"], oof["score"])[0], abs=1e-6)
    assert pd.read_csv(out / "items.csv")["id"].tolist() == [f"r0_{i}" for i in range(150)]


def test_scorer_fit_early_stops_on_val_data_and_cv_does_not_read_it(tmp_path):
    from scorecast.api import Scorer

    recipe_path = cli_recipe(tmp_path)
    _table(tmp_path / "dev.csv", 30, 2)
    raw = yaml.safe_load(recipe_path.read_text())
    raw["data"]["path"] = str(tmp_path / "train.csv")
    raw["val_data"] = {**raw["data"], "path": str(tmp_path / "dev.csv")}
    raw["training"]["max_epochs"] = 2
    raw["model"]["head"] = {"name": "ridge"}
    scorer = Scorer(raw, cache=False).fit(out_dir=tmp_path / "fit")
    assert scorer.run_.oof["id"].tolist() == pd.read_csv(tmp_path / "dev.csv")["id"].tolist()
    assert scorer.metrics_["folds"][0]["n"] == 30
    raw["val_data"]["path"] = str(tmp_path / "missing.csv")  # cv would fail if it read val_data
    cv = Scorer(raw, cache=False).fit(out_dir=tmp_path / "cv", cv=True)
    assert cv.run_.oof["id"].tolist() == [f"r0_{i}" for i in range(150)]
