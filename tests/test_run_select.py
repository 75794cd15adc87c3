"""Nested model choice: an inner CV inside each outer training fold picks the candidate; the outer
validation items never reach the choice, and each fold's outer predictions are the chosen
candidate's own."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ddp_script import base_recipe, make_dataset
from scorecast.config import load_recipe
from scorecast.errors import ConfigError
from scorecast.runs import select as sel
from scorecast.runs.cv import run_cv
from scorecast.training.splits import make_folds


def _recipe(select=None, **cv):
    d = base_recipe(lr=1e-5, max_epochs=1, batch_size=48)  # the default barely trains: ridge should win
    d["evaluate"]["bootstrap"] = 0
    d["cv"].update(cv)
    d["variants"] = {"ridge": {"model.head": {"name": "ridge", "params": {"alpha": 1.0}}}}
    if select is not None:
        d["select"] = select
    return load_recipe(d)


@pytest.fixture(scope="module")
def nested(tmp_path_factory):
    import scorecast.training.trainer as trainer

    items, fs = make_dataset(90, seed=5)
    seen: list[tuple[dict, set]] = []  # (outer fold tags, ids every inner fit of that choice was given)
    real_choose, real_fit = sel.Selector.choose, trainer.fit_member

    def choose(self, items_, features, targets, groups, seed, tags):
        seen.append((dict(tags), set()))
        return real_choose(self, items_, features, targets, groups, seed, tags)

    def fit(recipe, features, *args, name="member", **kw):
        if name == "select":
            seen[-1][1].update(features.ids)
        return real_fit(recipe, features, *args, name=name, **kw)

    mp = pytest.MonkeyPatch()
    mp.setattr(sel.Selector, "choose", choose)
    mp.setattr(trainer, "fit_member", fit)
    try:
        recipe = _recipe(select={"folds": 3})
        res = run_cv(recipe, items, fs, tmp_path_factory.mktemp("select"))
    finally:
        mp.undo()
    return recipe, items, fs, res, seen


def test_inner_choice_never_sees_the_outer_validation_items(nested):
    recipe, items, _, res, seen = nested
    folds = make_folds(recipe.cv, items, items.targets("score")[:, None], seed=0)
    assert len(seen) == len(folds) == 3
    for (tags, ids), fold in zip(seen, folds):
        assert tags["fold"] == fold.fold
        outer_val = {items.ids[i] for i in fold.val}
        assert ids and not (ids & outer_val)
        assert ids <= {items.ids[i] for i in fold.train}


def test_choice_per_fold_is_recorded_and_outer_predictions_are_the_chosen_candidates(nested, tmp_path):
    recipe, items, fs, res, _ = nested
    m = json.loads((res.out_dir / "metrics.json").read_text())
    selection = m["selection"]
    assert selection["candidates"] == ["default", "ridge"] and selection["metric"] == "lcc"
    assert [r["fold"] for r in selection["per_fold"]] == [0, 1, 2]
    assert all(set(r["scores"]) == {"default", "ridge"} for r in selection["per_fold"])
    assert all(r["chosen"] == "ridge" for r in selection["per_fold"])  # the default barely trained
    ridge = load_recipe(_recipe().model_dump(mode="json"), variant="ridge")
    plain = run_cv(ridge, items, fs, tmp_path)  # the chosen candidate alone, no selection
    np.testing.assert_allclose(res.oof["pred.score"], plain.oof["pred.score"], rtol=1e-6)
    from scorecast.inference.bundle import load_bundle

    selected = load_bundle(res.out_dir / "bundle").predict_features(fs).mean
    np.testing.assert_allclose(selected, load_bundle(tmp_path / "bundle").predict_features(fs).mean, rtol=1e-6)


def test_candidates_from_variants_and_a_grid():
    recipe = _recipe(select={"candidates": ["default", "ridge"], "grid": {"training.lr": [0.01, 0.1]}})
    cands = sel.candidate_recipes(recipe)
    assert list(cands) == ["default", "ridge", "training.lr=0.01", "training.lr=0.1"]
    assert cands["ridge"].model.head.name == "ridge" and cands["training.lr=0.1"].training.lr == 0.1
    assert all(c.select is None for c in cands.values())


@pytest.mark.parametrize(
    "select, match",
    [
        ({"candidates": ["default", "nope"]}, "unknown candidate 'nope'; expected one of: default, ridge"),
        ({"candidates": ["default"]}, "expected at least two candidates"),
        ({"grid": {"training.lr": []}}, r"select.grid.training.lr: expected a non-empty list"),
    ],
)
def test_bad_selections_are_refused(select, match):
    with pytest.raises(ConfigError, match=match):
        sel.candidate_recipes(_recipe(select=select))


def test_a_variant_adding_an_encoder_is_encoded_once_and_seen_only_by_it():
    d = _recipe().model_dump(mode="json")
    d["encoders"] = [{"name": "sentence", "input": "text.a", "alias": "t"}]
    d["variants"]["stats"] = {
        "encoders": [
            {"name": "sentence", "input": "text.a", "alias": "t"},
            {"name": "text-stats", "input": "text.a", "alias": "s"},
        ]
    }
    d["select"] = {"candidates": ["default", "stats"]}
    recipe = load_recipe(d)
    assert [s.feature_name for s in sel.features_recipe(recipe).encoders] == ["t", "s"]
    d["variants"]["clash"] = {"encoders": [{"name": "text-stats", "input": "text.a", "alias": "t"}]}
    d["select"] = {"candidates": ["default", "clash"]}
    with pytest.raises(ConfigError, match="defines feature 't'"):
        sel.features_recipe(load_recipe(d))
