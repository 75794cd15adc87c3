"""Every reader on the real files in ../shared/data (skipped where absent), with exact counts."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import require_data
from scorecast.config import TargetSpec
from scorecast.data.readers import READERS
from scorecast.data.readers.da5401 import load_metric_table, read_da5401_scores
from scorecast.data.submissions import SUBMISSIONS


@pytest.mark.parametrize("split,count", [("train", 5749), ("dev", 1500), ("test", 1379)])
def test_stsb(shared_data: Path, split: str, count: int) -> None:
    path = require_data(shared_data, "stsb", f"sts-{split}.csv")
    items = READERS.build("stsb").read(path)
    assert len(items) == count and len(set(items.ids)) == count
    scores = items.targets()
    assert scores.min() >= 0 and scores.max() <= 5
    # the sentences of a row with quote characters and trailing attribution fields stay whole
    raw = [line.rstrip("\n").split("\t") for line in path.read_text(encoding="utf-8").splitlines()]
    assert [i.texts["sentence2"] for i in items] == [r[6] for r in raw]
    np.testing.assert_allclose(scores, [float(r[4]) for r in raw])


def test_shl(shared_data: Path) -> None:
    path = require_data(shared_data, "shl-grammar", "train_with_transcripts.csv")
    items = READERS.build("shl").read(path)
    assert len(items) == 409
    assert sum(i.audio is not None for i in items) == 252
    assert all(i.audio is None or i.audio.endswith(".ogg") for i in items)
    assert all(i.texts["transcript"] for i in items)
    truth = pd.read_csv(path)
    np.testing.assert_allclose(items.targets(), truth["label"].to_numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with_audio = READERS.build("shl", require_audio=True).read(path, on_error="skip")
    assert len(with_audio) == 252 and len(with_audio.skipped) == 157
    test = READERS.build("shl", labelled=False).read(
        require_data(shared_data, "shl-grammar", "test_with_transcripts.csv")
    )
    assert len(test) == 197 and test.target_names == []


def test_mushra(shared_data: Path) -> None:
    path = require_data(shared_data, "codec-mushra", "ratings_formated_filtered.csv")
    with pytest.warns(UserWarning, match="left out 16 row"):
        items = READERS.build("mushra").read(path)
    assert len(items) == 128 and len(items.skipped) == 16
    assert all(Path(i.audio).is_file() and i.audio.endswith(".flac") for i in items)
    assert len(set(items.groups())) == 8 and len({i.meta["signal"] for i in items}) == 16
    counts = [i.ratings["score"].count for i in items]
    assert min(counts) >= 8 and max(counts) <= 11
    everything = READERS.build("mushra", include_no_audio=True).read(path)
    assert len(everything) == 144
    frame = pd.read_csv(path)
    first = json.loads(frame.loc[0, "ratings"])
    assert everything[0].targets["score"] == pytest.approx(np.mean(first))


def test_xacle_lists(shared_data: Path) -> None:
    listeners = READERS.build("xacle-listeners").read(require_data(shared_data, "xacle-lists", "train.txt"))
    assert len(listeners) == 2862
    assert sum(i.ratings["score"].count for i in listeners) == 9963
    mos = READERS.build("xacle").read(require_data(shared_data, "xacle-lists", "train_mos.txt"))
    assert len(mos) == 2862
    # the per-clip means of the listener lists are the *_mos.txt values (3 decimals there)
    by_id = {i.id: i.targets["score"] for i in mos}
    diff = [abs(i.targets["score"] - by_id[i.id]) for i in listeners]
    assert max(diff) < 5e-4
    assert {i.group for i in listeners} == {"tango", "audioldm", "natural"}
    for split, ratings, clips in (("val", 3897, 1287), ("ev", 3900, 1311)):
        items = READERS.build("xacle-listeners").read(require_data(shared_data, "xacle-lists", f"{split}.txt"))
        assert len(items) == clips and sum(i.ratings["score"].count for i in items) == ratings


def test_da5401_partial(shared_data: Path, tmp_path: Path) -> None:
    root = require_data(shared_data, "da5401-partial")
    names, embeddings = load_metric_table(root / "metric_names.json", root / "metric_name_embeddings.npy")
    assert len(names) == 145 and embeddings.shape == (145, 768)
    scores = read_da5401_scores(root / "y_train_scores.npy")
    assert scores.shape == (5000,) and np.mean(scores >= 9) == pytest.approx(0.913, abs=0.001)
    # the reader on records written here, with the real metric table
    records = [
        {"metric_name": names[0], "score": "10.0", "user_prompt": "u", "response": "r", "system_prompt": None},
        {"metric_name": names[144], "score": 3, "user_prompt": "u", "response": "r", "system_prompt": "s"},
    ]
    path = tmp_path / "train_data.json"
    path.write_text(json.dumps(records))
    items = READERS.build(
        "da5401",
        metric_names=str(root / "metric_names.json"),
        metric_embeddings=str(root / "metric_name_embeddings.npy"),
    ).read(path)
    np.testing.assert_array_equal(items[1].vectors["metric"], embeddings[144])


def test_da5401_submission_matches_the_sample(shared_data: Path, tmp_path: Path) -> None:
    sample_path = require_data(shared_data, "da5401-partial", "sample_submission.csv")
    sample = pd.read_csv(sample_path)
    ids = [str(i) for i in range(1, len(sample) + 1)]
    preds = np.linspace(-1, 11.4, len(ids))
    out = SUBMISSIONS.build("da5401").write(
        tmp_path / "submission.csv",
        ids,
        {"score": preds},
        [TargetSpec(name="score", low=0, high=10)],
        round_scores=True,
    )
    written = pd.read_csv(out)
    assert list(written.columns) == list(sample.columns) == ["ID", "score"]
    np.testing.assert_array_equal(written["ID"].to_numpy(), sample["ID"].to_numpy())
    assert written["score"].between(0, 10).all() and (written["score"] % 1 == 0).all()
    assert out.read_text().splitlines()[0] == sample_path.read_text().splitlines()[0]
