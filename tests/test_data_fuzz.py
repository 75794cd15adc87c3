"""Property tests: random bytes, truncated and mangled tables, random columns and values thrown at
every reader. Each outcome is an ItemSet or one ScorecastError, never another exception."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from scorecast.data.items import ItemSet
from scorecast.data.readers import READERS
from scorecast.errors import ScorecastError

SETTINGS = settings(
    max_examples=int(os.environ.get("SCORECAST_FUZZ_EXAMPLES", 40)),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# reader -> (file name, options, a valid file, header-less?, delimiter)
CASES: dict[str, tuple[str, dict, str, bool, str]] = {
    "table": (
        "items.csv",
        {"id": "id", "text": "caption", "targets": "mos", "ratings": "r", "group": "sys"},
        'id,caption,mos,r,sys\na,a dog,3.5,"[1, 2]",s1\nb,rain,4,"[4]",s2\n',
        False,
        ",",
    ),
    "table-long": (
        "long.csv",
        {"id": "clip", "rater": "listener", "targets": {"s": "score"}, "vectors": "emb"},
        'clip,listener,s,emb\na,l1,2,"[0.1, 0.2]"\na,l2,4,"[0.1, 0.2]"\nb,l1,5,"1 2"\n',
        False,
        ",",
    ),
    "xacle": ("train_average.csv", {}, "wav_file_name,text,average_score\n1.wav,a dog,7.5\n2.wav,rain,0\n", False, ","),
    "xacle-listeners": (
        "train.txt",
        {},
        "l1.csv,/tango/train/1.wav,3,tango,Kids shout,no_tempo\nl2.csv,/tango/train/1.wav,5,tango,Kids shout,no_tempo\n",
        True,
        ",",
    ),
    "audiomos": (
        "list.txt",
        {"prompts": "{root}/prompt_info.txt"},
        "audiomos2025-track1-S002_P044.wav,4.2,3.9\naudiomos2025-track1-S013_P001.wav,2,1\n",
        True,
        ",",
    ),
    "shl": ("train.csv", {}, 'filename,label,transcript\naudio_1,3.5,"I goes home"\naudio_2,2,x\n', False, ","),
    "da5401": (
        "train_data.json",
        {},
        json.dumps(
            [{"metric_name": "fluency", "score": "9.0", "user_prompt": "q", "response": "a", "system_prompt": None}]
        ),
        False,
        ",",
    ),
    "stsb": ("sts.csv", {}, "main\tMSRvid\t2012test\t0001\t5.000\tA plane.\tAn air plane.\tx\n", True, "\t"),
    "mushra": (
        "ratings.csv",
        {"check_audio": False},
        'signal,condition,ratings,participant_ids,file\nS1,Ref,"[90.0, 100.0]","[1, 2]",stim_01/ref.wav\nS1,A,"[1]","[3]",\n',
        False,
        ",",
    ),
}
COLUMN_POOL = [
    "id",
    "caption",
    "mos",
    "r",
    "sys",
    "clip",
    "listener",
    "s",
    "emb",
    "wav_file_name",
    "text",
    "average_score",
    "wav",
    "MOS",
    "filename",
    "label",
    "transcript",
    "metric_name",
    "score",
    "user_prompt",
    "response",
    "system_prompt",
    "signal",
    "condition",
    "ratings",
    "participant_ids",
    "file",
    "ID",
    "junk",
]
VALUES = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "nan",
            "NaN",
            "inf",
            "-1",
            "0",
            "3.5",
            "10",
            "1e999",
            "9" * 400,
            "[1, 2]",
            "[",
            "[1, 'a']",
            "[[]]",
            "['r1']",
            "[1e999]",
            "()",
            "None",
            "{}",
            '"',
            "a,b",
            "x.wav",
            "/a/b.wav",
            "S1_P1.wav",
            "fluency",
            "~nobody/x",
            "\x00",
            "[" * 200 + "]" * 200,
            "__import__('os')",
        ]
    ),
    st.text(max_size=12),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


def _setup(root: Path) -> None:
    """Auxiliary files some readers look for beside the table."""
    (root / "metric_names.json").write_text(json.dumps(["fluency", "safety"]))
    np.save(root / "metric_name_embeddings.npy", np.ones((2, 4), dtype=np.float32))
    (root / "prompt_info.txt").write_text("id\ttext\nP044\tcalm piano\nP001\tdrums\n")


def _read(case: str, data: bytes, name: str | None = None) -> None:
    file_name, options, _, _, _ = CASES[case]
    reader_name = "table" if case.startswith("table") else case
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _setup(root)
        path = root / (name or file_name)
        path.write_bytes(data)
        options = {k: v.format(root=root) if isinstance(v, str) else v for k, v in options.items()}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for on_error in ("raise", "skip"):
                try:
                    out = READERS.build(reader_name, **options).read(path, on_error=on_error)
                except ScorecastError:
                    continue
                assert isinstance(out, ItemSet) and len(out) > 0
                for item in out:
                    assert isinstance(item.id, str)
                    for value in item.targets.values():
                        assert np.isfinite(value)


def _render(rows: list[list[str]], sep: str) -> str:
    buf = io.StringIO()
    csv.writer(buf, delimiter=sep, lineterminator="\n").writerows(rows)
    return buf.getvalue()


CASE_NAMES = sorted(CASES)


@pytest.mark.parametrize("case", CASE_NAMES)
@SETTINGS
@given(data=st.binary(max_size=300))
def test_random_bytes(case: str, data: bytes) -> None:
    _read(case, data)


@pytest.mark.parametrize("case", CASE_NAMES)
@SETTINGS
@given(cut=st.floats(0, 1), insert=st.text(max_size=6), at=st.floats(0, 1))
def test_truncated_and_mangled_valid_files(case: str, cut: float, insert: str, at: float) -> None:
    text = CASES[case][2]
    text = text[: int(len(text) * cut)]
    pos = int(len(text) * at)
    _read(case, (text[:pos] + insert + text[pos:]).encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize("case", CASE_NAMES)
@SETTINGS
@given(
    columns=st.lists(st.sampled_from(COLUMN_POOL), min_size=1, max_size=7, unique=True),
    rows=st.lists(st.lists(VALUES, min_size=0, max_size=8), max_size=5),
    keep_real_header=st.booleans(),
)
def test_random_columns_and_values(
    case: str, columns: list[str], rows: list[list[str]], keep_real_header: bool
) -> None:
    file_name, _, valid, headless, sep = CASES[case]
    if case == "da5401":
        records = [dict(zip(columns, r)) for r in rows]
        _read(case, json.dumps(records).encode())
        return
    if keep_real_header and not headless:
        columns = next(csv.reader(io.StringIO(valid)))
    width = len(columns)
    body = [(r + [""] * width)[:width] if r and len(r) % 2 else r for r in rows]
    table = body if headless else [columns] + body
    _read(case, _render(table, sep).encode("utf-8", "surrogatepass"))


@SETTINGS
@given(
    records=st.lists(st.dictionaries(st.sampled_from(COLUMN_POOL), JSON_VALUES, max_size=8), max_size=4),
    suffix=st.sampled_from([".json", ".jsonl"]),
)
def test_random_json_records(records: list[dict], suffix: str) -> None:
    text = json.dumps(records) if suffix == ".json" else "\n".join(json.dumps(r) for r in records)
    for case in ("da5401", "table"):
        _read(case, text.encode(), name="records" + suffix)


@settings(max_examples=25, deadline=None)
@given(names=JSON_VALUES, shape=st.tuples(st.integers(0, 3), st.integers(0, 3)))
@example(names=["fluency", "safety"], shape=(2, 3))  # a valid pair: the read must succeed
@example(names=["fluency", "fluency"], shape=(2, 3))  # a repeated name: refused
def test_random_metric_tables(names: object, shape: tuple[int, int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "metric_names.json").write_text(json.dumps(names))
        np.save(root / "metric_name_embeddings.npy", np.zeros(shape))
        path = root / "train_data.json"
        path.write_text(CASES["da5401"][2])
        try:
            out = READERS.build("da5401").read(path)
        except ScorecastError as exc:  # refused: the message names the metric file at fault
            assert "metric" in str(exc) and ("metric_name" in str(exc) or "train_data.json" in str(exc)), str(exc)
            return
        # read: the names were a list of distinct strings and the table one row of D values per name
        assert isinstance(names, list) and len(set(names)) == len(names) == shape[0] and shape[1] > 0
        assert len(out) > 0 and all(item.vectors["metric"].shape == (shape[1],) for item in out)


@settings(max_examples=20, deadline=None)
@given(data=st.binary(max_size=200))
def test_random_parquet_bytes(data: bytes) -> None:
    _read("table", b"PAR1" + data + b"PAR1", name="items.parquet")


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.lists(VALUES, min_size=1, max_size=3), max_size=4), sep=st.sampled_from([",", "\t"]))
@example(rows=[["P044", "calm piano"]], sep="\t")  # a valid prompt table
def test_random_prompt_tables(rows: list[list[str]], sep: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "prompts.txt").write_text(_render(rows, sep), encoding="utf-8", errors="surrogatepass")
        path = root / "list.txt"
        path.write_text(CASES["audiomos"][2])
        try:
            out = READERS.build("audiomos", prompts=str(root / "prompts.txt"), require_prompt=False).read(path)
        except ScorecastError as exc:  # refused: the message names the prompt table
            assert "prompts.txt" in str(exc) or "prompt" in str(exc), str(exc)
            return
        # read: every item keeps its scores; a prompt text, where one was found, is a non-empty string
        assert len(out) > 0 and all(np.isfinite(v) for item in out for v in item.targets.values())
        assert all(isinstance(item.texts.get("prompt", ""), str) for item in out)
