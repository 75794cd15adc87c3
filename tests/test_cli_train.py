"""``scorecast cv`` and ``scorecast train`` through the CLI on a tiny table of vectors (the ``lookup``
encoder passes them through the cache)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from ddp_script import TARGET, known_function
from scorecast.cli.app import app
from scorecast.inference.bundle import load_bundle


def _table(path, n, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, 4))
    b = rng.normal(size=(n, 3))
    y = known_function(a[:, 0], b[:, 1]) + 0.1 * rng.normal(size=n)
    pd.DataFrame(
        {
            "id": [f"r{seed}_{i}" for i in range(n)],
            "vec_a": [" ".join(f"{v:.6f}" for v in row) for row in a],
            "vec_b": [" ".join(f"{v:.6f}" for v in row) for row in b],
            "score": y,
            "system": [f"sys{i % 6}" for i in range(n)],
        }
    ).to_csv(path, index=False)


def _recipe(tmp_path, with_test=False):
    _table(tmp_path / "train.csv", 150, 0)
    data = {
        "reader": "table",
        "path": "${DATA}",
        "options": {"vectors": {"a": "vec_a", "b": "vec_b"}, "targets": "score", "group": "system"},
    }
    recipe = {
        "name": "tiny",
        "data": data,
        "targets": [TARGET],
        "encoders": [
            {"name": "lookup", "input": "vector.a", "alias": "a"},
            {"name": "lookup", "input": "vector.b", "alias": "b"},
        ],
        "model": {
            "fusion": {"name": "concat", "params": {"hidden": [32], "dropout": 0.0}},
            "head": {"name": "regression"},
        },
        "losses": [{"name": "mse"}],
        "training": {
            "max_epochs": 30,
            "batch_size": 48,
            "lr": 3e-2,
            "scheduler": "onecycle",
            "early_stopping": {"monitor": "val_lcc", "patience": 8},
        },
        "cv": {"folds": 3, "kind": "group"},
        "evaluate": {"bootstrap": 10, "system_level": True},
        "variants": {"quick": {"training.max_epochs": 2}},
    }
    if with_test:
        _table(tmp_path / "test.csv", 30, 1)
        recipe["test_data"] = {**data, "path": str(tmp_path / "test.csv")}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_cv_writes_a_complete_run_folder(tmp_path):
    recipe = _recipe(tmp_path)
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        [
            "cv",
            str(recipe),
            "--var",
            f"DATA={tmp_path / 'train.csv'}",
            "--set",
            "training.max_epochs=15",
            "--cache",
            str(tmp_path / "cache"),
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "lcc" in result.output and str(out.name) in result.output.replace("\n", "")
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
    assert yaml.safe_load((out / "recipe.yaml").read_text())["training"]["max_epochs"] == 15
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["targets"]["score"]["utterance"]["lcc"]["value"] > 0.6
    assert "system" in metrics["targets"]["score"] and len(metrics["folds"]) == 3
    bundle = load_bundle(out / "bundle")
    assert len(bundle.members) == 3
    assert bundle.encoder_identities["a"]["name"] == "lookup"  # identities come from the pipeline
    assert [s.feature_name for s in bundle.encoder_specs] == ["a", "b"]


def test_train_with_variant_data_flag_and_test_data(tmp_path):
    recipe = _recipe(tmp_path, with_test=True)
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        [
            "train",
            str(recipe),
            "--data",
            str(tmp_path / "train.csv"),
            "--variant",
            "quick",
            "--cache",
            str(tmp_path / "cache"),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert yaml.safe_load((out / "recipe.yaml").read_text())["name"] == "tiny-quick"
    pred = pd.read_csv(out / "predictions.csv")
    assert len(pred) == 30 and {"id", "pred.score"} <= set(pred.columns)
    assert "test" in json.loads((out / "metrics.json").read_text())


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--set", "cv.folds=zero"], "cv.folds"),
        (["--threads", "0"], "training.threads: expected a whole number >= 1"),
    ],
)
def test_bad_recipe_exits_2_with_a_message(tmp_path, capsys, monkeypatch, flags, message):
    from scorecast.cli.app import main

    recipe = _recipe(tmp_path)
    monkeypatch.setattr("sys.argv", ["scorecast", "cv", str(recipe), *flags, "--var", "DATA=x.csv"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    assert message in " ".join(capsys.readouterr().err.split())


def test_the_cli_prints_scorecast_notes(tmp_path, capsys, monkeypatch):
    """Info notes of scorecast's loggers reach the terminal through the CLI (a library call stays silent)."""
    import logging

    from scorecast.cli.app import main, show_log_messages

    recipe = yaml.safe_load(_recipe(tmp_path).read_text())
    recipe["val_data"] = {**recipe["data"], "path": str(tmp_path / "train.csv")}
    path = tmp_path / "with-val.yaml"
    path.write_text(yaml.safe_dump(recipe))
    argv = [
        "scorecast",
        "cv",
        str(path),
        "--var",
        f"DATA={tmp_path / 'train.csv'}",
        "--variant",
        "quick",
        "-o",
        str(tmp_path / "run"),
    ]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code in (0, None)
    err = " ".join(capsys.readouterr().err.split())
    assert "val_data is not used; each fold validates on its own items" in err
    handlers = [h for h in logging.getLogger("scorecast").handlers if getattr(h, "_scorecast_cli", False)]
    assert len(handlers) == 1
    show_log_messages()  # once per process: a second call adds no second handler
    assert len([h for h in logging.getLogger("scorecast").handlers if getattr(h, "_scorecast_cli", False)]) == 1


def test_cv_select_prints_choices_baselines_and_member_weights(tmp_path):
    recipe = yaml.safe_load(_recipe(tmp_path).read_text())
    recipe["variants"]["ridge"] = {"model.head": {"name": "ridge", "params": {"alpha": 1.0}}}
    path = tmp_path / "select.yaml"
    path.write_text(yaml.safe_dump(recipe))
    out = tmp_path / "run"
    args = ["cv", str(path), "--var", f"DATA={tmp_path / 'train.csv'}", "--select", "--set", "training.max_epochs=3"]
    result = CliRunner().invoke(app, [*args, "--cache", str(tmp_path / "cache"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "select (fold 0, seed 0):" in text and "inner lcc: default" in text
    assert "baselines on the model's folds and items" in text and "ridge" in text and "mean" in text
    assert "ensemble of 3 member(s): weights (weighted)" in text
    metrics = json.loads((out / "metrics.json").read_text())
    assert [r["fold"] for r in metrics["selection"]["per_fold"]] == [0, 1, 2]
    assert set(metrics["selection"]["candidates"]) == {"default", "quick", "ridge"}
    assert (out / "baselines.csv").is_file()
