"""bench/run_listening.py: the pair-cosine anchors against a naive computation, and ``--reuse`` (rows of
an earlier run on the very same clips, marked in the report; refused for a set it does not hold)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import REPO


def _load_bench():
    bench = REPO / "bench"
    sys.path.insert(0, str(bench))
    spec = importlib.util.spec_from_file_location("run_listening", bench / "run_listening.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_listening"] = module
    spec.loader.exec_module(module)
    return module


run_listening = _load_bench()


def naive_cosine(gen: np.ndarray, ref: np.ndarray) -> np.ndarray:
    both = np.vstack([gen, ref])
    out = []
    for g, r in zip(gen, ref):
        a = [(g[j] - both[:, j].mean()) / (both[:, j].std() + 1e-8) for j in range(gen.shape[1])]
        b = [(r[j] - both[:, j].mean()) / (both[:, j].std() + 1e-8) for j in range(gen.shape[1])]
        out.append(sum(x * y for x, y in zip(a, b)) / (np.sqrt(sum(x * x for x in a)) * np.sqrt(sum(y * y for y in b))))
    return np.array(out)


def test_pair_cosine_matches_a_naive_loop():
    rng = np.random.default_rng(0)
    gen, ref = rng.normal(3, 2, (12, 5)), rng.normal(1, 0.5, (12, 5))
    np.testing.assert_allclose(run_listening.pair_cosine(gen, ref), naive_cosine(gen, ref), atol=1e-9)


def test_anchors_score_each_pair_feature_and_the_mos_column():
    rng = np.random.default_rng(1)
    pooled = {
        "egemaps_gen": rng.normal(size=(10, 4)),
        "egemaps_ref": rng.normal(size=(10, 4)),
        "whisper_gen": rng.normal(size=(10, 6)),
        "whisper_ref": rng.normal(size=(10, 6)),
        "whisper_other": rng.normal(size=(10, 6)),  # no partner: no anchor
        "speaker_gen": np.abs(rng.normal(size=(10, 8))),
        "speaker_ref": np.abs(rng.normal(size=(10, 8))),
        "distillmos_gen": rng.normal(size=(10, 3)),
    }
    out = run_listening.anchors(SimpleNamespace(pooled=pooled))
    assert set(out) == {
        "cosine of the two clips' eGeMAPS (zero-shot)",
        "cosine of the two clips' Whisper-base encoder states (zero-shot)",
        "cosine of the two clips' speaker embeddings (Resemblyzer GE2E: SECS) (zero-shot)",
        "DistillMOS MOS of distillmos_gen (zero-shot)",
    }
    secs = out["cosine of the two clips' speaker embeddings (Resemblyzer GE2E: SECS) (zero-shot)"]
    g, r = pooled["speaker_gen"], pooled["speaker_ref"]  # the raw cosine, not z-scored
    np.testing.assert_allclose(secs, [a @ b / np.sqrt((a @ a) * (b @ b)) for a, b in zip(g, r)], atol=1e-9)
    np.testing.assert_allclose(
        out["cosine of the two clips' Whisper-base encoder states (zero-shot)"],
        naive_cosine(pooled["whisper_gen"], pooled["whisper_ref"]),
        atol=1e-9,
    )
    np.testing.assert_array_equal(out["DistillMOS MOS of distillmos_gen (zero-shot)"], pooled["distillmos_gen"][:, 0])


def _row(name, kind, variant=None, **extra):
    m = {"srcc": {"value": 0.5, "low": 0.4, "high": 0.6}, "lcc": {"value": 0.5, "low": 0.4, "high": 0.6}}
    return {"name": name, "kind": kind, "variant": variant, "metrics": {"clip": m, "system": m}, **extra}


def test_reuse_takes_named_variants_and_the_nested_choice_only(tmp_path):
    earlier = {
        "meta": {"command": "python bench/run_listening.py --sets yourtts-similarity"},
        "sets": {
            "yourtts-similarity": {
                "ids_sha": "abc",
                "n_items": 10,
                "rows": [
                    _row("anchor", "anchor"),
                    _row("recipe", "scorecast", "default"),
                    _row("recipe [a]", "scorecast", "a"),
                    _row("recipe [nested]", "scorecast", "select", choices=[{"fold": 0, "variant": "a"}]),
                    _row("recipe [b]", "scorecast", "b", reused_from="an even earlier run"),
                ],
                "default_choice": {"variant": "a", "inner_srcc": 0.61, "candidates": ["a", "b"]},
            }
        },
    }
    path = tmp_path / "earlier.json"
    path.write_text(json.dumps(earlier))
    got = run_listening.reused_rows(path, "yourtts-similarity")
    # never the default nor anchors
    assert [r["name"] for r in got["rows"]] == ["recipe [a]", "recipe [nested]", "recipe [b]"]
    assert got["variants"] == ["a", "b"] and got["ids_sha"] == "abc"
    # each row keeps the run that measured it
    assert [r["reused_from"] for r in got["rows"]] == [earlier["meta"]["command"]] * 2 + ["an even earlier run"]
    assert got["default_choice"] == {
        "variant": "a",
        "inner_srcc": 0.61,
        "candidates": ["a", "b"],
        "reused_from": earlier["meta"]["command"],
    }
    with pytest.raises(SystemExit, match="no set 'codec-mushra'"):
        run_listening.reused_rows(path, "codec-mushra")

    res = {
        "title": "T",
        "level": "system",
        "n_items": 10,
        "n_systems": 2,
        "cv": "4-fold group by speaker",
        "recipe": "recipes/x.yaml",
        "rows": [_row("recipe", "scorecast", "default"), *got["rows"]],
        "default_choice": got["default_choice"],
    }
    meta = {"command": "python bench/run_listening.py", "date": "d", "git": {"commit": "0" * 12, "dirty": False}}
    text = run_listening.render({"meta": {**meta, "bootstrap": 10}, "sets": {"s": res}})
    assert "| recipe [a] (†) |" in text and "| recipe |" in text
    assert "(†) measured on the very same clips by the earlier run" in text
    assert (
        "Choice on all 10 items (the same inner CV; the recipe's default): a (inner clip SRCC 0.610; among a, b) (†)."
        in text
    )


def test_a_stimulus_and_its_reference_make_a_pair_anchor_too():
    rng = np.random.default_rng(2)
    pooled = {"whisper": rng.normal(size=(8, 5)), "whisper_ref": rng.normal(size=(8, 5))}
    out = run_listening.anchors(SimpleNamespace(pooled=pooled))
    np.testing.assert_allclose(
        out["cosine of the two clips' Whisper-base encoder states (zero-shot)"],
        naive_cosine(pooled["whisper"], pooled["whisper_ref"]),
        atol=1e-9,
    )


def test_an_undefined_anchor_correlation_counts_as_zero_strength():
    assert run_listening.strength({"srcc": {"value": None}}) == 0.0
    assert run_listening.strength({"srcc": {"value": float("nan")}}) == 0.0
    assert run_listening.strength({}) == 0.0
    assert run_listening.strength({"srcc": {"value": -0.4}}) == pytest.approx(0.4)


def test_fullref_anchors_are_the_raw_pesq_stoi_and_estoi_columns():
    from scorecast.config import EncoderSpec
    from scorecast.encoders.fullref import FullReferenceEncoder

    spec = EncoderSpec(
        name="fullref", input="audio", alias="fullref", params={"reference": "reference", "sample_rate": 24000}
    )
    names = FullReferenceEncoder(reference="reference", sample_rate=24000).feature_names()
    pooled = {"fullref": np.random.default_rng(2).normal(size=(7, len(names)))}
    out = run_listening.anchors(SimpleNamespace(pooled=pooled), [spec])
    assert set(out) == {
        "wide-band PESQ of fullref (zero-shot)",
        "STOI of fullref (zero-shot)",
        "ESTOI of fullref (zero-shot)",
    }
    np.testing.assert_array_equal(out["ESTOI of fullref (zero-shot)"], pooled["fullref"][:, names.index("estoi")])
    np.testing.assert_array_equal(
        out["wide-band PESQ of fullref (zero-shot)"], pooled["fullref"][:, names.index("pesq_wb")]
    )


def test_selection_criteria_pick_by_clip_or_by_the_mean_of_clip_and_system():
    scores = {"a": (0.50, 0.70), "b": (0.45, 0.95), "c": (float("nan"), 1.0)}
    assert run_listening.pick(scores, "clip") == ("a", 0.50)
    assert run_listening.pick(scores, "clip+system") == ("b", pytest.approx(0.70))
    assert run_listening.pick({"x": (0.4, 0.4), "y": (0.4, 0.4)}, "clip")[0] == "x"  # ties: the first listed


def test_scores_without_the_hidden_reference_leave_its_clips_out():
    """The codec check: the default and every anchor scored on the clips of the other conditions only,
    against scipy on the same subset, and the lines of the report name the condition and the counts."""
    from scipy.stats import spearmanr

    rng = np.random.default_rng(3)
    groups = [c for c in ("Reference", "a", "b", "c") for _ in range(10)]
    truth = rng.normal(size=40) + np.repeat([5.0, 0.0, 1.0, 2.0], 10)
    pred = truth + rng.normal(scale=0.5, size=40)
    anchor = truth + rng.normal(scale=2.0, size=40)
    anchor[:10] = 100.0  # the reference clip recognised at once: only there is the anchor perfect
    out = run_listening.without_hidden_reference("Reference", pred, {"z": anchor}, truth, groups, 50)
    keep = slice(10, None)
    assert out["n_items"] == 30 and out["n_systems"] == 3
    assert out["default"]["clip"]["srcc"]["value"] == pytest.approx(spearmanr(pred[keep], truth[keep])[0])
    assert out["anchors"]["z"]["metrics"]["clip"]["srcc"]["value"] == pytest.approx(
        spearmanr(anchor[keep], truth[keep])[0]
    )
    diff = out["anchors"]["z"]["default_vs"]["clip"]["value"]
    assert diff == pytest.approx(spearmanr(pred[keep], truth[keep])[0] - spearmanr(anchor[keep], truth[keep])[0])
    text = "\n".join(run_listening.without_reference_lines(out, "condition"))
    assert "condition 'Reference'" in text and "30 clips, 3 conditions" in text
    with pytest.raises(SystemExit, match="expected some but not all"):
        run_listening.without_hidden_reference("nope", pred, {"z": anchor}, truth, groups, 50)


def test_the_default_choice_is_the_inner_cv_pick_on_all_items(monkeypatch):
    """--choose-default and --select-all run one inner CV per candidate on all items (inner_scores); the
    default is the best clip SRCC (the first listed on ties), whatever the system level says."""
    fake = {"a": (0.50, 0.90), "b": (0.61, 0.10), "c": (0.61, 0.99)}
    seen = []

    def inner(spec, data_dir, v, items, features, overrides, work, threads):
        seen.append(v)
        return (*fake[v], None)

    monkeypatch.setattr(run_listening, "inner_scores", inner)
    got = run_listening.choice_on_all_items({}, None, ["a", "b", "c"], None, None, {}, Path("/tmp"), 1, lambda m: None)
    assert seen == ["a", "b", "c"]
    assert got == {
        "variant": "b",
        "inner_srcc": 0.61,
        "inner_srcc_by_variant": {"a": 0.50, "b": 0.61, "c": 0.61},
        "candidates": ["a", "b", "c"],
    }
