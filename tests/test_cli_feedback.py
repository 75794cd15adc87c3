"""What the CLI tells a user: a progress line per trained member (and no Lightning/transformers
noise), rows left out (counted, listed, all in skipped.csv), n beside the metrics, --version, flag
help, ``cache info`` at any width, ``cache prune --keep-recipe --var``, report colouring and labels."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from scorecast.cli.app import app
from scorecast.errors import ConfigError
from scorecast.version import __version__

runner = CliRunner()


def _scorecast(*args, env=None, timeout=300):
    cmd = [sys.executable, "-m", "scorecast.cli", *map(str, args)]
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "ORT_DISABLE_TELEMETRY": "1", "COLUMNS": "160", **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout)


@pytest.fixture(scope="module")
def cv_run(tmp_path_factory):
    """``scorecast cv`` in a subprocess on a vector table with two bad rows and data.on_error: skip."""
    root = tmp_path_factory.mktemp("feedback")
    rng = np.random.default_rng(0)
    n = 48
    a = rng.normal(size=(n, 4))
    rows = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "vec": [" ".join(f"{v:.5f}" for v in r) for r in a],
            "score": [f"{v:.4f}" for v in a[:, 0] + 0.1 * rng.normal(size=n)],
            "system": [f"s{i % 6}" for i in range(n)],
        }
    )
    rows.loc[5, "vec"] = ""  # row 7 of the file: an empty vector
    rows.loc[9, "score"] = "high"  # row 11: not a number
    rows.to_csv(root / "t.csv", index=False)
    recipe = {
        "name": "feedback",
        "data": {
            "reader": "table",
            "path": "${DATA}",
            "on_error": "skip",
            "options": {"vectors": {"a": "vec"}, "targets": "score", "group": "system"},
        },
        "targets": [{"name": "score", "low": -4, "high": 4}],
        "encoders": [{"name": "lookup", "input": "vector.a", "alias": "a"}],
        "model": {"fusion": {"name": "concat", "params": {"hidden": [8]}}, "head": {"name": "regression"}},
        "losses": [{"name": "mse"}],
        "training": {"max_epochs": 4, "batch_size": 16, "early_stopping": {"monitor": "val_lcc", "patience": 5}},
        "cv": {"folds": 3},
        "evaluate": {"bootstrap": 10, "system_level": True},
    }
    (root / "r.yaml").write_text(yaml.safe_dump(recipe))
    out = root / "run"
    # with Lightning's own bar as well (training.progress): its GPU/TPU lines must still be gone
    args = ["cv", root / "r.yaml", "--var", f"DATA={root / 't.csv'}", "--cache", root / "cache", "-o", out]
    done = _scorecast(*args, "--set", "training.progress=true")
    return root, out, done


def test_cv_shows_a_line_per_member_and_no_lightning_noise(cv_run):
    _root, _out, done = cv_run
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "seed0-rep0-fold" in line]
    assert len({line.split()[0] for line in lines}) == 3, done.stderr
    assert all("val_lcc" in line and "epoch" in line for line in lines), lines
    for noise in ("GPU available", "TPU available", "HPU available", "💡", "UserWarning"):
        assert noise not in done.stderr + done.stdout, noise


def test_cv_writes_every_skipped_row_to_skipped_csv_and_prints_n(cv_run):
    _root, out, done = cv_run
    skipped = pd.read_csv(out / "skipped.csv")
    assert list(skipped.columns) == ["file", "row", "field", "id", "reason"]
    assert list(skipped["row"]) == [7, 11] and list(skipped["field"]) == ["vec", "score"]
    assert skipped["file"].str.endswith("t.csv").all() and skipped["reason"].str.len().min() > 5
    assert "left out 2 row(s)/item(s)" in done.stderr and "skipped.csv" in done.stderr
    assert "row 7, field vec:" in done.stderr
    metrics = json.loads((out / "metrics.json").read_text())["targets"]["score"]
    assert metrics["n"] == 46 and metrics["n_systems"] == 6
    table_rows = [line for line in done.stdout.splitlines() if "│ score" in line]
    assert any("│ 46 │" in r and "utterance" in r for r in table_rows), done.stdout
    assert any("│  6 │" in r and "system" in r for r in table_rows), done.stdout


def test_no_progress_flag_and_the_python_api_stay_quiet(cv_run, tmp_path):
    root, _out, _done = cv_run
    args = ["cv", root / "r.yaml", "--var", f"DATA={root / 't.csv'}", "--cache", root / "cache"]
    quiet = runner.invoke(app, [str(a) for a in args] + ["-o", str(tmp_path / "q"), "--no-progress"])
    assert quiet.exit_code == 0, quiet.output
    assert "seed0-rep0-fold" not in quiet.output and "out-of-fold metrics" in quiet.output


def test_cli_turns_off_transformers_progress_bars():
    code = "import scorecast.cli.app; from transformers.utils import logging; print(logging.is_progress_bar_enabled())"
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_PROGRESS_BARS"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.stdout.strip() == "False", done.stderr


def test_version_and_flags_without_a_type_in_help(monkeypatch):
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"scorecast {__version__}"
    monkeypatch.setenv("COLUMNS", "200")
    for verb in (["cache", "info"], ["predict"], ["cv"]):
        text = runner.invoke(app, [*verb, "--help"]).output
        assert "--json" in text or "--progress" in text or "--no-cache" in text
        assert "<bool>" not in text, verb


def test_cache_info_at_a_narrow_width_and_prune_keep_recipe_with_var(cv_run, monkeypatch):
    root, _out, _done = cv_run
    from scorecast.cache.store import EmbeddingCache

    (ih,) = EmbeddingCache(root / "cache").identities()
    monkeypatch.setenv("COLUMNS", "40")
    info = runner.invoke(app, ["cache", "info", "--cache", str(root / "cache")])
    assert info.exit_code == 0 and ih in info.output and "lookup: 46 entries" in info.output
    args = ["cache", "prune", "--cache", str(root / "cache"), "--older-than", "0", "--dry-run"]
    assert "would remove 1 identities" in runner.invoke(app, args).output
    kept = runner.invoke(app, [*args, "--keep-recipe", str(root / "r.yaml"), "--var", f"DATA={root / 't.csv'}"])
    assert kept.exit_code == 0 and "would remove 0 identities" in kept.output, kept.output
    unset = runner.invoke(app, [*args, "--keep-recipe", str(root / "r.yaml")])
    assert isinstance(unset.exception, ConfigError) and "${DATA} is not set" in str(unset.exception)


def test_report_colours_by_fold_or_group(cv_run, tmp_path, monkeypatch):
    from scorecast.report import page, plots

    _root, out, _done = cv_run
    seen = []
    original = plots.scatter_pred_true
    monkeypatch.setattr(plots, "scatter_pred_true", lambda *a, **k: seen.append(k) or original(*a, **k))
    page.write_report(out, tmp_path / "by-fold", colour_by="fold")
    page.write_report(out, tmp_path / "by-group")
    assert sorted(set(seen[0]["groups"])) == ["fold 0", "fold 1", "fold 2"] and seen[0]["colour_title"] == "fold"
    assert sorted(set(seen[1]["groups"])) == [f"s{i}" for i in range(6)]
    with pytest.raises(ConfigError, match="colour_by: expected one of group, fold, none, got 'colour'"):
        page.write_report(out, tmp_path / "x", colour_by="colour")


def test_system_labels_do_not_overlap():
    from scorecast.report.plots import _plt, place_labels, text_extent

    plt = _plt()
    rng = np.random.default_rng(3)
    xs = 3 + 0.05 * rng.standard_normal(14)  # a tight cluster, as systems of similar quality are
    ys = 3 + 0.05 * rng.standard_normal(14)
    fig, ax = plt.subplots(figsize=(6.4, 6.0))
    ax.scatter(xs, ys)
    ax.set_xlim(1, 5)
    ax.set_ylim(1, 5)
    notes = place_labels(ax, xs, ys, [f"system-{i}" for i in range(14)])
    renderer = fig.canvas.get_renderer()
    boxes = [text_extent(n, renderer) for n in notes]  # the texts (leader lines may cross)
    overlapping = [(i, j) for i in range(len(boxes)) for j in range(i) if boxes[i].overlaps(boxes[j])]
    plt.close(fig)
    assert len(notes) == 14 and not overlapping
