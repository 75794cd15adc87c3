"""The demo corpus, and ``scorecast demo --quick`` end to end through the CLI."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from typer.testing import CliRunner

from scorecast.cli.app import app
from scorecast.config import DataConfig
from scorecast.data.readers import read_items
from scorecast.demo.impairments import impair, quality_score
from scorecast.demo.job import TABLE_OPTIONS, make_clip, make_corpus
from scorecast.demo.synth import SAMPLE_RATE, make_voices, synth_speech
from scorecast.errors import ConfigError


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("corpus"), n=16, seed=3)


def test_corpus_table_reads_with_the_table_reader(corpus):
    frame = pd.read_csv(corpus)
    assert list(frame.columns) == [
        "id",
        "audio",
        "score",
        "stoi",
        "condition",
        "level",
        "params",
        "voice",
        "duration_s",
    ]
    assert frame["condition"].value_counts().to_dict() == {
        c: 2 for c in ["clean", "noise", "lowpass", "clip", "dropout", "reverb", "quantise", "mixed"]
    }
    assert frame["score"].between(1, 5).all() and (frame.loc[frame.condition == "clean", "score"] == 5).all()
    items = read_items(DataConfig(reader="table", path=str(corpus), options=dict(TABLE_OPTIONS)))
    assert len(items) == 16 and items.target_names == ["score"]
    first = items[0]
    assert first.group == frame["condition"][0] and first.targets["score"] == pytest.approx(frame["score"][0])
    wav, sr = sf.read(first.audio)
    assert sr == SAMPLE_RATE and 2.0 <= len(wav) / sr <= 4.0


def test_corpus_labels_are_stoi_of_the_written_audio(corpus):
    """Rebuild clip 5 from its seed: the clean original against the WAV on disk gives the table's label."""
    frame = pd.read_csv(corpus)
    row = frame.iloc[5]
    voice = make_voices(8, 3)[5 % 8]
    rng = np.random.default_rng([3, 5])
    clean = synth_speech(voice, float(rng.uniform(2.0, 4.0)), rng)
    wav, _ = sf.read(corpus.parent / row["audio"], dtype="float32")
    score, stoi = quality_score(clean, wav)
    assert stoi == pytest.approx(row["stoi"], abs=1e-4) and score == pytest.approx(row["score"], abs=1e-3)
    assert json.loads(row["params"]) == pytest.approx(impair(clean, row["condition"], None, rng)[1], rel=1e-3)


def test_corpus_is_deterministic(corpus, tmp_path):
    again = make_corpus(tmp_path, n=16, seed=3)
    pd.testing.assert_frame_equal(pd.read_csv(corpus), pd.read_csv(again))
    a, _ = sf.read(corpus.parent / "audio" / "clip0007.wav")
    b, _ = sf.read(tmp_path / "audio" / "clip0007.wav")
    np.testing.assert_array_equal(a, b)


def test_make_clip_is_labelled(tmp_path):
    voice = make_voices(1, 0)[0]
    clean = make_clip(voice, "clean", seed=1, duration_s=2.0)
    bad = make_clip(voice, "noise", {"snr_db": -5.0}, seed=1, duration_s=2.0)
    assert clean.score == pytest.approx(5.0) and bad.score < 3.5
    assert bad.describe() == "noise (snr_db=-5)" and bad.level == -5.0


def test_make_corpus_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown condition\(s\) \['hiss'\]; expected some of: clean, noise"):
        make_corpus(tmp_path, n=10, conditions=["noise", "hiss"])
    with pytest.raises(ConfigError, match="expected n >= 8 .one clip per condition., got 4"):
        make_corpus(tmp_path, n=4)


def test_demo_rejects_too_few_clips(tmp_path):
    result = CliRunner().invoke(app, ["demo", "--quick", "--n", "5", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "expected at least 20 clips" in str(result.exception)


@pytest.mark.slow
def test_demo_quick_end_to_end(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--quick", "--n", "32", "--out", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    text = result.output
    # the metrics with their intervals, at clip and condition level
    for level in ("clip", "condition"):
        for name in ("LCC", "SRCC", "RMSE"):
            assert re.search(
                rf"{level}\s*│\s*{name}\s*│\s*-?\d+\.\d{{3}}\s*│\s*\[-?\d+\.\d{{3}}, -?\d+\.\d{{3}}\]", text
            ), (level, name, text)
    # the fresh clips, scored through the bundle
    assert "noise (snr_db=5)" in text and "lowpass (cutoff_hz=700)" in text
    assert "report:" in text and str(out / "run" / "report" / "index.html") in text.replace("\n", "")
    # the files it says it wrote
    assert (out / "corpus" / "corpus.csv").is_file() and len(list((out / "corpus" / "audio").glob("*.wav"))) == 32
    metrics = json.loads((out / "run" / "metrics.json").read_text())
    lcc = metrics["targets"]["score"]["utterance"]["lcc"]["value"]
    assert f"{lcc:.3f}" in text
    assert lcc > 0.3  # even the quick run learns something from eGeMAPS
    assert (out / "run" / "bundle" / "scorecast.json").is_file()
    pngs = {p.name for p in (out / "run" / "report").glob("*.png")}
    assert {
        "scatter_score.png",
        "residuals_score.png",
        "folds_score.png",
        "learning_curves.png",
        "calibration_score.png",
        "system_score.png",
    } <= pngs
