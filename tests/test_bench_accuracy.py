"""bench/run_accuracy.py: its machinery on tiny subsets of the real data (--quick), the files it
writes and their structure, and its paired bootstrap against a direct computation."""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest

from conftest import REPO, require_data


def _load_bench():
    bench = REPO / "bench"
    sys.path.insert(0, str(bench))
    spec = importlib.util.spec_from_file_location("run_accuracy", bench / "run_accuracy.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_accuracy"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


run_accuracy = _load_bench()
import accuracy_lib  # noqa: E402  (bench/ is on sys.path now)


def test_paired_difference_matches_direct_resampling():
    rng = np.random.default_rng(3)
    t = rng.normal(size=60)
    a = t + rng.normal(0, 0.5, 60)
    b = t + rng.normal(0, 1.5, 60)
    out = accuracy_lib.paired_difference("srcc", a, b, t, n_boot=100, seed=7)
    from scipy.stats import spearmanr

    assert out["value"] == pytest.approx(spearmanr(a, t).statistic - spearmanr(b, t).statistic, abs=1e-12)
    draws = []
    r = np.random.default_rng(7)
    for _ in range(100):
        i = r.integers(0, 60, size=60)
        draws.append(spearmanr(a[i], t[i]).statistic - spearmanr(b[i], t[i]).statistic)
    assert out["low"] == pytest.approx(np.percentile(draws, 2.5), abs=1e-9)
    assert out["high"] == pytest.approx(np.percentile(draws, 97.5), abs=1e-9)
    assert out["low"] > 0  # a is much closer to t than b


def test_unknown_set_and_missing_data_are_refused(tmp_path):
    with pytest.raises(SystemExit, match="unknown set"):
        run_accuracy.main(["--sets", "nope", "--data", str(tmp_path)])
    with pytest.raises(SystemExit, match="data folder not found"):
        run_accuracy.main(["--data", str(tmp_path / "absent")])


def test_quick_run_writes_results(shared_data, tmp_path):
    require_data(shared_data, "stsb", "sts-train.csv")
    require_data(shared_data, "shl-grammar", "train_with_transcripts.csv")
    md, js = tmp_path / "RESULTS.md", tmp_path / "accuracy.json"
    run_accuracy.main(
        [
            "--quick",
            "--sets",
            "stsb,shl-transcripts",
            "--data",
            str(shared_data),
            "--cache",
            str(tmp_path / "cache"),
            "--md",
            str(md),
            "--json",
            str(js),
            "--bootstrap",
            "20",
        ]
    )
    report = json.loads(js.read_text())
    assert report["meta"]["quick"] is True
    assert report["meta"]["machine"]["cores"] >= 1
    assert set(report["sets"]) == {"stsb", "shl-transcripts"}

    stsb = report["sets"]["stsb"]
    kinds = [r["kind"] for r in stsb["rows"]]
    assert kinds == ["anchor", "scorecast", "scorecast"]  # --quick: the recipe and its last variant
    assert [r["variant"] for r in stsb["rows"][1:]] == [None, run_accuracy.STSB_VARIANTS[-1]]
    assert stsb["n"] == {"train": 100, "dev": 40, "test": 40}
    for r in stsb["rows"]:
        for name in ("srcc", "lcc"):
            entry = r["metrics"]["test"][name]
            assert -1 <= entry["low"] <= entry["value"] <= entry["high"] <= 1, (r["name"], name, entry)
    assert sum(bool(r.get("best")) for r in stsb["rows"]) == 1
    assert stsb["best_minus_anchor"]["srcc"]["low"] <= stsb["best_minus_anchor"]["srcc"]["high"]

    shl = report["sets"]["shl-transcripts"]
    # anchor, the recipe and its last variant, the nested choice among estimator variants, the reference
    assert [r["kind"] for r in shl["rows"]] == ["anchor", "scorecast", "scorecast", "scorecast", "reference"]
    assert shl["rows"][-1]["metrics"]["cv"]["lcc"]["value"] == run_accuracy.SHL_PUBLISHED["lcc"]
    for r in shl["rows"][1:-2]:
        assert r["n"] == 40 and r["folds"] == 3 and r["metrics"]["cv"]["rmse"]["value"] > 0
    nested = shl["rows"][-2]
    assert "by inner CV (nested)" in nested["name"] and sum(nested["choices"].values()) == 3  # one per outer fold
    assert nested["default"] in nested["default_scores"] and nested["metrics"]["cv"]["rmse"]["value"] > 0

    text = md.read_text()
    assert "--quick mode" in text and "## STS-B" in text and "## SHL grammar from the given ASR transcripts" in text
    assert f"{report['meta']['machine']['cores']} CPU cores" in text
    # every interval the JSON holds for the best STS-B head appears in the markdown
    best = next(r for r in stsb["rows"] if r.get("best"))
    assert accuracy_lib.fmt_entry(best["metrics"]["test"]["srcc"]) in text


def test_results_sections_of_other_scripts_survive_a_rewrite(tmp_path):
    md = tmp_path / "RESULTS.md"
    md.write_text("# results\n\nold table\n")
    accuracy_lib.replace_section(md, "small-data", "## small\n\nfirst")
    accuracy_lib.replace_section(md, "small-data", "## small\n\nsecond")  # replaced in place, not appended twice
    text = md.read_text()
    assert text.count("## small") == 1 and "second" in text and text.startswith("# results\n\nold table\n")
    kept = accuracy_lib.kept_sections(md)
    assert "second" in kept and "old table" not in kept
    md.write_text("# results\n\nnew table\n" + kept)  # what run_accuracy.py writes
    assert "second" in md.read_text() and accuracy_lib.kept_sections(md) == kept
