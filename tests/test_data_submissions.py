"""Submission writers: each format's exact text, clipping, rounding and bad arguments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scorecast.config import TargetSpec
from scorecast.data.submissions import SUBMISSIONS
from scorecast.errors import ConfigError, DataError

SCORE10 = [TargetSpec(name="score", low=0, high=10)]


def test_registered_formats() -> None:
    assert SUBMISSIONS.names() == ["audiomos", "da5401", "shl", "xacle"]


def test_xacle_csv(tmp_path: Path) -> None:
    out = SUBMISSIONS.build("xacle").write(
        tmp_path / "sub" / "x.csv", ["1.wav", "2.wav"], {"score": np.array([7.25, 11.0])}, SCORE10
    )
    assert out.read_text() == "wav_file_name,prediction\n1.wav,7.25\n2.wav,10.0\n"
    out = SUBMISSIONS.build("xacle", pred_col="pred_score").write(
        tmp_path / "y.csv", ["1.wav"], {"score": [-3]}, SCORE10
    )
    assert out.read_text() == "wav_file_name,pred_score\n1.wav,0.0\n"


def test_audiomos_answer_txt(tmp_path: Path) -> None:
    targets = [TargetSpec(name="MI", low=1, high=5), TargetSpec(name="TA", low=1, high=5)]
    ids = ["audiomos2025-track1-S001_P007", "audiomos2025-track1-S002_P005.wav"]
    preds = {"TA": np.array([4.0, 0.2]), "MI": np.array([3.5, 5.5])}
    out = SUBMISSIONS.build("audiomos").write(tmp_path / "answer.txt", ids, preds, targets)
    assert out.read_text() == "audiomos2025-track1-S001_P007,3.5,4.0\naudiomos2025-track1-S002_P005,5.0,1.0\n"
    with pytest.raises(ConfigError, match=r"expected targets \['MI', 'TA'\], got \['score'\]"):
        SUBMISSIONS.build("audiomos").write(tmp_path / "a.txt", ids, preds, SCORE10)


def test_shl_csv(tmp_path: Path) -> None:
    targets = [TargetSpec(name="score", low=1, high=5, step=0.5)]
    out = SUBMISSIONS.build("shl").write(tmp_path / "s.csv", ["audio_1", "audio_2"], {"score": [0.3, 3.26]}, targets)
    assert out.read_text() == "filename,label\naudio_1,1.0\naudio_2,3.26\n"


def test_da5401_rounds_halves_up_and_clips(tmp_path: Path) -> None:
    preds = {"score": np.array([2.5, 9.49, 10.6, -0.4, 0.5])}
    out = SUBMISSIONS.build("da5401").write(
        tmp_path / "d.csv", ["1", "2", "3", "4", "5"], preds, SCORE10, round_scores=True
    )
    assert out.read_text() == "ID,score\n1,3\n2,9\n3,10\n4,0\n5,1\n"


def test_bad_arguments(tmp_path: Path) -> None:
    writer = SUBMISSIONS.build("da5401")
    with pytest.raises(DataError, match="expected 2 predictions of 'score' \\(one per id\\), got 1"):
        writer.write(tmp_path / "a.csv", ["1", "2"], {"score": [1.0]}, SCORE10)
    with pytest.raises(DataError, match="prediction of 'score' for id '2' is nan"):
        writer.write(tmp_path / "a.csv", ["1", "2"], {"score": [1.0, np.nan]}, SCORE10)
    with pytest.raises(DataError, match="id '1' appears more than once"):
        writer.write(tmp_path / "a.csv", ["1", "1"], {"score": [1.0, 2.0]}, SCORE10)
    with pytest.raises(ConfigError, match="expected predictions for target 'score', got 'mos'"):
        writer.write(tmp_path / "a.csv", ["1"], {"mos": [1.0]}, SCORE10)
    with pytest.raises(ConfigError, match="unknown submission 'kaggle'"):
        SUBMISSIONS.build("kaggle")
