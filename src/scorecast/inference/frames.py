"""Predictions as a table: the one layout shared by ``scorecast predict``, ``Predictions.frame()`` and
run folders (``oof.csv``, ``val.csv``, ``test.csv``).

:func:`prediction_columns` builds the columns; :func:`prediction_frame` wraps them in a DataFrame.
``scorecast predict`` writes the columns with :func:`write_columns` (CSV and JSONL by the standard
library), so scoring a few items does not pay for importing pandas."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def prediction_columns(
    ids: Sequence[Any],
    target_names: Sequence[str],
    mean: np.ndarray,
    std: np.ndarray | None = None,
    *,
    truth: np.ndarray | None = None,
    groups: Sequence[Any] | None = None,
    fold: np.ndarray | None = None,
    pred_prefix: str = "pred.",
    flags: Sequence[Sequence[str]] | None = None,
):
    """Ordered columns: id, [fold], [group], then per target [<target> (truth)] and <pred_prefix><target>,
    then std.<target> per target where ``std`` is given. ``mean``, ``std`` and ``truth`` are (N, T) in target units."""
    cols: dict[str, Any] = {"id": [str(i) for i in ids]}
    if fold is not None:
        cols["fold"] = np.asarray(fold, dtype=int)
    if groups is not None:
        cols["group"] = list(groups)
    for j, name in enumerate(target_names):
        if truth is not None:
            cols[name] = truth[:, j]
        cols[f"{pred_prefix}{name}"] = np.asarray(mean[:, j], dtype=float)
    for j, name in enumerate(target_names):
        if std is not None:
            cols[f"std.{name}"] = np.asarray(std[:, j], dtype=float)
    if flags is not None:  # what makes an item unlike the training data ("" when nothing does)
        cols["flags"] = ["; ".join(f) for f in flags]
    return cols


def prediction_frame(*args: Any, **kwargs: Any):
    """:func:`prediction_columns` as a pandas DataFrame (same arguments)."""
    import pandas as pd

    return pd.DataFrame(prediction_columns(*args, **kwargs))


def _cell(value: Any) -> Any:
    """A Python scalar for csv/json: numpy scalars unwrapped, NaN as None (empty in CSV, null in JSON)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def column_rows(cols: dict[str, Any]) -> list[list[Any]]:
    """The rows of ``cols`` (every column the same length), cells as Python scalars."""
    lengths = {name: len(values) for name, values in cols.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"prediction columns: expected one length, got {lengths}")
    return [[_cell(v) for v in row] for row in zip(*cols.values())]


def write_columns(cols: dict[str, Any], path: Path, fmt: str) -> None:
    """Write ``cols`` as ``fmt`` ("csv", "jsonl" or "parquet"); CSV and JSONL without pandas. Floats are
    written in full (shortest repr), NaN as an empty CSV cell and a JSON null."""
    if fmt == "parquet":
        import pandas as pd

        pd.DataFrame(cols).to_parquet(path, index=False)
        return
    rows = column_rows(cols)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        if fmt == "csv":
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(list(cols))
            writer.writerows(["" if v is None else v for v in row] for row in rows)
        elif fmt == "jsonl":
            names = list(cols)
            for row in rows:
                fh.write(json.dumps(dict(zip(names, row)), ensure_ascii=False, allow_nan=False) + "\n")
        else:
            raise ValueError(f"write_columns: expected csv, jsonl or parquet, got {fmt!r}")
