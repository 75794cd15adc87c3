"""Typed values out of a table row, and the path helpers readers share.

Every problem is a :class:`~scorecast.errors.DataError` naming the file, the row and the field.
Lists are parsed as JSON or as a Python literal (``ast.literal_eval``), never with ``eval``.
"""

from __future__ import annotations

import ast
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scorecast.errors import DataError

if TYPE_CHECKING:
    from scorecast.data.table import Row

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


class RowView:
    """Typed access to one row's cells; every problem is a DataError naming file, row and field."""

    def __init__(self, path: Path, row: Row) -> None:
        self.path = path
        self.row = row

    @property
    def number(self) -> int:
        return self.row.number

    def error(self, message: str, field: str | None = None) -> DataError:
        return DataError(message, file=self.path, row=self.row.number, field=field)

    def raw(self, column: str) -> Any:
        return self.row.values.get(column)

    def missing(self, column: str) -> bool:
        return is_missing(self.row.values.get(column))

    def score(self, column: str, low: float | None = None, high: float | None = None) -> float:
        value = self.row.values.get(column)
        return parse_score(value, self, column, low, high)

    def text(self, column: str, allow_empty: bool = False) -> str:
        value = self.row.values.get(column)
        if is_missing(value):
            if allow_empty:
                return ""
            raise self.error("empty text: expected a non-empty string", column)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise self.error(f"expected text, got a {type(value).__name__}", column)

    def ident(self, column: str) -> str:
        value = self.row.values.get(column)
        if is_missing(value):
            raise self.error("empty id: expected a value", column)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value).strip()
        raise self.error(f"expected an id (text or a number), got a {type(value).__name__}", column)

    def list(self, column: str) -> list[Any]:
        return parse_list(self.row.values.get(column), self, column)

    def vector(self, column: str) -> np.ndarray:
        value = self.row.values.get(column)
        if isinstance(value, str) and not value.strip().startswith(("[", "(")):
            items: list[Any] = value.split()
        else:
            items = parse_list(value, self, column)
        values = [parse_score(v, self, column) for v in items]
        if not values:
            raise self.error("empty vector: expected at least one number", column)
        return np.asarray(values, dtype=np.float32)


def parse_score(value: Any, where: RowView, field: str, low: float | None = None, high: float | None = None) -> float:
    """A finite number (ints, floats and numeric strings); optional inclusive range check."""
    if is_missing(value):
        raise where.error("missing score: expected a number, got an empty cell", field)
    if isinstance(value, bool) or not isinstance(value, (int, float, str, np.integer, np.floating)):
        raise where.error(f"non-numeric score: expected a number, got a {type(value).__name__}", field)
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise where.error(f"non-numeric score: expected a number, got {str(value)[:60]!r}", field) from None
    if not math.isfinite(number):
        raise where.error(f"score is {number}: expected a finite number", field)
    if (low is not None and number < low) or (high is not None and number > high):
        raise where.error(f"score {number:g} out of range: expected a value in [{low:g}, {high:g}]", field)
    return number


def parse_list(value: Any, where: RowView, field: str) -> list[Any]:
    """A list cell: a real list (JSON/Parquet) or its text (``[1, 2]``), parsed as JSON or a Python
    literal (``ast.literal_eval``; never ``eval``)."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if is_missing(value):
        raise where.error("missing list: expected a list such as [1, 2, 3], got an empty cell", field)
    if not isinstance(value, str):
        raise where.error(f"expected a list, got a {type(value).__name__}", field)
    text = value.strip()
    try:
        parsed = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise where.error(f"malformed list: expected e.g. [1, 2, 3], got {text[:60]!r}", field) from None
    if not isinstance(parsed, (list, tuple)):
        raise where.error(f"expected a list, got {type(parsed).__name__} {text[:60]!r}", field)
    return list(parsed)


def base_dir_of(table_path: str | Path) -> Path:
    return Path(table_path).resolve().parent


def resolve_path(value: str, base: str | Path) -> str:
    """``value`` as an absolute path; relative paths are taken from ``base`` (a folder)."""
    p = Path(value)
    if value.startswith("~"):
        try:
            p = p.expanduser()
        except RuntimeError:  # ~user that does not exist: keep it literal
            pass
    if not p.is_absolute():
        p = Path(base) / p
    return os.path.normpath(str(p))


def file_exists(path: str) -> bool:
    """True for an existing file; False for odd names (NUL bytes, over-long names) instead of raising."""
    return os.path.isfile(path)


def find_with_extensions(path: str, extensions: Sequence[str] = AUDIO_EXTENSIONS) -> str | None:
    """``path`` if it exists, else the same stem with the first of ``extensions`` that exists."""
    if file_exists(path):
        return path
    stem, _ = os.path.splitext(path)
    for ext in extensions:
        candidate = stem + ext
        if file_exists(candidate):
            return candidate
    return None


def load_npy(path: str | Path, what: str) -> np.ndarray:
    """A ``.npy`` array (never pickled objects); DataError when missing or not a usable array."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} not found: expected a .npy file", file=path)
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{what}: not a readable .npy array ({exc})", file=path) from None
    if not isinstance(array, np.ndarray) or not np.issubdtype(array.dtype, np.number):
        raise DataError(
            f"{what}: expected a numeric array, got dtype {getattr(array, 'dtype', type(array))}", file=path
        )
    return array
