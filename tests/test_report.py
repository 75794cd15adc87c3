"""``scorecast report`` on run folders fabricated in the documented format (docs/internals.md)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from matplotlib import image as mpimg
from scipy import stats
from typer.testing import CliRunner

from scorecast.cli.app import app
from scorecast.config import load_recipe, save_recipe
from scorecast.errors import DataError
from scorecast.metrics.functional import compute_metrics
from scorecast.report.page import _fold_table, load_run, write_report

SYSTEMS = ["sysA", "sysB", "sysC", "sysD"]


def fabricate_run(
    root,
    *,
    targets=("score",),
    with_std=True,
    with_groups=True,
    with_history=True,
    with_recipe=True,
    with_card=True,
    n=60,
    folds=5,
    seed=0,
):
    """A run folder as `scorecast cv` writes it: recipe.yaml, items.csv, oof.csv, metrics.json, history.csv, bundle/."""
    rng = np.random.default_rng(seed)
    run = root / "run"
    run.mkdir(parents=True)
    ids = [f"item{i:03d}" for i in range(n)]
    groups = [SYSTEMS[i % len(SYSTEMS)] for i in range(n)]
    oof = {"id": ids, "fold": np.arange(n) % folds, "group": groups if with_groups else [None] * n}
    metrics = {"targets": {}, "folds": [], "per_bin": {}}
    for k, t in enumerate(targets):
        truth = np.clip(np.round(rng.uniform(1, 5, n) * 2) / 2, 1, 5)
        std = rng.uniform(0.1, 0.8, n)
        pred = (
            truth + rng.normal(0, 1, n) * std + 0.3 * (k + 1) * (np.array([SYSTEMS.index(g) for g in groups]) - 1.5) / 3
        )
        oof[t] = truth
        oof[f"pred.{t}"] = pred
        if with_std:
            oof[f"std.{t}"] = std
        metrics["targets"][t] = compute_metrics(
            pred, truth, names=["lcc", "srcc", "rmse", "mae"], groups=groups if with_groups else None, bootstrap=50
        )
        metrics["per_bin"][t] = [
            {"bin": "[1, 3)", "n": 30, "rmse": 0.5, "bias": 0.1},
            {"bin": "[3, 5]", "n": 30, "rmse": 0.4, "bias": -0.1},
        ]
    for f in range(folds):
        metrics["folds"].append({"fold": f, "seed": 0, "repeat": 0, **{t: {"lcc": 0.8, "rmse": 0.5} for t in targets}})
    pd.DataFrame(oof).to_csv(run / "oof.csv", index=False)
    pd.DataFrame({"id": ids, "group": oof["group"], **{t: oof[t] for t in targets}}).to_csv(
        run / "items.csv", index=False
    )
    (run / "metrics.json").write_text(json.dumps(metrics))
    if with_history:
        rows = []
        for f in range(folds):
            for e in range(12 + f):
                rows.append(
                    {
                        "fold": f,
                        "seed": 0,
                        "repeat": 0,
                        "epoch": e,
                        "train_loss": 2.0 / (e + 1),
                        "val_loss": 2.2 / (e + 1) + 0.01 * e,
                        "val_lcc": 0.9 - 0.5 / (e + 1),
                        "val_rmse": 0.5 + 0.5 / (e + 1),
                    }
                )
        pd.DataFrame(rows).to_csv(run / "history.csv", index=False)
    if with_recipe:
        recipe = load_recipe(
            {
                "name": "fabricated",
                "targets": [{"name": t, "low": 1, "high": 5, "step": 0.5} for t in targets],
                "encoders": [{"name": "egemaps", "input": "audio"}],
                "training": {"early_stopping": {"monitor": "val_lcc"}},
            }
        )
        save_recipe(recipe, run / "recipe.yaml")
    if with_card:
        (run / "bundle").mkdir()
        (run / "bundle" / "MODEL_CARD.md").write_text("# fabricated scorer\n\nTrained on <b>nothing</b> real.\n")
    return run


def _sections(page: str) -> list[str]:
    return re.findall(r'<section id="([\w-]+)"', page)


@pytest.fixture(scope="module")
def cli_report(tmp_path_factory):
    """`scorecast report RUN` on a full fabricated run (written once for the tests below)."""
    run = fabricate_run(tmp_path_factory.mktemp("full"))
    result = CliRunner().invoke(app, ["report", str(run)])
    return run, result


def test_report_cli(cli_report):
    run, result = cli_report
    assert result.exit_code == 0, result.output
    assert f"report: {run / 'report' / 'index.html'} (6 figures" in result.output


def test_report_writes_every_figure_and_section(cli_report):
    run, _ = cli_report
    path = run / "report" / "index.html"
    pngs = sorted(p.name for p in path.parent.glob("*.png"))
    assert pngs == [
        "calibration_score.png",
        "folds_score.png",
        "learning_curves.png",
        "residuals_score.png",
        "scatter_score.png",
        "system_score.png",
    ]
    for name in pngs:
        img = mpimg.imread(path.parent / name)
        assert img.shape[0] > 300 and img.shape[1] > 500  # a real, legible-size picture
        assert img[..., :3].std() > 0.05  # not blank
    page = path.read_text()
    assert _sections(page) == ["metrics", "figures", "recipe", "model-card"]
    assert page.count("data:image/png;base64,") == len(pngs)  # every PNG embedded
    # the metrics table shows the run's values with their intervals
    lcc = json.loads((run / "metrics.json").read_text())["targets"]["score"]["utterance"]["lcc"]
    assert f"{lcc['value']:.4f}" in page and f"[{lcc['low']:.4f}, {lcc['high']:.4f}]" in page
    assert "name: fabricated" in page  # the resolved recipe
    assert "Trained on &lt;b&gt;nothing&lt;/b&gt; real." in page  # the model card, escaped
    assert "[1, 3)" in page  # per-bin RMSE table


def test_report_without_std_groups_history_or_recipe(tmp_path):
    run = fabricate_run(
        tmp_path,
        targets=("mi", "ta"),
        with_std=False,
        with_groups=False,
        with_history=False,
        with_recipe=False,
        with_card=False,
    )
    path = write_report(run, tmp_path / "elsewhere")
    assert path == tmp_path / "elsewhere" / "index.html"
    pngs = sorted(p.name for p in path.parent.glob("*.png"))
    assert pngs == [
        "folds_mi.png",
        "folds_ta.png",
        "residuals_mi.png",
        "residuals_ta.png",
        "scatter_mi.png",
        "scatter_ta.png",
    ]
    page = path.read_text()
    assert "No recipe.yaml in the run folder." in page and "No bundle/MODEL_CARD.md" in page
    assert not (run / "report").exists()


def test_per_fold_intervals_match_scipy(tmp_path):
    run = fabricate_run(tmp_path)
    data = load_run(run)
    folds, table = _fold_table(data.oof, "score")
    assert folds == [0, 1, 2, 3, 4]
    for f in folds:
        part = data.oof[data.oof["fold"] == f]
        r = stats.pearsonr(part["pred.score"], part["score"]).statistic
        rho = stats.spearmanr(part["pred.score"], part["score"]).statistic
        rmse = np.sqrt(np.mean((part["pred.score"] - part["score"]) ** 2))
        for name, ref in (("lcc", r), ("srcc", rho), ("rmse", rmse)):
            value, low, high = table[name][f]
            assert value == pytest.approx(ref, rel=1e-9)
            assert low < value < high


def test_report_missing_oof_is_an_error_naming_the_file(tmp_path):
    run = fabricate_run(tmp_path)
    (run / "oof.csv").unlink()
    with pytest.raises(DataError, match=r"oof.csv.*expected oof.csv \(written by `scorecast cv`"):
        write_report(run)


def test_report_oof_without_predictions_is_an_error(tmp_path):
    run = fabricate_run(tmp_path)
    pd.DataFrame({"id": ["a"], "score": [1.0]}).to_csv(run / "oof.csv", index=False)
    with pytest.raises(DataError, match=r"expected prediction columns 'pred.<target>', got columns \['id', 'score'\]"):
        write_report(run)


def test_report_not_a_folder(tmp_path):
    with pytest.raises(DataError, match="expected a run folder .* got no folder at"):
        write_report(tmp_path / "nope")


def test_report_cli_error_exits_2(tmp_path):
    import sys

    from scorecast.cli.app import main

    argv = sys.argv
    sys.argv = ["scorecast", "report", str(tmp_path / "nope")]
    try:
        with pytest.raises(SystemExit) as exc:
            main()
    finally:
        sys.argv = argv
    assert exc.value.code == 2


@pytest.mark.parametrize("val_data", [True, False])
def test_a_train_run_is_reported_as_held_out(tmp_path, val_data):
    """A `train` run (metrics.holdout) says where its held-out items came from, not "folds"."""
    run = fabricate_run(tmp_path, folds=1)
    metrics = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**metrics, "holdout": True}))
    raw = {
        "name": "fabricated",
        "targets": [{"name": "score", "low": 1, "high": 5, "step": 0.5}],
        "encoders": [{"name": "egemaps", "input": "audio"}],
        "training": {"val_fraction": 0.2},
    }
    if val_data:
        raw["val_data"] = {"reader": "table", "path": "/data/dev.csv"}
    save_recipe(load_recipe(raw), run / "recipe.yaml")
    page = write_report(run).read_text()
    where = "val_data dev.csv" if val_data else "training.val_fraction 0.2 of the data"
    assert f"60 items held out from training ({where})" in page
    assert "Held-out predictions against the truth" in page
    assert "in 1 folds" not in page and "Out-of-fold" not in page
