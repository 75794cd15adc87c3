"""What a new user does first, README in hand: a recipe with ``${DATA}`` from Python, predict without
the training table's extra columns, audio files / folders / ``--text`` instead of a table, file
names as ids, zero-shot ``scorecast score``, ``evaluate`` that finds the shared id column."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

import scorecast
from scorecast.errors import ConfigError, DataError
from test_compare import run as _cli  # the real entry point: errors -> message + exit 2
from test_predict_support import TEXT_RECIPE, audio_bundle, text_items, tone


@pytest.fixture(scope="module")
def text_setup(tmp_path_factory):
    """A README-style recipe (data.path: ${DATA}, group and meta columns) fitted from Python on a table."""
    root = tmp_path_factory.mktemp("habits")
    items = text_items(40)
    pd.DataFrame(
        {
            "id": items.ids,
            "caption": [it.texts["caption"] for it in items],
            "MI": [it.targets["MI"] for it in items],
            "TA": [it.targets["TA"] for it in items],
            "system": [f"s{i % 4}" for i in range(len(items))],
            "level": [i % 3 for i in range(len(items))],
        }
    ).to_csv(root / "ratings.csv", index=False)
    recipe = {
        **TEXT_RECIPE,
        "data": {
            "reader": "table",
            "path": "${DATA}",
            "options": {"text": "caption", "targets": ["MI", "TA"], "group": "system", "meta": ["level"]},
        },
        "cache_dir": str(root / "cache"),
    }
    (root / "my.yaml").write_text(yaml.safe_dump(recipe))
    scorer = scorecast.Scorer(root / "my.yaml").fit(root / "ratings.csv", out_dir=root / "run")
    return root, scorer


def test_python_fit_with_a_path_fills_the_recipes_data_path(text_setup):
    root, scorer = text_setup
    assert scorer.bundle_.recipe.data.path == str(root / "ratings.csv")
    assert len(scorer.predict(text=["a cat sat"])) == 1
    with pytest.raises(ConfigError, match=r"no data.path .* expected fit\('table.csv'\)"):
        scorecast.Scorer(root / "my.yaml").fit()
    # variables= is the Python spelling of --var, and the advice says so
    same = scorecast.Scorer(root / "my.yaml", variables={"DATA": str(root / "ratings.csv")})
    assert same.recipe.data.path == str(root / "ratings.csv")
    raw = yaml.safe_load((root / "my.yaml").read_text())
    raw["cache_dir"] = "${CACHE}"
    with pytest.raises(ConfigError, match=r"variable \$\{CACHE\} is not set; pass variables=\{'CACHE': \.\.\.\}"):
        scorecast.Scorer(raw)


def test_predict_reads_a_table_with_only_the_scorers_inputs(text_setup, tmp_path):
    root, scorer = text_setup
    pd.DataFrame({"id": ["x", "y"], "caption": ["a cat sat", "the dog sang loud"]}).to_csv(
        tmp_path / "new.csv", index=False
    )
    out = tmp_path / "scores.csv"
    code, text = _cli("predict", root / "run" / "bundle", tmp_path / "new.csv", "-o", out, "--no-cache")
    assert code == 0, text
    frame = pd.read_csv(out)
    assert list(frame["id"]) == ["x", "y"]
    np.testing.assert_allclose(frame["MI"], scorer.predict(text=["a cat sat", "the dog sang loud"]).scores["MI"])


def test_predict_texts_without_a_table(text_setup, tmp_path):
    root, scorer = text_setup
    out = tmp_path / "t.jsonl"
    code, text = _cli("predict", root / "run" / "bundle", "--text", "a cat sat", "--text", "red bird", "-o", out)
    assert code == 0, text
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["text-1", "text-2"]
    np.testing.assert_allclose([r["TA"] for r in rows], scorer.predict(text=["a cat sat", "red bird"]).scores["TA"])
    code, text = _cli("predict", root / "run" / "bundle", tmp_path / "nope.wav", "-o", out)
    assert code == 2 and "nope.wav" in text and "not found" in text


def _clips(folder):
    (folder / "sub").mkdir(parents=True)
    paths = [folder / "a.wav", folder / "sub" / "b.flac", folder / "sub" / "c.wav"]
    for i, p in enumerate(paths):
        sf.write(p, tone(1.0 + 0.2 * i, 180 + 60 * i, noise=0.02 + 0.05 * i, seed=i), 16000)
    (folder / "notes.txt").write_text("not audio")
    return paths


def test_predict_audio_files_and_folders_ids_are_paths(tmp_path_factory, tmp_path):
    bundle = audio_bundle(tmp_path_factory)
    a, b, c = _clips(tmp_path / "clips")
    out = tmp_path / "p.csv"
    code, text = _cli("predict", bundle, a, tmp_path / "clips" / "sub", "-o", out, "--no-cache")
    assert code == 0, text
    frame = pd.read_csv(out)
    assert list(frame["id"]) == [str(a), str(b), str(c)]
    expected = scorecast.load(bundle, cache=False).predict(audio=[a, b, c])
    np.testing.assert_allclose(frame["score"], expected.scores["score"], atol=1e-6)
    assert expected.ids == ["a.wav", "b.flac", "c.wav"]  # Python: the file names
    clash = scorecast.load(bundle, cache=False).predict(audio=[a, tmp_path / "clips" / "a.wav"])
    assert clash.ids == [str(a), str(tmp_path / "clips" / "a.wav")] or clash.ids[0] != clash.ids[1]


def test_score_zero_shot_dnsmos_matches_the_encoder(tmp_path):
    pytest.importorskip("speechmos")
    pytest.importorskip("librosa")
    from scorecast.encoders.dnsmos import DNSMOSEncoder

    paths = _clips(tmp_path / "clips")[1:2]  # one clip: DNSMOS takes ~1.5 CPU-s per 9 s segment
    out = tmp_path / "dns.jsonl"
    code, text = _cli("score", paths[0], "--model", "dnsmos", "-o", out, "--no-cache", "--no-progress")
    assert code == 0, text
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [str(p) for p in paths]
    enc = DNSMOSEncoder(features=False)
    direct = np.stack([enc.encode_batch([sf.read(p, dtype="float32")[0]])[0].pooled for p in paths])
    got = np.array([[r[k] for k in ("sig", "bak", "ovrl", "p808")] for r in rows])
    np.testing.assert_allclose(got, direct, atol=1e-5)


def test_score_with_a_bundle_and_errors(tmp_path_factory, tmp_path):
    bundle = audio_bundle(tmp_path_factory)
    paths = _clips(tmp_path / "clips")
    code, text = _cli("score", paths[0], "--model", bundle, "--no-cache", "--no-progress")
    assert code == 0, text
    expected = scorecast.load(bundle, cache=False).predict(audio=[paths[0]]).scores["score"][0]
    head, row = text.split()  # CSV on stdout (the output is whitespace-joined)
    assert head == "id,score" and row.rsplit(",", 1)[0] == str(paths[0])
    assert math.isclose(float(row.rsplit(",", 1)[1]), expected, rel_tol=1e-9)
    code, text = _cli("score", paths[0], "--model", "nisqa")
    assert code == 2 and "expected a zero-shot model (distillmos, dnsmos)" in text
    code, text = _cli("score", tmp_path / "clips" / "notes.txt")
    assert code == 2 and "expected an audio file" in text and "notes.txt" in text
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="expected audio files .* found none"):
        from scorecast.inference.sources import find_audio

        find_audio([tmp_path / "empty"])


def _evaluate_tables(tmp_path, rng):
    n = 60
    truth = rng.uniform(1, 5, n)
    ids = [f"clip{i:02d}" for i in range(n)]
    pd.DataFrame(
        {
            "clip": ids,
            "path": [f"audio/{i}.wav" for i in ids],
            "mos": truth,
            "system": [f"sys{i % 6}" for i in range(n)],
        }
    ).to_csv(tmp_path / "ratings.csv", index=False)
    good = truth + rng.normal(0, 0.3, n)
    pd.DataFrame({"id": ids, "mos": good}).to_csv(tmp_path / "scores.csv", index=False)
    pd.DataFrame({"id": ids, "mos": truth + rng.normal(0, 1.5, n)}).to_csv(tmp_path / "bad.csv", index=False)
    pd.DataFrame({"id": ids, "mos": good + rng.normal(0, 0.02, n)}).to_csv(tmp_path / "same.csv", index=False)
    return truth


def test_evaluate_finds_the_shared_id_column_and_the_recipes_system_column(tmp_path):
    _evaluate_tables(tmp_path, np.random.default_rng(0))
    out = tmp_path / "r.json"
    code, text = _cli("evaluate", tmp_path / "scores.csv", tmp_path / "ratings.csv", "-o", out)
    assert code == 0, text
    result = json.loads(out.read_text())
    assert (
        result["id_columns"] == ["id", "clip"]
        and result["n_matched"] == 60
        and "system" not in result["targets"]["mos"]
    )
    recipe = {"name": "r", "data": {"reader": "table", "path": "${DATA}", "options": {"group": "system"}}}
    recipe.update(targets=[{"name": "mos", "low": 1, "high": 5}], encoders=[{"name": "egemaps"}])
    (tmp_path / "my.yaml").write_text(yaml.safe_dump(recipe))
    code, text = _cli(
        "evaluate", tmp_path / "scores.csv", tmp_path / "ratings.csv", "--recipe", tmp_path / "my.yaml", "-o", out
    )
    assert code == 0, text
    assert json.loads(out.read_text())["targets"]["mos"]["n_systems"] == 6


def test_evaluate_baseline_p_value_and_verdict_are_one_two_sided_test(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich tables unwrapped
    _evaluate_tables(tmp_path, np.random.default_rng(1))
    out = tmp_path / "r.json"
    seen = set()
    for other in ("bad", "same", "scores"):
        code, text = _cli(
            "evaluate",
            tmp_path / "scores.csv",
            tmp_path / "ratings.csv",
            "--baseline",
            tmp_path / f"{other}.csv",
            "-o",
            out,
        )
        assert code == 0, text
        assert "model vs baseline" in text and "p (two-sided)" in text and "p(not better)" not in text
        for row in json.loads(out.read_text())["comparison"]["targets"]["mos"]["utterance"].values():
            assert set(row) >= {"model", "baseline", "p_value", "verdict"} and "system" not in row
            decided = row["verdict"] != "no clear difference"
            if row["p_value"] is not None:
                assert decided == (row["p_value"] < 0.05), row
            seen.add(row["verdict"])
    assert {"better", "no clear difference"} <= seen
