"""`scorecast predict` writes its table without pandas, and a warm predict (features cached) imports
no pandas, scikit-learn, Lightning or sentence-transformers."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scorecast.inference.frames import prediction_columns, prediction_frame, write_columns
from test_predict_support import text_bundle

TESTS = Path(__file__).resolve().parent
MEAN = np.array([[1.0, 2.5], [np.nan, 0.1 + 0.2], [3.0, 1e-9]])
STD = np.array([[0.5, 0.25], [0.125, np.nan], [1.0 / 3.0, 2.0]])


def columns():
    return prediction_columns(
        ["a", "b", "c,d"], ["MI", "TA"], MEAN, STD, pred_prefix="", flags=[[], ["silent", "clipped"], ["silent"]]
    )


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_written_columns_read_back_as_the_pandas_frame(tmp_path, fmt):
    path = tmp_path / f"p.{fmt}"
    write_columns(columns(), path, fmt)
    reader = {
        "csv": pd.read_csv,
        "jsonl": lambda p: pd.read_json(p, lines=True, precise_float=True),
        "parquet": pd.read_parquet,
    }[fmt]
    got = reader(path)
    want = prediction_frame(
        ["a", "b", "c,d"], ["MI", "TA"], MEAN, STD, pred_prefix="", flags=[[], ["silent", "clipped"], ["silent"]]
    )
    assert list(got.columns) == list(want.columns)
    assert got["id"].tolist() == ["a", "b", "c,d"]
    # floats in full: the same float64 values, NaN where NaN
    np.testing.assert_array_equal(got[["MI", "TA"]].to_numpy(float), MEAN)
    np.testing.assert_array_equal(got[["std.MI", "std.TA"]].to_numpy(float), STD)
    assert got["flags"].fillna("").tolist() == ["", "silent; clipped", "silent"]


def test_csv_and_jsonl_write_nan_as_empty_and_null(tmp_path):
    write_columns(columns(), tmp_path / "p.csv", "csv")
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[0] == "id,MI,TA,std.MI,std.TA,flags"
    assert lines[2] == f"b,,{0.1 + 0.2!r},0.125,,silent; clipped"
    assert lines[3].startswith('"c,d",3.0,1e-09,')
    write_columns(columns(), tmp_path / "p.jsonl", "jsonl")
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert rows[1]["MI"] is None and rows[1]["std.TA"] is None and rows[1]["TA"] == 0.1 + 0.2
    assert math.isclose(rows[2]["std.MI"], 1.0 / 3.0, rel_tol=0, abs_tol=0)


def test_columns_of_unequal_length_are_refused(tmp_path):
    with pytest.raises(ValueError, match="expected one length"):
        write_columns({"id": ["a", "b"], "MI": [1.0]}, tmp_path / "p.csv", "csv")


def test_warm_predict_imports_no_table_or_training_library(tmp_path_factory, tmp_path):
    bundle = text_bundle(tmp_path_factory)
    table, cache = tmp_path / "items.csv", tmp_path / "cache"
    table.write_text("id,caption\nx,a cat sat on the mat\ny,the dog sang\n")
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import test_predict_support;"
        "from pathlib import Path; from scorecast.inference.tables import run_predict;"
        "r = run_predict(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), options=['text=caption'],"
        " cache_dir=Path(sys.argv[5]), progress=False);"
        "print(r['rows'], sorted(m for m in ('pandas', 'sklearn', 'lightning', 'sentence_transformers')"
        " if m in sys.modules))"
    )
    for name in ("cold.csv", "warm.csv"):
        args = [sys.executable, "-c", code, str(TESTS), str(bundle), str(table), str(tmp_path / name), str(cache)]
        out = subprocess.run(args, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip().splitlines()[-1] == "2 []"
    assert (tmp_path / "cold.csv").read_text() == (tmp_path / "warm.csv").read_text()
