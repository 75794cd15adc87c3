"""``scorecast ensemble``: run folders from ``scorecast cv`` (different heads and encoders, through
the CLI on generated vectors) combined into one run folder and bundle; the combination is checked
against the runs' own out-of-fold tables and bundles, combined by hand."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats import pearsonr
from sklearn.linear_model import Ridge
from typer.testing import CliRunner

from ddp_script import TARGET, known_function
from scorecast.cli.app import app
from scorecast.data.features import FeatureSet
from scorecast.errors import ConfigError, DataError
from scorecast.inference.bundle import load_bundle
from scorecast.runs.ensemble import ensemble_runs

N = 120


def _vectors(rng, n, d):
    return rng.normal(size=(n, d))


def _write_table(path, n, seed, prefix="r"):
    rng = np.random.default_rng(seed)
    a, b, c = _vectors(rng, n, 4), _vectors(rng, n, 3), _vectors(rng, n, 3)
    c[:, 1] = b[:, 1] + 0.3 * rng.normal(size=n)  # c carries a noisy copy of x2
    y = known_function(a[:, 0], b[:, 1]) + 0.1 * rng.normal(size=n)
    pd.DataFrame(
        {
            "id": [f"{prefix}{i}" for i in range(n)],
            **{f"vec_{k}": [" ".join(f"{v:.6f}" for v in row) for row in m] for k, m in zip("abc", (a, b, c))},
            "score": y,
            "system": [f"sys{i % 6}" for i in range(n)],
        }
    ).to_csv(path, index=False)
    return {"a": a.astype(np.float32), "b": b.astype(np.float32), "c": c.astype(np.float32)}


def _recipe(path, table, vectors, head, ensemble="weighted", seeds=(0,), extra_encoders=()):
    recipe = {
        "name": path.stem,
        "data": {
            "reader": "table",
            "path": str(table),
            "options": {"vectors": {v: f"vec_{v}" for v in vectors}, "targets": "score", "group": "system"},
        },
        "targets": [TARGET],
        "encoders": [{"name": "lookup", "input": f"vector.{v}", "alias": v} for v in vectors] + list(extra_encoders),
        "model": {"fusion": {"name": "concat", "params": {"hidden": [16], "dropout": 0.0}}, "head": head},
        "losses": [{"name": "gaussian-nll"}] if head["name"] == "heteroscedastic" else [{"name": "mse"}],
        "training": {"max_epochs": 6, "batch_size": 40, "lr": 3e-2, "scheduler": "none", "early_stopping": None},
        "cv": {"folds": 3, "kind": "group", "ensemble": ensemble, "seeds": list(seeds)},
        "evaluate": {"bootstrap": 20, "system_level": True},
    }
    path.write_text(yaml.safe_dump(recipe))
    return path


def _cv(recipe, out, cache):
    result = CliRunner().invoke(app, ["cv", str(recipe), "--cache", str(cache), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ens")
    _write_table(root / "train.csv", N, 0)
    cache = root / "cache"
    neural = _recipe(root / "neural.yaml", root / "train.csv", "ab", {"name": "heteroscedastic"})
    ridge = _recipe(
        root / "ridge.yaml", root / "train.csv", "ac", {"name": "ridge", "params": {"alpha": 1.0}}, ensemble="mean"
    )
    stacked = _recipe(
        root / "stacked.yaml",
        root / "train.csv",
        "bc",
        {"name": "ridge", "params": {"alpha": 3.0}},
        ensemble="stack",
        seeds=(0, 1),
    )
    return {
        "root": root,
        "cache": cache,
        "neural": _cv(neural, root / "run-neural", cache),
        "ridge": _cv(ridge, root / "run-ridge", cache),
        "stacked": _cv(stacked, root / "run-stacked", cache),
    }


def _oof(run):
    return pd.read_csv(run / "oof.csv", dtype={"id": str}).set_index("id")


def _features(seed, n=25):
    rng = np.random.default_rng(seed)
    dims = {"a": 4, "b": 3, "c": 3}
    return FeatureSet(
        [f"n{i}" for i in range(n)], {k: rng.normal(size=(n, d)).astype(np.float32) for k, d in dims.items()}
    )


def _ensemble(runs_, out, *args):
    result = CliRunner().invoke(app, ["ensemble", *map(str, runs_), "-o", str(out), *args])
    assert result.exit_code == 0, result.output
    return result


def test_mean_ensemble_of_two_runs_matches_the_hand_made_average(runs):
    out = runs["root"] / "ens-mean"
    result = _ensemble([runs["neural"], runs["ridge"]], out, "--weights", "mean")
    assert "out-of-fold metrics" in result.output
    for name in (
        "recipe.yaml",
        "items.csv",
        "oof.csv",
        "metrics.json",
        "history.csv",
        "bundle/scorecast.json",
        "bundle/MODEL_CARD.md",
    ):
        assert (out / name).is_file(), name

    a, b = _oof(runs["neural"]), _oof(runs["ridge"])
    ens = _oof(out)
    b = b.loc[a.index]
    expected = np.clip(0.5 * a["pred.score"] + 0.5 * b["pred.score"], TARGET["low"], TARGET["high"])
    np.testing.assert_allclose(ens.loc[a.index, "pred.score"], expected, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ens.loc[a.index, "score"], a["score"])
    assert (ens.loc[a.index, "fold"] == a["fold"]).all()
    # the neural run predicts a spread, the ridge run none: the mixture keeps the neural half and the gap
    within = 0.5 * a["std.score"] ** 2
    between = 0.25 * (a["pred.score"] - b["pred.score"]) ** 2
    np.testing.assert_allclose(ens.loc[a.index, "std.score"], np.sqrt(within + between), rtol=1e-6)

    metrics = json.loads((out / "metrics.json").read_text())
    utt = metrics["targets"]["score"]["utterance"]
    assert utt["lcc"]["value"] == pytest.approx(pearsonr(expected, a["score"])[0], abs=1e-9)
    assert utt["rmse"]["value"] == pytest.approx(float(np.sqrt(np.mean((expected - a["score"]) ** 2))), abs=1e-9)
    assert utt["lcc"]["low"] <= utt["lcc"]["value"] <= utt["lcc"]["high"]
    assert "system" in metrics["targets"]["score"] and len(metrics["folds"]) == 3
    assert [r["weight"] for r in metrics["ensemble"]["runs"]] == [0.5, 0.5]

    bundle = load_bundle(out / "bundle")
    assert [s.feature_name for s in bundle.encoder_specs] == ["a", "b", "c"]
    assert set(bundle.encoder_identities) == {"a", "b", "c"} and bundle.feature_dims == {"a": 4, "b": 3, "c": 3}
    bundle_a, bundle_b = load_bundle(runs["neural"] / "bundle"), load_bundle(runs["ridge"] / "bundle")
    assert len(bundle.members) == len(bundle_a.members) + len(bundle_b.members) == 6
    assert bundle.stacker is None
    fs = _features(1)
    got = bundle.predict_features(fs, clip=False).mean
    want = 0.5 * bundle_a.predict_features(fs, clip=False).mean + 0.5 * bundle_b.predict_features(fs, clip=False).mean
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert bundle.predict_features(fs).std is not None
    assert "ensemble of 2 runs" in bundle.model_card and "run-ridge" in bundle.model_card
    assert [r["name"] for r in bundle.manifest["ensemble"]["runs"]] == ["neural", "ridge"]
    # the ensemble's reader reads every vector any member needs
    assert yaml.safe_load((out / "recipe.yaml").read_text())["data"]["options"]["vectors"] == {
        "a": "vec_a",
        "b": "vec_b",
        "c": "vec_c",
    }


@pytest.mark.parametrize("other", ["ridge", "stacked"])
def test_metric_weights_with_plain_runs_and_with_a_run_that_has_its_own_stacker(runs, other):
    out = runs["root"] / f"ens-metric-{other}"
    _ensemble([runs["neural"], runs[other]], out, "--weights", "metric", "--metric", "lcc")
    a, c = _oof(runs["neural"]), _oof(runs[other]).loc[_oof(runs["neural"]).index]
    lcc = np.array([pearsonr(f["pred.score"], f["score"])[0] for f in (a, c)])
    w = np.maximum(lcc, 0) / np.maximum(lcc, 0).sum()
    expected = np.clip(w[0] * a["pred.score"] + w[1] * c["pred.score"], TARGET["low"], TARGET["high"])
    np.testing.assert_allclose(_oof(out).loc[a.index, "pred.score"], expected, rtol=1e-6, atol=1e-9)
    metrics = json.loads((out / "metrics.json").read_text())
    assert [r["weight"] for r in metrics["ensemble"]["runs"]] == pytest.approx(w.tolist())
    assert [r["lcc"] for r in metrics["ensemble"]["runs"]] == pytest.approx(lcc.tolist())
    assert metrics["targets"]["score"]["utterance"]["lcc"]["value"] == pytest.approx(
        pearsonr(expected, a["score"])[0], abs=1e-9
    )

    bundle = load_bundle(out / "bundle")
    bundle_a, bundle_c = load_bundle(runs["neural"] / "bundle"), load_bundle(runs[other] / "bundle")
    assert (bundle_c.stacker is not None) == (other == "stacked")
    assert (bundle.stacker is not None) == (other == "stacked")  # a run's own ridge is folded into one stacker
    fs = _features(2)
    got = bundle.predict_features(fs, clip=False).mean
    want = w[0] * bundle_a.predict_features(fs, clip=False).mean + w[1] * bundle_c.predict_features(fs, clip=False).mean
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_stacked_ensemble_is_a_ridge_on_the_runs_and_its_oof_is_cross_fitted(runs):
    out = runs["root"] / "ens-stack"
    result = ensemble_runs([runs["neural"], runs["ridge"]], out, weights="stack")
    a, b = _oof(runs["neural"]), _oof(runs["ridge"]).loc[_oof(runs["neural"]).index]
    x = np.stack([a["pred.score"], b["pred.score"]], axis=1)
    y = a["score"].to_numpy()
    top = Ridge(alpha=1.0).fit(x, y)

    bundle = load_bundle(out / "bundle")
    bundle_a, bundle_b = load_bundle(runs["neural"] / "bundle"), load_bundle(runs["ridge"] / "bundle")
    fs = _features(3)
    got = bundle.predict_features(fs, clip=False).mean[:, 0]
    want = (
        top.intercept_
        + top.coef_[0] * bundle_a.predict_features(fs, clip=False).mean[:, 0]
        + top.coef_[1] * bundle_b.predict_features(fs, clip=False).mean[:, 0]
    )
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

    fold = a["fold"].to_numpy()
    k = fold[0]
    fitted = Ridge(alpha=1.0).fit(x[fold != k], y[fold != k])
    expected = np.clip(fitted.predict(x[fold == k]), TARGET["low"], TARGET["high"])
    np.testing.assert_allclose(_oof(out).loc[a.index[fold == k], "pred.score"], expected, rtol=1e-6, atol=1e-9)
    assert result.metrics["ensemble"]["runs"][0]["weight"] == pytest.approx([top.coef_[0]])


def test_predict_command_scores_new_items_with_the_ensemble_bundle(runs, tmp_path):
    """The predictor builds the union of encoders from the bundle and reads every vector it needs."""
    out = runs["root"] / "ens-mean-predict"
    _ensemble([runs["neural"], runs["ridge"]], out)
    vectors = _write_table(tmp_path / "new.csv", 15, 7, prefix="new")
    result = CliRunner().invoke(
        app,
        [
            "predict",
            str(out / "bundle"),
            str(tmp_path / "new.csv"),
            "-o",
            str(tmp_path / "p.csv"),
            "--no-cache",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    pred = pd.read_csv(tmp_path / "p.csv")
    fs = FeatureSet([f"new{i}" for i in range(15)], vectors)
    np.testing.assert_allclose(
        pred["score"], load_bundle(out / "bundle").predict_features(fs).mean[:, 0], rtol=1e-5, atol=1e-5
    )


def _copy_run(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_runs_with_other_targets_ids_or_truth_are_refused(runs, tmp_path):
    other = _copy_run(runs["ridge"], tmp_path / "other-target")
    recipe = yaml.safe_load((other / "recipe.yaml").read_text())
    recipe["targets"][0]["high"] = 10.0
    (other / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    with pytest.raises(
        ConfigError, match=r"run .*other-target predicts targets score \[-3, 10\].*expected the same targets"
    ):
        ensemble_runs([runs["neural"], other], tmp_path / "x")

    fewer = _copy_run(runs["ridge"], tmp_path / "fewer-ids")
    frame = pd.read_csv(fewer / "oof.csv", dtype={"id": str})
    frame.iloc[1:].to_csv(fewer / "oof.csv", index=False)
    with pytest.raises(
        DataError, match=rf"fewer-ids.*expected the same item ids .* \({N} items\), got {N - 1}: 1 missing"
    ):
        ensemble_runs([runs["neural"], fewer], tmp_path / "x")

    moved = _copy_run(runs["ridge"], tmp_path / "other-truth")
    frame = pd.read_csv(moved / "oof.csv", dtype={"id": str})
    frame.loc[4, "score"] += 1.0
    frame.to_csv(moved / "oof.csv", index=False)
    with pytest.raises(DataError, match=rf"other-truth.*item '{frame.loc[4, 'id']}' has true score"):
        ensemble_runs([runs["neural"], moved], tmp_path / "x")


def test_cli_refusal_exits_2_with_the_message(runs, tmp_path, capsys, monkeypatch):
    from scorecast.cli.app import main

    fewer = _copy_run(runs["ridge"], tmp_path / "fewer-ids")
    frame = pd.read_csv(fewer / "oof.csv", dtype={"id": str})
    frame.iloc[3:].to_csv(fewer / "oof.csv", index=False)
    monkeypatch.setattr(
        "sys.argv", ["scorecast", "ensemble", str(runs["neural"]), str(fewer), "-o", str(tmp_path / "y")]
    )
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    err = capsys.readouterr().err.replace("\n", "")
    assert "expected the same item ids" in err and "3 missing" in err
    assert not (tmp_path / "y").exists()


def test_a_feature_name_meaning_two_encoders_is_refused(runs, tmp_path):
    clash = _copy_run(runs["ridge"], tmp_path / "clash")
    manifest = json.loads((clash / "bundle" / "scorecast.json").read_text())
    for enc in manifest["encoders"]:
        if enc["feature"] == "c":
            enc["feature"], enc["spec"]["alias"] = "b", "b"
    manifest["recipe"]["encoders"] = [
        {**e, "alias": "b"} if e["alias"] == "c" else e for e in manifest["recipe"]["encoders"]
    ]
    (clash / "bundle" / "scorecast.json").write_text(json.dumps(manifest))
    with pytest.raises(
        ConfigError,
        match=r"feature 'b' names different encoders in run .*run-neural and run .*clash; .*"
        r"spec.input: 'vector.b' there, 'vector.c' here",
    ):
        ensemble_runs([runs["neural"], clash], tmp_path / "x")


def test_bad_arguments_are_refused(runs, tmp_path):
    with pytest.raises(ConfigError, match="expected at least two run folders, got 1"):
        ensemble_runs([runs["neural"]], tmp_path / "x")
    with pytest.raises(ConfigError, match="--weights: expected one of mean, metric, stack, got 'median'"):
        ensemble_runs([runs["neural"], runs["ridge"]], tmp_path / "x", weights="median")
    with pytest.raises(ConfigError, match="--metric: expected one of .*got 'accuracy'"):
        ensemble_runs([runs["neural"], runs["ridge"]], tmp_path / "x", metric="accuracy")
    with pytest.raises(ConfigError, match="is given twice"):
        ensemble_runs([runs["neural"], runs["neural"]], tmp_path / "x")
    with pytest.raises(ConfigError, match="has no recipe.yaml; expected a run folder"):
        ensemble_runs([runs["neural"], tmp_path], tmp_path / "x")
