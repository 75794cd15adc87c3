"""`scorecast predict`: each output format, each challenge submission, the cache, and refusals."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

import scorecast
from test_predict_support import audio_bundle, text_bundle, tone

CAPTIONS = ["a cat sat on the mat", "the dog sang", "red bird under a green tree", "loud", "blue blue blue"]
IDS = ["clip_a.wav", "clip_b.wav", "clip_c.wav", "clip_d.wav", "clip_e.wav"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return text_bundle(tmp_path_factory)


@pytest.fixture(scope="module")
def expected(bundle):
    return scorecast.load(bundle, cache=False).predict(text=CAPTIONS, ids=IDS)


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "items.csv"
    pd.DataFrame({"id": IDS, "caption": CAPTIONS}).to_csv(path, index=False)
    return path


class Outcome:
    def __init__(self, exit_code: int, output: str) -> None:
        self.exit_code, self.output = exit_code, output


def run(*args) -> Outcome:
    """Run the real entry point (``scorecast.cli.main``: scorecast errors -> message + exit 2) in-process."""
    import contextlib
    import io
    import sys

    from scorecast.cli.app import main

    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["scorecast", *map(str, args)]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = argv
    return Outcome(code, " ".join((out.getvalue() + err.getvalue()).split()))


def predict(bundle, table, out, *extra):
    result = run("predict", bundle, table, "-o", out, "--option", "text=caption", "--no-progress", *extra)
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_each_format_holds_one_row_per_item_matching_the_api(bundle, table, expected, tmp_path, suffix):
    out = tmp_path / f"pred{suffix}"
    predict(bundle, table, out, "--no-cache")
    frame = {".csv": pd.read_csv, ".jsonl": lambda p: pd.read_json(p, lines=True), ".parquet": pd.read_parquet}[suffix](
        out
    )
    assert list(frame.columns) == ["id", "MI", "TA", "std.MI", "std.TA", "flags"]
    assert frame["id"].tolist() == IDS
    np.testing.assert_allclose(frame[["MI", "TA"]].to_numpy(), expected.mean, atol=1e-5)
    np.testing.assert_allclose(frame[["std.MI", "std.TA"]].to_numpy(), expected.std, atol=1e-5)


def test_features_go_through_the_cache(bundle, table, tmp_path):
    cache = tmp_path / "cache"
    predict(bundle, table, tmp_path / "a.csv", "--cache", cache)
    entries = sorted(p.name for p in cache.rglob("*.emb"))
    assert len(entries) == len(CAPTIONS)
    predict(bundle, table, tmp_path / "b.csv", "--cache", cache)
    assert sorted(p.name for p in cache.rglob("*.emb")) == entries
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv"))


def _rows(path, header=True):
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return (rows[0], rows[1:]) if header else (None, rows)


def test_each_submission_file(bundle, table, expected, tmp_path):
    mi = expected.mean[:, 0]
    predict(bundle, table, tmp_path / "p.csv", "--no-cache", "--submission", "xacle")
    header, rows = _rows(tmp_path / "submission-xacle.csv")
    assert header == ["wav_file_name", "prediction"] and [r[0] for r in rows] == IDS
    np.testing.assert_allclose([float(r[1]) for r in rows], mi, atol=1e-5)

    predict(bundle, table, tmp_path / "p.csv", "--no-cache", "--submission", "audiomos")
    _, rows = _rows(tmp_path / "answer.txt", header=False)
    assert [r[0] for r in rows] == [i.removesuffix(".wav") for i in IDS]
    np.testing.assert_allclose([[float(r[1]), float(r[2])] for r in rows], expected.mean, atol=1e-5)

    predict(
        bundle, table, tmp_path / "p.csv", "--no-cache", "--submission", "shl", "--submission-out", tmp_path / "shl.csv"
    )
    header, rows = _rows(tmp_path / "shl.csv")
    assert header == ["filename", "label"] and len(rows) == len(IDS)

    predict(bundle, table, tmp_path / "p.csv", "--no-cache", "--submission", "da5401", "--round")
    header, rows = _rows(tmp_path / "submission-da5401.csv")
    assert header == ["ID", "score"]
    assert [int(r[1]) for r in rows] == [int(np.floor(v + 0.5)) for v in mi]


def test_refusals_exit_2_with_a_message(bundle, table, tmp_path):
    r = run("predict", bundle, table, "-o", tmp_path / "p.xlsx", "--option", "text=caption")
    assert r.exit_code == 2 and "expected a file ending in .csv, .jsonl or .parquet" in r.output
    r = run("predict", bundle, table, "-o", tmp_path / "p.csv", "--option", "text=title", "--no-cache")
    assert r.exit_code == 2 and "title" in r.output
    r = run("predict", tmp_path / "nowhere", table, "-o", tmp_path / "p.csv")
    assert r.exit_code == 2 and "not a scorer bundle" in r.output
    r = run(
        "predict", bundle, table, "-o", tmp_path / "p.csv", "--option", "text=caption", "--encoder-path", "nonsense"
    )
    assert r.exit_code == 2 and "--encoder-path: expected OLD=NEW" in r.output


def test_a_changed_encoder_is_refused_with_what_differs(bundle, table, tmp_path):
    import shutil

    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    manifest = json.loads((copy / "scorecast.json").read_text())
    manifest["encoders"][0]["identity"]["version"] = 2
    (copy / "scorecast.json").write_text(json.dumps(manifest))
    r = run("predict", copy, table, "-o", tmp_path / "p.csv", "--option", "text=caption", "--no-cache")
    assert r.exit_code == 2
    assert (
        "does not match the one the scorer was trained with" in r.output and "version: bundle has 2, got 1" in r.output
    )


def test_audio_table_with_a_bad_row_skipped(tmp_path_factory, tmp_path):
    bundle = audio_bundle(tmp_path_factory)
    clips = tmp_path / "clips"
    clips.mkdir()
    for i in range(3):
        sf.write(clips / f"c{i}.wav", tone(1.0, 200 + 40 * i, seed=i), 16000)
    (clips / "bad.wav").write_bytes(b"not audio at all, just text")
    pd.DataFrame({"id": ["c0", "c1", "bad", "c2"], "path": ["c0.wav", "c1.wav", "bad.wav", "c2.wav"]}).to_csv(
        clips / "t.csv", index=False
    )
    args = [
        "predict",
        bundle,
        clips / "t.csv",
        "-o",
        tmp_path / "p.csv",
        "--option",
        "audio=path",
        "--no-progress",
        "--no-cache",
    ]
    r = run(*args)
    assert r.exit_code == 2 and "bad.wav" in r.output
    r = run(*args, "--on-error", "skip")
    assert r.exit_code == 0, r.output
    frame = pd.read_csv(tmp_path / "p.csv")
    assert frame["id"].tolist() == ["c0", "c1", "c2"] and "std.score" not in frame.columns
    assert "left out 1 row(s)" in r.output
    alone = scorecast.load(bundle, cache=False).predict(audio=[str(clips / "c1.wav")])
    np.testing.assert_allclose(frame["score"].iloc[1], alone.mean[0, 0], atol=1e-5)


def test_a_challenge_readers_error_says_how_to_read_a_plain_table(tmp_path):
    """A bundle trained with a challenge reader (STS-B's) given a plain JSONL: the reader's error, plus
    the --reader table flags that read the inputs this scorer needs."""
    from types import SimpleNamespace

    from scorecast.config import DataConfig
    from scorecast.errors import DataError
    from scorecast.inference.predictor import InputSpec
    from scorecast.inference.tables import read_table

    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"id": "a", "sentence1": "a cat", "sentence2": "a dog"}) + "\n")
    recipe = SimpleNamespace(data=DataConfig(reader="stsb"))
    inputs = InputSpec(False, ("sentence1", "sentence2"), ())
    with pytest.raises(
        DataError,
        match=r"expected 7 fields .* reader 'stsb'; for a plain table with an id column and "
        r"sentence1 and sentence2 column\(s\): --reader table --option 'text=\[sentence1, sentence2\]'",
    ) as info:
        read_table(recipe, inputs, path, None, {}, "raise")
    assert info.value.file == str(path) and info.value.row == 1
    # the flags it names do read the file
    items = read_table(recipe, inputs, path, "table", {"text": ["sentence1", "sentence2"]}, "raise")
    assert items[0].texts == {"sentence1": "a cat", "sentence2": "a dog"}
    # an explicit --reader gets the reader's own error, unchanged
    with pytest.raises(DataError) as info:
        read_table(recipe, inputs, path, "stsb", {}, "raise")
    assert "--reader table" not in str(info.value)


def test_error_messages_are_printed_verbatim(monkeypatch, capsys):
    """Square brackets in a message are values, not rich markup: they reach the terminal as written."""
    from scorecast.cli import app as cli
    from scorecast.errors import ConfigError

    def fail():
        raise ConfigError("expected 'hidden' to be a list of positive integers, got [8, -1]; try 'text=[a, b]'")

    monkeypatch.setattr(cli, "app", fail)
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "got [8, -1]; try 'text=[a, b]'" in err
