"""Hardening matrix (issue 13): each case ends in a clear error naming what is wrong, or in a correct and
flagged result; nothing crashes and nothing is overwritten. Grouped as the issue groups them: data loss,
silent wrong results, paths, crashes and vague errors, the server (more server cases live in
test_serve_app.py and test_serve_process.py)."""

from __future__ import annotations

import json
import math
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml
from typer.testing import CliRunner

from scorecast.cli.app import app
from scorecast.config import load_recipe
from scorecast.data.items import Item, ItemSet
from scorecast.errors import BundleError, ConfigError, DataError
from scorecast.inference.bundle import load_bundle, sha256_file
from test_predict_support import AUDIO_RECIPE, audio_bundle, text_bundle, tone, wav_bytes

runner = CliRunner()


# ---------------------------------------------------------------- a tiny vector table (fast ridge runs)


def _vector_run(tmp_path: Path, **recipe_over) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = np.clip(3 + x[:, 0], 1, 5)
    pd.DataFrame({"id": [f"r{i}" for i in range(40)], "v": [" ".join(map(str, r)) for r in x], "score": y}).to_csv(
        tmp_path / "t.csv", index=False
    )
    recipe = {
        "name": "vec",
        "data": {"reader": "table", "path": str(tmp_path / "t.csv"), "options": {"vectors": "v", "targets": "score"}},
        "targets": [{"name": "score", "low": 1, "high": 5}],
        "encoders": [{"name": "lookup", "input": "vector.v", "alias": "v"}],
        "model": {"head": {"name": "ridge"}},
        "training": {"early_stopping": None, "val_fraction": 0.0},
        "cv": {"folds": 5},
        "evaluate": {"bootstrap": 0},
    }
    for key, value in recipe_over.items():
        recipe[key] = value
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path, tmp_path / "t.csv"


def _cv(recipe: Path, out: Path, *extra: str):
    return runner.invoke(app, ["cv", str(recipe), "--cache", str(recipe.parent / "cache"), "-o", str(out), *extra])


# ---------------------------------------------------------------- data loss


def test_cv_refuses_an_existing_run_folder_and_overwrite_replaces_it_whole(tmp_path):
    recipe, _ = _vector_run(tmp_path)
    out = tmp_path / "runs" / "x"
    assert _cv(recipe, out).exit_code == 0
    stale = out / "logs" / "seed0-rep0-fold4"
    stale.mkdir(parents=True)
    before = (out / "metrics.json").read_text()
    again = _cv(recipe, out, "--set", "cv.folds=3")
    assert again.exit_code != 0 and "already holds a run" in str(again.exception)
    assert (out / "metrics.json").read_text() == before and stale.is_dir()  # untouched
    assert _cv(recipe, out, "--set", "cv.folds=3", "--overwrite").exit_code == 0
    assert not stale.exists() and len(json.loads((out / "metrics.json").read_text())["folds"]) == 3
    assert sorted(p.name for p in out.parent.iterdir()) == ["x"]  # no staging or old folder left


def test_the_python_api_refuses_an_existing_run_folder_too(tmp_path):
    import scorecast

    recipe, _ = _vector_run(tmp_path)
    out = tmp_path / "api-run"
    first = scorecast.Scorer(recipe, cache=False).fit(out_dir=out, cv=True)
    assert first.run_.out_dir == out and (out / "bundle" / "scorecast.json").is_file()
    with pytest.raises(ConfigError, match="already holds a run"):
        scorecast.Scorer(recipe, cache=False).fit(out_dir=out, cv=True)
    again = scorecast.Scorer(recipe, cache=False).fit(out_dir=out, overwrite=True)
    assert again.bundle_.path == out / "bundle" and json.loads((out / "metrics.json").read_text())["holdout"] is True


def test_adapt_output_is_refused_or_emptied_never_mixed(tmp_path):
    from scorecast.runs.outdir import emptied_output_dir

    out = tmp_path / "adapted"
    (out / "encoders").mkdir(parents=True)
    with pytest.raises(ConfigError, match="already holds a run .* or pass --overwrite"):
        emptied_output_dir(out, overwrite=False)
    assert (out / "encoders").is_dir()
    emptied_output_dir(out, overwrite=True)
    assert not out.exists()


def test_a_failed_run_leaves_the_old_folder_as_it_was(tmp_path):
    from scorecast.runs.outdir import staged_output_dir

    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text("old")
    with pytest.raises(RuntimeError, match="boom"), staged_output_dir(out, overwrite=True) as staging:
        (staging / "metrics.json").write_text("new")
        raise RuntimeError("boom")
    assert (out / "metrics.json").read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    with pytest.raises(ConfigError, match="expected a folder for the run, got an existing file"):
        staged_output_dir(out / "metrics.json").__enter__()


def test_only_rank_zero_of_a_distributed_run_touches_the_run_folder(tmp_path, monkeypatch):
    from scorecast.runs.outdir import launched_as_rank_zero, staged_output_dir

    for name in ("RANK", "NODE_RANK", "LOCAL_RANK", "GROUP_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert launched_as_rank_zero()
    monkeypatch.setenv("NODE_RANK", "1")  # a second node started by hand
    assert not launched_as_rank_zero()
    with staged_output_dir(tmp_path / "run") as staging:
        assert not staging.exists()
    assert not (tmp_path / "run").exists()
    monkeypatch.setenv("NODE_RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    with staged_output_dir(tmp_path / "run") as staging:
        (staging / "metrics.json").write_text("{}")
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_predict_refuses_to_write_over_its_input_table(tmp_path_factory, tmp_path):
    from scorecast.inference.tables import run_predict

    bundle = text_bundle(tmp_path_factory)
    table = tmp_path / "t.csv"
    table.write_text("id,caption\na,the cat\n")
    for out in (table, tmp_path / "." / "t.csv"):
        with pytest.raises(ConfigError, match="got the input table itself"):
            run_predict(bundle, table, out, no_cache=True)
    with pytest.raises(ConfigError, match="outside the scorer bundle"):
        run_predict(bundle, table, bundle / "p.csv", no_cache=True)
    assert table.read_text() == "id,caption\na,the cat\n"


def test_evaluate_refuses_to_write_its_result_over_an_input(tmp_path):
    pred, truth = tmp_path / "pred.csv", tmp_path / "truth.csv"
    pred.write_text("id,score\na,1\nb,2\nc,3\n")
    truth.write_text("id,score\na,1\nb,3\nc,2\n")
    for out in (pred, truth):
        result = runner.invoke(app, ["evaluate", str(pred), str(truth), "-o", str(out)])
        assert isinstance(result.exception, ConfigError) and "(it would be replaced)" in str(result.exception)
    assert pred.read_text().startswith("id,score\na,1") and truth.read_text().startswith("id,score\na,1")


# ---------------------------------------------------------------- silent wrong results


def test_targets_outside_the_range_name_file_row_and_column(tmp_path):
    from scorecast.runs.prepare import check_target_ranges

    recipe_path, table = _vector_run(tmp_path)
    frame = pd.read_csv(table)
    frame.loc[3, "score"] = 9.0
    frame.loc[7, "score"] = -3.0
    frame.to_csv(table, index=False)
    recipe = load_recipe(recipe_path)
    from scorecast.data.readers import read_items

    items = read_items(recipe.data)
    with pytest.raises(
        DataError, match=r"t\.csv, row 5, field 'score': item 'r3': .* expected a score in \[1, 5\].*got 9"
    ):
        check_target_ranges(recipe, items, recipe.data)
    skipping = recipe.model_copy(update={"data": recipe.data.model_copy(update={"on_error": "skip"})})
    with pytest.warns(UserWarning, match="left out 2 item"):
        kept = check_target_ranges(skipping, items, skipping.data)
    assert len(kept) == 38 and "r7" in kept.skipped[-1]
    allowed = load_recipe(recipe_path, overrides=["targets.0.allow_out_of_range=true"])
    assert len(check_target_ranges(allowed, items, allowed.data)) == 40


def test_undefined_correlations_are_null_with_a_reason():
    from scorecast.metrics.functional import compute_metrics

    out = compute_metrics(np.array([1.0, 2.0, 3.0]), np.array([3.0, 3.0, 3.0]), bootstrap=20)["utterance"]
    for name in ("lcc", "srcc", "ktau"):
        assert out[name]["value"] is None and "truth" in out[name]["reason"] and out[name]["low"] is None
    assert out["rmse"]["value"] == pytest.approx(math.sqrt(5 / 3))


def test_a_truncated_wav_warns_with_its_file_name(tmp_path):
    from scorecast.data.audio import TruncatedAudioWarning, load_audio

    path = tmp_path / "cut.wav"
    sf.write(path, tone(1.0, 200), 16000)
    path.write_bytes(path.read_bytes()[:12000])
    with pytest.warns(TruncatedAudioWarning, match=r"cut\.wav: truncated audio: the header declares 16000 samples"):
        assert len(load_audio(path)) < 16000


def _rewrite(bundle: Path, edit) -> None:
    """Apply ``edit(manifest, tensors_by_file)`` and keep the checksums right, so a later check is reached."""
    from safetensors.numpy import load_file, save_file

    manifest = json.loads((bundle / "scorecast.json").read_text())
    files = {rel: load_file(str(bundle / rel)) for rel in manifest["files"] if rel.endswith(".safetensors")}
    manifest = edit(manifest, files)
    if isinstance(manifest, dict):
        for rel, tensors in files.items():
            save_file(tensors, str(bundle / rel))
            manifest["files"][rel] = sha256_file(bundle / rel)
    (bundle / "scorecast.json").write_text(json.dumps(manifest))


def _first(files):
    return files[sorted(files)[0]]


def _set_weight(value):
    def edit(m, f):
        m["members"][0]["weight"] = value
        return m

    return edit


def _nan_tensor(m, f):
    t = _first(f)
    name = next(k for k in t if k.startswith("est."))
    t[name] = np.full_like(t[name], np.nan)
    return m


def _zero_std(m, f):
    t = _first(f)
    name = next(k for k in t if k.startswith("norm.std."))
    t[name] = np.zeros_like(t[name])
    return m


def _extra_tensor(m, f):
    _first(f)["sneaky.weight"] = np.ones(3, np.float32)
    return m


def _member_path(path):
    def edit(m, f):
        m["members"][0]["file"] = path
        m["files"][path] = "0" * 64
        return m

    return edit


def _other_target(m, f):
    m["members"][0]["state"]["targets"][0]["name"] = "loudness"
    return m


def _unknown_key(m, f):
    m["trainer_notes"] = "hi"
    return m


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda m, f: [m], "expected a JSON object .* got a JSON list"),
        (_set_weight("heavy"), r"members\[0\]\.weight: expected a number >= 0, got 'heavy'"),
        (_set_weight(-1.0), r"members\[0\]\.weight: expected a finite number >= 0, got -1"),
        (_set_weight(float("nan")), r"members\[0\]\.weight: expected a finite number >= 0, got nan"),
        (_nan_tensor, r"member 0 \(members/00\.safetensors\): tensor 'est\.0\..*' holds \d+ NaN"),
        (_zero_std, r"member 0 .*tensor 'norm\.std\.egemaps:audio' holds \d+ value\(s\) <= 0"),
        (_extra_tensor, r"member 0 .*unknown tensor\(s\) sneaky\.weight"),
        (_member_path("../../outside/x.safetensors"), "climbs out with '..'"),
        (_member_path("/tmp/x.safetensors"), "absolute path"),
        (_unknown_key, r"unknown key\(s\) trainer_notes"),
        (_other_target, r"members\[0\] predicts targets \['loudness'\]; the recipe's are \['score'\]"),
    ],
)
def test_a_broken_bundle_is_refused_at_load_naming_member_and_field(tmp_path_factory, tmp_path, edit, match):
    bundle = tmp_path / "bundle"
    shutil.copytree(audio_bundle(tmp_path_factory), bundle)
    _rewrite(bundle, edit)
    with pytest.raises(BundleError, match=match):
        load_bundle(bundle)


def test_a_relative_cache_dir_in_a_bundle_is_not_resolved_against_the_current_folder(tmp_path_factory, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(audio_bundle(tmp_path_factory), bundle)

    def edit(m, f):
        m["recipe"]["cache_dir"] = "demo-run/cache"
        return m

    _rewrite(bundle, edit)
    assert load_bundle(bundle).recipe.cache_dir is None


def test_silent_and_unfamiliar_audio_is_flagged_with_a_wide_spread(tmp_path_factory, tmp_path):
    import scorecast
    from scorecast.inference.predictor import UnfamiliarInputWarning

    scorer = scorecast.load(audio_bundle(tmp_path_factory), cache=False)
    silent = np.zeros(16000, np.float32)
    clipped = np.clip(8 * tone(1.0, 300), -1, 1)
    with pytest.warns(UnfamiliarInputWarning, match="unlike what the scorer was trained on"):
        r = scorer.predict(audio=[(tone(1.0, 240, noise=0.05), 16000), (silent, 16000), (clipped, 16000)])
    assert r.flags[0] == []
    assert any(f.startswith("silence") for f in r.flags[1])
    assert any(f.startswith("clipping") for f in r.flags[2])
    assert "silence" in r.to_frame()["flags"].iloc[1]
    path = tmp_path / "silent.wav"
    sf.write(path, silent, 16000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        by_path = scorer.predict(audio=[str(path)])
    assert any(f.startswith("silence") for f in by_path.flags[0])


def test_run_and_ensemble_bundles_keep_the_training_profile(tmp_path):
    from scorecast.runs.ensemble import ensemble_runs

    recipe, _ = _vector_run(tmp_path)
    for name in ("a", "b"):
        assert _cv(recipe, tmp_path / name).exit_code == 0
    profile = load_bundle(tmp_path / "a" / "bundle").input_profile
    assert set(profile) == {"v"} and len(profile["v"]["mean"]) == 3 and profile["v"]["n"] == 40
    ensemble_runs([tmp_path / "a", tmp_path / "b"], tmp_path / "ens")
    assert load_bundle(tmp_path / "ens" / "bundle").input_profile == profile


def test_held_out_distances_are_what_a_new_item_gets_not_the_smaller_in_sample_ones():
    from scorecast.inference.novelty import _distances, _moments, held_out_distances

    rng = np.random.default_rng(1)
    x, new = rng.normal(size=(40, 30)), rng.normal(size=(400, 30))
    mean, std = _moments(x)
    in_sample, held_out = _distances(x, mean, std), held_out_distances(x)
    fresh = _distances(new, mean, std)
    assert in_sample.mean() < held_out.mean()  # in-sample distances underestimate new items'
    assert abs(held_out.mean() - fresh.mean()) < abs(in_sample.mean() - fresh.mean())


def test_features_far_from_training_are_flagged_and_the_spread_widened():
    from scorecast.config import TargetSpec
    from scorecast.data.features import FeatureSet
    from scorecast.inference.novelty import feature_flags, input_profile, widen_std

    rng = np.random.default_rng(0)
    train = FeatureSet([str(i) for i in range(200)], {"f": rng.normal(size=(200, 8))}, {})
    new = FeatureSet(["near", "far"], {"f": np.stack([rng.normal(size=8), np.full(8, 25.0)])}, {})
    flags = feature_flags(input_profile(train), new)
    assert flags[0] == [] and "unlike the training data: feature 'f'" in flags[1][0]
    std = widen_std(np.array([[0.01], [0.01]]), np.array([False, True]), [TargetSpec(low=1, high=5)])
    assert std[0, 0] == 0.01 and std[1, 0] == pytest.approx(4 / math.sqrt(12))


# ---------------------------------------------------------------- paths


@pytest.mark.parametrize("name", ["../../../tmp/x", "/tmp/x", "a/b", "..", "C:evil", "~root"])
def test_a_recipe_name_that_is_a_path_is_refused(name):
    with pytest.raises(ConfigError, match="recipe name: expected a plain name"):
        load_recipe({"name": name})


def test_an_ensemble_name_that_is_a_path_is_refused(tmp_path):
    from scorecast.runs.ensemble import ensemble_runs

    with pytest.raises(ConfigError, match=r"ensemble --name '\.\./x': .*expected a plain name"):
        ensemble_runs([tmp_path / "a", tmp_path / "b"], tmp_path / "out", name="../x")


# ---------------------------------------------------------------- crashes and vague errors


def test_a_too_short_clip_is_named_and_skip_means_skip(tmp_path):
    import scorecast

    folder = tmp_path / "clips"
    folder.mkdir()
    items = []
    for i in range(8):
        path = folder / f"c{i}.wav"
        sf.write(path, tone(0.05 if i == 3 else 1.0, 150 + 30 * i, seed=i), 16000)
        items.append(Item(id=f"c{i}", audio=str(path), targets={"score": 1.0 + i / 2}, meta={"row": i + 2}))
    recipe = {**AUDIO_RECIPE, "cv": {"folds": 2}}
    with pytest.raises(DataError, match=r"c3\.wav: item 'c3' \(table row 5\): egemaps"):
        scorecast.Scorer(recipe, cache=False).fit(ItemSet(items, target_names=["score"]), cv=True)
    skipping = {**recipe, "data": {"on_error": "skip"}}
    with pytest.warns(UserWarning, match="left out 1 item"):
        fitted = scorecast.Scorer(skipping, cache=False).fit(ItemSet(items, target_names=["score"]), cv=True)
    assert "c3" not in set(fitted.run_.oof["id"])


@pytest.mark.parametrize(
    "overrides, match",
    [
        (["model.head.params={alpah: 1.0}"], r"model\.head: .*alpah"),
        (
            ["model.head.name=regression", "model.fusion={name: concat, params: {hiddn: [8]}}"],
            r"unknown parameter\(s\) hiddn for fusion",
        ),
        (["encoders.0.params={dimm: 3}"], r"encoders\[0\]\.params: unknown parameter\(s\) dimm"),
        (["cv.folds=-2"], r"cv\.folds: Input should be greater than or equal to 2"),
        (["model.head.name=regression", "training.early_stopping={monitor: val_accuracy}"], "early_stopping.monitor"),
        (["cv.weight_metric=accuracy"], r"cv\.weight_metric: expected one of"),
        (["data.options={vectorz: v}"], r"data\.options: unknown parameter\(s\) vectorz for reader 'table'"),
    ],
)
def test_recipe_mistakes_are_found_before_any_encoding(tmp_path, overrides, match):
    recipe, _ = _vector_run(tmp_path)
    args = [x for o in overrides for x in ("--set", o)]
    result = _cv(recipe, tmp_path / "run", *args)
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError) and __import__("re").search(match, str(result.exception)), str(
        result.exception
    )
    assert not list((tmp_path / "cache").rglob("*.emb")) and not (tmp_path / "run").exists()


# ---------------------------------------------------------------- the server


@pytest.fixture(scope="module")
def audio_client(tmp_path_factory):
    from fastapi.testclient import TestClient

    from scorecast.serve.app import create_app

    app = create_app(str(audio_bundle(tmp_path_factory)), max_upload_mb=1.0, max_duration_s=5.0, batch_wait_ms=5)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_a_batch_answers_each_item_with_its_own_result_or_error(audio_client):
    files = [
        ("audio", ("good.wav", wav_bytes(tone(1.0, 220)), "audio/wav")),
        ("audio", ("bad.wav", b"not audio at all, honestly", "audio/wav")),
        ("audio", ("short.wav", wav_bytes(tone(0.05, 220)), "audio/wav")),
        ("audio", ("also-good.wav", wav_bytes(tone(1.0, 330)), "audio/wav")),
    ]
    r = audio_client.post("/score/batch", files=files)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert r.json()["errors"] == 2 and [("error" in x) for x in results] == [False, True, True, False]
    assert results[1]["index"] == 1 and results[1]["file"] == "bad.wav" and results[1]["status"] == 415
    assert "item 1 audio 'bad.wav'" in results[1]["error"]
    assert results[2]["status"] == 422 and results[2]["file"] == "short.wav" and "item 2" in results[2]["error"]
    assert "file short.wav" in results[2]["error"]  # the encoder's own error names the upload too
    assert "scores" in results[3] and results[3]["flags"] == []


def test_silence_over_http_is_flagged(audio_client):
    r = audio_client.post("/score", files={"audio": ("quiet.wav", wav_bytes(np.zeros(16000, np.float32)), "audio/wav")})
    assert r.status_code == 200 and any(f.startswith("silence") for f in r.json()["flags"]), r.text


def test_a_truncated_upload_is_scored_and_flagged(audio_client):
    data = wav_bytes(tone(1.0, 220), fmt="WAV")
    r = audio_client.post("/score", files={"audio": ("cut.wav", data[: len(data) // 2], "audio/wav")})
    assert r.status_code == 200 and any(f.startswith("truncated") for f in r.json()["flags"]), r.text


def test_docs_are_served_from_local_assets(audio_client):
    page = audio_client.get("/docs")
    assert page.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in page.text and "cdn" not in page.text
    js = audio_client.get("/docs-assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000


def test_the_app_reserves_bodies_and_decoded_audio_in_its_budget(tmp_path_factory):
    from fastapi.testclient import TestClient

    from scorecast.serve.app import create_app

    app = create_app(str(audio_bundle(tmp_path_factory)), max_inflight_mb=0.2, max_upload_mb=1.0)
    with TestClient(app, raise_server_exceptions=False) as client:
        big = client.post("/score", files={"audio": ("long.wav", wav_bytes(tone(3.0, 220)), "audio/wav")})
        assert big.status_code == 413 and "for all requests together" in big.json()["detail"], big.text
        ok = client.post("/score", files={"audio": ("short.wav", wav_bytes(tone(0.5, 220)), "audio/wav")})
        assert ok.status_code == 200, ok.text
        memory = client.get("/model").json()["memory"]
    assert memory["used_mb"] == 0 and 0 < memory["peak_mb"] <= 0.2 and memory["refused_too_large"] == 1


def test_the_memory_budget_queues_then_answers_503_and_refuses_what_never_fits():
    import asyncio

    from fastapi import HTTPException

    from scorecast.serve.limits import MemoryBudget

    async def scenario():
        budget = MemoryBudget(1000, wait_s=0.05)
        async with budget.holding() as first:
            await first.add(800, "the first body")
            with pytest.raises(HTTPException) as busy:
                async with budget.holding() as second:
                    await second.add(300, "the second body")
            assert busy.value.status_code == 503 and busy.value.headers["Retry-After"] == "1"
            with pytest.raises(HTTPException) as big:
                async with budget.holding() as third:
                    await third.add(5000, "a huge clip")
            assert big.value.status_code == 413 and "more than the" in big.value.detail

        async def later():
            async with budget.holding() as hold:
                await hold.add(900, "a body")
                await asyncio.sleep(0.05)

        budget.wait_s = 1.0
        await asyncio.gather(later(), later())  # the second waits for the first, then fits
        return budget.stats

    stats = asyncio.run(scenario())
    assert stats.used == 0 and stats.peak == 900 and stats.refused_busy == 1 and stats.refused_too_large == 1
