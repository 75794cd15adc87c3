"""The generic ``table`` reader and table loading: every format, the column mapping, per-rater
ratings (list cells and long format), and one test per kind of bad input."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scorecast.config import DataConfig, TargetSpec
from scorecast.data.aggregate import rating_distributions, target_bin_edges
from scorecast.data.readers import READERS, read_items
from scorecast.data.table import load_table
from scorecast.errors import ConfigError, DataError


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF")
    return path


FRAME = pd.DataFrame(
    {
        "clip": ["a", "b", "c"],
        "path": ["wav/a.wav", "wav/b.wav", "wav/c.wav"],
        "caption": ["a dog barks", "rain", "a car passes"],
        "mos": [3.5, 4.0, 1.25],
        "sys": ["s1", "s2", "s1"],
    }
)


@pytest.fixture
def audio_tmp(tmp_path: Path) -> Path:
    for name in "abc":
        _touch(tmp_path / "wav" / f"{name}.wav")
    return tmp_path


def _write(frame: pd.DataFrame, path: Path) -> Path:
    suffix = path.suffix
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif suffix == ".json":
        path.write_text(json.dumps(frame.to_dict("records")))
    elif suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(r) for r in frame.to_dict("records")) + "\n")
    elif suffix == ".parquet":
        frame.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".json", ".jsonl", ".parquet"])
def test_every_format_reads_the_same_items(audio_tmp: Path, suffix: str) -> None:
    path = _write(FRAME, audio_tmp / f"items{suffix}")
    reader = READERS.build(
        "table", id="clip", audio="path", text={"caption": "caption"}, targets={"mos": "score"}, group="sys"
    )
    items = reader.read(path)
    assert items.ids == ["a", "b", "c"]
    assert items.target_names == ["score"]
    np.testing.assert_allclose(items.targets("score"), [3.5, 4.0, 1.25])
    assert items[0].audio == str((audio_tmp / "wav" / "a.wav").resolve())
    assert items[1].texts == {"caption": "rain"}
    assert items.groups() == ["s1", "s2", "s1"]


def test_read_items_builds_the_reader_from_config(audio_tmp: Path) -> None:
    path = _write(FRAME, audio_tmp / "items.csv")
    config = DataConfig(reader="table", path=str(path), options={"id": "clip", "targets": "mos"})
    items = read_items(config)
    assert items.target_names == ["mos"] and len(items) == 3
    with pytest.raises(ConfigError, match="data.path"):
        read_items(DataConfig(reader="table"))
    with pytest.raises(ConfigError, match="unknown reader 'nope'.*table"):
        read_items(DataConfig(reader="nope", path=str(path)))
    with pytest.raises(ConfigError, match="cannot build reader 'table'.*colour"):
        read_items(DataConfig(reader="table", path=str(path), options={"colour": "x"}))


def test_vectors_text_list_and_row_number_ids(tmp_path: Path) -> None:
    frame = pd.DataFrame({"emb": ["[0.5, 1.5]", "2 3"], "q": ["x", "y"], "r": ["u", "v"], "s": [1, 2]})
    path = _write(frame, tmp_path / "t.csv")
    items = READERS.build("table", id=None, text=["q", "r"], vectors={"v": "emb"}, targets="s").read(path)
    assert items.ids == ["2", "3"]  # header is row 1
    np.testing.assert_allclose(items[0].vectors["v"], [0.5, 1.5])
    np.testing.assert_allclose(items[1].vectors["v"], [2.0, 3.0])
    assert items[1].texts == {"q": "y", "r": "v"}


def test_parquet_vectors_from_list_columns(tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": ["a", "b"], "emb": [[1.0, 2.0], [3.0, 4.0]], "y": [1.0, 2.0]})
    path = _write(frame, tmp_path / "t.parquet")
    items = READERS.build("table", vectors="emb", targets={"y": "score"}).read(path)
    np.testing.assert_allclose(items[1].vectors["emb"], [3.0, 4.0])


def test_ratings_lists_are_aggregated(tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": ["a", "b"], "scores": ["[1, 2, 4]", "[5]"], "who": ["['r1', 'r2', 'r3']", "['r9']"]})
    path = _write(frame, tmp_path / "t.csv")
    items = READERS.build("table", ratings="scores", raters="who").read(path)
    a = items[0]
    assert a.targets["score"] == pytest.approx(7 / 3)
    r = a.ratings["score"]
    assert r.count == 3 and r.raters == ["r1", "r2", "r3"]
    assert r.std == pytest.approx(np.std([1, 2, 4], ddof=1))
    np.testing.assert_allclose(r.histogram(np.arange(0.5, 6.0)), [1 / 3, 1 / 3, 0, 1 / 3, 0])
    assert items[1].ratings["score"].std == 0.0


def test_long_format_one_row_per_rater(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "clip": ["a", "a", "b", "a"],
            "listener": ["l1", "l2", "l1", "l3"],
            "s": [2, 4, 5, 3],
            "caption": ["dog", "dog", "cat", "dog"],
        }
    )
    path = _write(frame, tmp_path / "long.csv")
    items = READERS.build("table", id="clip", rater="listener", targets={"s": "score"}, text="caption").read(path)
    assert items.ids == ["a", "b"]
    assert items[0].targets["score"] == pytest.approx(3.0)
    assert items[0].ratings["score"].raters == ["l1", "l2", "l3"]
    assert items[1].ratings["score"].count == 1


def test_long_format_errors_name_both_rows(tmp_path: Path) -> None:
    frame = pd.DataFrame({"clip": ["a", "a"], "listener": ["l1", "l1"], "s": [2, 4]})
    path = _write(frame, tmp_path / "long.csv")
    with pytest.raises(DataError, match=r"row 3.*rater 'l1' rated item 'a' twice: first at row 2, again at row 3"):
        READERS.build("table", id="clip", rater="listener", targets="s").read(path)
    frame = pd.DataFrame({"clip": ["a", "a"], "listener": ["l1", "l2"], "s": [2, 4], "t": ["dog", "cat"]})
    path = _write(frame, tmp_path / "long2.csv")
    with pytest.raises(DataError, match=r"row 3.*texts differs from its first row 2"):
        READERS.build("table", id="clip", rater="listener", targets="s", text="t").read(path)


def test_rating_distributions_follow_the_target_levels() -> None:
    from scorecast.data.aggregate import make_ratings
    from scorecast.data.items import Item

    spec = TargetSpec(name="score", low=1, high=5, step=1)
    np.testing.assert_allclose(target_bin_edges(spec), [0.5, 1.5, 2.5, 3.5, 4.5, 5.5])
    items = [
        Item("a", targets={"score": 2.5}, ratings={"score": make_ratings([1, 1, 5, 3])}),
        Item("b", targets={"score": 4.0}),
        Item("c"),
    ]
    dist = rating_distributions(items, spec)
    np.testing.assert_allclose(dist[0], [0.5, 0, 0.25, 0, 0.25])
    np.testing.assert_allclose(dist[1], [0, 0, 0, 1, 0])
    assert np.isnan(dist[2]).all()


# --------------------------------------------------------------------------------------------
# bad input: one clear error each, naming file, row and field


def _csv(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_missing_column_names_file_column_and_columns_present(tmp_path: Path) -> None:
    path = _csv(tmp_path, "id,caption\na,x\n")
    with pytest.raises(DataError, match=r"t\.csv.*missing column 'mos'.*the columns present are: 'id', 'caption'"):
        READERS.build("table", targets="mos").read(path)


def test_duplicated_id_names_both_rows(tmp_path: Path) -> None:
    path = _csv(tmp_path, "id,mos\na,1\nb,2\na,3\n")
    with pytest.raises(DataError, match=r"row 4, field 'id': duplicated id 'a': first at row 2, again at row 4"):
        READERS.build("table", targets="mos").read(path)


@pytest.mark.parametrize(
    "value,message", [("good", "non-numeric score.*'good'"), ("nan", "score is nan"), ("", "missing score")]
)
def test_bad_score_names_file_row_and_field(tmp_path: Path, value: str, message: str) -> None:
    path = _csv(tmp_path, f"id,mos\na,1\nb,{value}\n")
    with pytest.raises(DataError, match=rf"t\.csv, row 3, field 'mos': {message}"):
        READERS.build("table", targets="mos").read(path)


def test_empty_text_names_row_and_field(tmp_path: Path) -> None:
    path = _csv(tmp_path, 'id,caption,mos\na,"  ",1\n')
    with pytest.raises(DataError, match=r"row 2, field 'caption': empty text"):
        READERS.build("table", text="caption", targets="mos").read(path)
    items = READERS.build("table", text="caption", targets="mos", allow_empty_text=True).read(path)
    assert items[0].texts["caption"] == ""


def test_missing_audio_names_row_and_path(tmp_path: Path) -> None:
    _touch(tmp_path / "a.wav")
    path = _csv(tmp_path, "id,path\na,a.wav\nb,b.wav\n")
    with pytest.raises(DataError, match=r"row 3, field 'path': audio file does not exist: .*b\.wav"):
        READERS.build("table", audio="path").read(path)
    assert len(READERS.build("table", audio="path", check_audio=False).read(path)) == 2


def test_malformed_list_cell(tmp_path: Path) -> None:
    path = _csv(tmp_path, 'id,r\na,"[1, 2"\n')
    with pytest.raises(DataError, match=r"row 2, field 'r': malformed list"):
        READERS.build("table", ratings="r").read(path)


def test_ragged_row_is_malformed(tmp_path: Path) -> None:
    path = _csv(tmp_path, "id,mos\na,1\nb,2,extra\n")
    with pytest.raises(DataError, match=r"row 3: malformed row: expected 2 fields \(id, mos\), got 3"):
        READERS.build("table", targets="mos").read(path)


def test_skip_mode_drops_bad_rows_and_reports_them(tmp_path: Path) -> None:
    path = _csv(tmp_path, "id,mos\na,1\nb,oops\nc,3\na,4\nd,5,6\n")
    with pytest.warns(UserWarning, match="left out 3 row"):
        items = READERS.build("table", targets="mos").read(path, on_error="skip")
    assert items.ids == ["a", "c"]
    assert len(items.skipped) == 3
    assert any("row 3, field 'mos': non-numeric score" in s for s in items.skipped)
    assert any("row 5, field 'id': duplicated id 'a'" in s for s in items.skipped)
    assert any("row 6: malformed row" in s for s in items.skipped)


def test_nothing_usable_is_an_error(tmp_path: Path) -> None:
    path = _csv(tmp_path, "id,mos\na,x\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match="no items read.*1 rows left out"):
            READERS.build("table", targets="mos").read(path, on_error="skip")
    with pytest.raises(DataError, match="the table is empty"):
        READERS.build("table").read(_csv(tmp_path, "", "empty.csv"))


def test_unreadable_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"id,mos\n\xff\xfe,1\n")
    with pytest.raises(DataError, match=r"not UTF-8 text.*line 2"):
        load_table(bad)
    js = _csv(tmp_path, '[{"id": "a"}, ', "t.json")
    with pytest.raises(DataError, match=r"t\.json.*not valid JSON"):
        load_table(js)
    pq = tmp_path / "t.parquet"
    pq.write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="cannot read as Parquet"):
        load_table(pq)
    with pytest.raises(DataError, match="cannot tell the table format"):
        load_table(_csv(tmp_path, "x", "t.xlsx"))
    with pytest.raises(DataError, match="file not found"):
        READERS.build("table").read(tmp_path / "nope.csv")
    with pytest.raises(ConfigError, match="on_error"):
        READERS.build("table").read(js, on_error="ignore")


def test_row_numbers_follow_the_lines_of_the_file(tmp_path: Path) -> None:
    # a multi-line quoted cell and a blank line: rows are the line where each record starts
    path = _csv(tmp_path, 'id,text,mos\na,"two\nlines",1\n\nb,x,bad\n')
    with pytest.raises(DataError, match=r"row 5, field 'mos'"):
        READERS.build("table", text="text", targets="mos").read(path)
    jl = _csv(tmp_path, '{"id": "a", "mos": 1}\n\n{"id": "b", "mos": "x"}\n', "t.jsonl")
    with pytest.raises(DataError, match=r"row 3, field 'mos'"):
        READERS.build("table", targets="mos").read(jl)


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="option text"):
        READERS.build("table", text=3)
    with pytest.raises(ConfigError, match="option rater"):
        READERS.build("table", rater="who")
