"""``lookup``: vectors that come with the data, or vectors looked up from a table by a key.

* input ``vector.<field>``, no ``table``: each item's vector passes through (checked: 1-D, finite,
  ``dim`` long where ``dim`` is given).
* input ``text.<field>`` with ``table``: the text is a key into the table (DA5401: the metric
  name -> its row of ``metric_name_embeddings.npy`` via ``metric_names.json``).

Recipe params::

    table: a .npy matrix (with ``names``: a JSON list of keys, one per row) or a .csv whose
           ``key_column`` (default: the first) holds the keys and whose other columns are numbers
    names: the JSON list of keys of a .npy table
    lowercase: compare keys case-insensitively (false); surrounding spaces are always ignored
    dim: expected vector length (checked)
"""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from scorecast.encoders.base import ENCODERS, Encoded, Encoder
from scorecast.errors import ConfigError, DataError


def _digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _read_npy_table(table: Path, names: Path | None) -> tuple[list[str], np.ndarray]:
    if names is None:
        raise ConfigError(f"lookup: table {table} is a .npy matrix; expected params.names: a JSON list of its row keys")
    try:
        matrix = np.load(table, allow_pickle=False)
    except ValueError as exc:
        raise DataError(f"not a numeric .npy matrix: {exc}", file=table) from None
    try:
        keys = json.loads(names.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"expected a JSON list of keys: {exc}", file=names) from None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise DataError(f"expected a JSON list of strings, got {type(keys).__name__}", file=names)
    if matrix.ndim != 2 or matrix.shape[0] != len(keys):
        raise DataError(
            f"expected a ({len(keys)}, D) matrix (one row per key in {names.name}), got shape {matrix.shape}",
            file=table,
        )
    return keys, matrix


def _read_csv_table(table: Path, key_column: str | None) -> tuple[list[str], np.ndarray]:
    import pandas as pd

    frame = pd.read_csv(table, dtype={key_column: str} if key_column else None)
    column = key_column or frame.columns[0]
    if column not in frame.columns:
        raise DataError(f"expected a key column '{column}', got columns {list(frame.columns)}", file=table)
    values = frame.drop(columns=[column])
    bad = [c for c in values.columns if not pd.api.types.is_numeric_dtype(values[c])]
    if bad:
        raise DataError(f"expected numeric vector columns besides the key '{column}'", file=table, field=str(bad[0]))
    return [str(k) for k in frame[column]], values.to_numpy(dtype=np.float32)


@ENCODERS.register("lookup")
class LookupEncoder(Encoder):
    """Pass-through of given vectors, or a keyed table of vectors."""

    modality = "vector"

    def __init__(
        self,
        table: str | None = None,
        names: str | None = None,
        key_column: str | None = None,
        lowercase: bool = False,
        dim: int | None = None,
    ) -> None:
        self.lowercase = bool(lowercase)
        self.dim = dim
        self.table = self.names = None
        self._rows: dict[str, int] = {}
        self._matrix: np.ndarray | None = None
        if table is None:
            if names is not None or key_column is not None:
                raise ConfigError("lookup: 'names'/'key_column' given without 'table'")
            return
        self.modality = "text"  # the inputs are keys
        self.table = Path(table).expanduser()
        self.names = Path(names).expanduser() if names is not None else None
        for p in (self.table, self.names):
            if p is not None and not p.is_file():
                raise ConfigError(f"lookup: file not found: {p}")
        if self.table.suffix == ".npy":
            keys, matrix = _read_npy_table(self.table, self.names)
        elif self.table.suffix in (".csv", ".tsv"):
            keys, matrix = _read_csv_table(self.table, key_column)
        else:
            raise ConfigError(
                f"lookup: table {self.table}: expected a .npy (with names) or .csv file, got '{self.table.suffix}'"
            )
        if dim is not None and matrix.shape[1] != dim:
            raise DataError(f"expected vectors of length {dim}, got {matrix.shape[1]}", file=self.table)
        if not np.all(np.isfinite(matrix)):
            raise DataError("table holds non-finite values", file=self.table)
        for row, key in enumerate(keys):
            norm = self._norm(key)
            if norm in self._rows:
                raise DataError(
                    f"key '{key}' appears twice (rows {self._rows[norm] + 1} and {row + 1})",
                    file=self.names or self.table,
                )
            self._rows[norm] = row
        self._matrix = matrix.astype(np.float32)
        self._key_column = key_column

    def _norm(self, key: str) -> str:
        key = key.strip()
        return key.lower() if self.lowercase else key

    def identity(self) -> dict[str, Any]:
        if self.table is None:
            return {"name": "lookup", "source": "data", "dim": self.dim}
        files = [self.table] + ([self.names] if self.names else [])
        return {
            "name": "lookup",
            "table": self.table.name,
            "names": self.names.name if self.names else None,
            "key_column": self._key_column,
            "sha256": _digest(*files),
            "lowercase": self.lowercase,
            "dim": int(self._matrix.shape[1]),
        }

    @property
    def keys(self) -> list[str]:
        return list(self._rows)

    def _lookup(self, key: Any, index: int) -> np.ndarray:
        if not isinstance(key, str):
            raise DataError(f"lookup: expected a text key for input {index}, got {type(key).__name__}")
        row = self._rows.get(self._norm(key))
        if row is None:
            close = difflib.get_close_matches(self._norm(key), self.keys, n=3)
            known = ", ".join(repr(k) for k in self.keys[:5])
            hint = f"; closest: {', '.join(map(repr, close))}" if close else ""
            raise DataError(f"unknown key '{key}' ({len(self._rows)} keys, e.g. {known}{hint})", file=self.table)
        return self._matrix[row].copy()

    def _passthrough(self, vec: Any, index: int) -> np.ndarray:
        arr = np.asarray(vec, dtype=np.float32)
        if arr.ndim != 1:
            raise DataError(f"lookup: expected a 1-D vector for input {index}, got shape {arr.shape}")
        if self.dim is not None and arr.shape[0] != self.dim:
            raise DataError(f"lookup: expected a vector of length {self.dim} for input {index}, got {arr.shape[0]}")
        if not np.all(np.isfinite(arr)):
            raise DataError(f"lookup: input {index} holds non-finite values")
        return arr

    def encode_batch(self, inputs: list[Any]) -> list[Encoded]:
        fn = self._passthrough if self._matrix is None else self._lookup
        return [Encoded(fn(x, i)) for i, x in enumerate(inputs)]
