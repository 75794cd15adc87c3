"""Loading tables (CSV, TSV, JSON, JSONL, Parquet) into rows (typed cell access: ``scorecast.data.fields``).

Everything here turns a library's complaint (a decode error, a JSON error, a corrupt Parquet file, a
ragged CSV row) into one :class:`~scorecast.errors.DataError` that names the file, the row and the
field. Readers (``scorecast.data.readers_*``) build items on top of it.

Row numbers are the ones a user sees in the file: for text tables (CSV, TSV, list files, JSONL) the
line on which the record starts (the header, where there is one, is line 1, so the first data row is
row 2); for a JSON list or a Parquet file, the 1-based record number.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scorecast.data.fields import (  # noqa: F401  (re-exported: readers import them from here)
    AUDIO_EXTENSIONS,
    RowView,
    base_dir_of,
    file_exists,
    find_with_extensions,
    is_missing,
    load_npy,
    parse_list,
    parse_score,
    resolve_path,
)
from scorecast.errors import ConfigError, DataError, skipped_row

FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".txt": "text",
    ".lst": "text",
    ".list": "text",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}

csv.field_size_limit(64 * 1024 * 1024)  # long transcripts and responses are legitimate cells


class RowErrors:
    """Where per-row problems go: ``raise`` raises them, ``skip`` drops the row and records why.

    ``notes`` are rows left out by design (not errors), e.g. a MUSHRA anchor without audio; they are
    reported alongside the skipped rows.
    """

    def __init__(self, file: str | Path, on_error: str = "raise") -> None:
        if on_error not in ("raise", "skip"):
            raise ConfigError(f"on_error: expected 'raise' or 'skip', got {on_error!r}")
        self.file = str(file)
        self.on_error = on_error
        self.skipped: list[str] = []
        self.rows: list[dict] = []  # the same, as SkippedRowsWarning rows (file, row, field, reason)
        self._ids: dict[str, int] = {}

    def handle(self, error: DataError) -> None:
        """Raise ``error`` (mode ``raise``) or record it as a skipped row (mode ``skip``)."""
        if self.on_error == "raise":
            raise error
        self.skipped.append(str(error))
        self.rows.append(skipped_row(error, file=self.file))

    def note(self, message: str) -> None:
        self.skipped.append(message)
        self.rows.append(skipped_row(message, file=self.file))

    def claim_id(self, item_id: str, row: int, field: str | None = None) -> None:
        """Register ``item_id`` as read at ``row``; a second row with the same id is a DataError naming both."""
        first = self._ids.get(item_id)
        if first is not None:
            raise DataError(
                f"duplicated id {item_id!r}: first at row {first}, again at row {row}; expected each id once",
                file=self.file,
                row=row,
                field=field,
            )
        self._ids[item_id] = row


@dataclass
class Row:
    number: int  # as the user sees it (see the module docstring)
    values: dict[str, Any]


@dataclass
class Table:
    path: Path
    columns: list[str]
    rows: list[Row] = field(default_factory=list)
    has_header: bool = True  # False: a header-less text table, columns named by position

    def require(self, columns: Sequence[str], what: str = "") -> None:
        """DataError naming the missing columns and listing the columns present."""
        missing = [c for c in columns if c not in self.columns]
        if missing:
            present = ", ".join(repr(c) for c in self.columns) or "(none)"
            needed = f" for {what}" if what else ""
            raise DataError(
                f"missing column{'s' if len(missing) > 1 else ''} {', '.join(repr(c) for c in missing)}{needed}; "
                f"the columns present are: {present}",
                file=self.path,
                field=missing[0],
            )

    def view(self, row: Row) -> RowView:
        return RowView(self.path, row)


def detect_format(path: str | Path, format: str | None = None) -> str:
    if format is not None:
        known = sorted(set(FORMATS.values()))
        if format not in known:
            raise ConfigError(f"table format: expected one of {', '.join(known)}, got {format!r}")
        return format
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise DataError(
            f"cannot tell the table format from the suffix {suffix or '(none)'!r}; expected one of "
            f"{', '.join(sorted(FORMATS))} (or pass format=...)",
            file=path,
        )
    return FORMATS[suffix]


def read_text_file(path: str | Path) -> str:
    """A file's text (UTF-8, an optional BOM stripped); DataError when missing or not UTF-8."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError("file not found", file=path) from None
    except IsADirectoryError:
        raise DataError("expected a file, got a directory", file=path) from None
    except OSError as exc:
        raise DataError(f"cannot read the file: {exc.strerror or exc}", file=path) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(
            f"not UTF-8 text: undecodable byte 0x{data[exc.start]:02x} at byte {exc.start} (line {line})",
            file=path,
            row=line,
        ) from None


def load_table(
    path: str | Path,
    *,
    errors: RowErrors | None = None,
    format: str | None = None,
    sep: str | None = None,
    header: bool | Callable[[list[str]], bool] = True,
    names: Sequence[str] | None = None,
    quoting: int = csv.QUOTE_MINIMAL,
    extra_fields: str = "error",
) -> Table:
    """Load a table as rows of raw values.

    Text tables: ``header`` True (the first record names the columns), False (``names`` gives them,
    else ``1``, ``2``, ...) or a predicate that looks at the first record and says whether it is a
    header. ``extra_fields="ignore"`` drops fields beyond the known columns instead of calling the
    row malformed. A malformed row goes to ``errors`` (raised, or skipped and recorded).
    """
    path = Path(path)
    errors = errors or RowErrors(path, "raise")
    kind = detect_format(path, format)
    if not path.is_file():
        raise DataError("file not found" if not path.exists() else "expected a file, got a directory", file=path)
    if kind == "parquet":
        return _load_parquet(path)
    text = read_text_file(path)
    if kind == "json":
        return _load_json(path, text, errors)
    if kind == "jsonl":
        return _load_jsonl(path, text, errors)
    if sep is None:
        sep = "\t" if kind == "tsv" else "," if kind == "csv" else _sniff_sep(text)
    return _load_delimited(path, text, errors, sep, header, names, quoting, extra_fields)


def _sniff_sep(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return "\t" if "\t" in line else ","
    return ","


def _records(path: Path, text: str, sep: str, quoting: int):
    """Yield (start line, fields) for each non-blank record."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, quoting=quoting)
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(
                f"malformed {'TSV' if sep == chr(9) else 'CSV'} text: {exc}", file=path, row=start
            ) from None
        if not fields or all(not f.strip() for f in fields):
            continue
        yield start, fields


def _load_delimited(path, text, errors, sep, header, names, quoting, extra_fields) -> Table:
    records = _records(path, text, sep, quoting)
    first = next(records, None)
    if first is None:
        raise DataError(
            "the table is empty: expected a header and at least one row"
            if header is True
            else "the file is empty: expected at least one row",
            file=path,
        )
    is_header = header(first[1]) if callable(header) else bool(header)
    if is_header:
        columns = [c.strip() for c in first[1]]
        _check_header(path, first[0], columns)
        pending: list[tuple[int, list[str]]] = []
    else:
        columns = list(names) if names is not None else [str(i + 1) for i in range(len(first[1]))]
        pending = [first]
    table = Table(path, columns, has_header=is_header)
    width = len(columns)

    def add(line: int, fields: list[str]) -> None:
        if len(fields) > width and extra_fields == "ignore":
            fields = fields[:width]
        if len(fields) != width:
            errors.handle(
                DataError(
                    f"malformed row: expected {width} fields ({', '.join(columns)}), got {len(fields)}",
                    file=path,
                    row=line,
                )
            )
            return
        table.rows.append(Row(line, dict(zip(columns, fields))))

    for line, fields in pending:
        add(line, fields)
    for line, fields in records:
        add(line, fields)
    return table


def _check_header(path: Path, line: int, columns: list[str]) -> None:
    if any(not c for c in columns):
        raise DataError(f"malformed header: a column has no name (header: {columns})", file=path, row=line)
    seen: set[str] = set()
    for c in columns:
        if c in seen:
            raise DataError(f"malformed header: column {c!r} appears twice", file=path, row=line, field=c)
        seen.add(c)


def _columns_of(records: list[dict[str, Any]]) -> list[str]:
    columns: dict[str, None] = {}
    for rec in records:
        for key in rec:
            columns.setdefault(key, None)
    return list(columns)


def _load_json(path: Path, text: str, errors: RowErrors) -> Table:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", file=path, row=exc.lineno
        ) from None
    except RecursionError:
        raise DataError("not usable JSON: nested too deeply", file=path) from None
    if isinstance(data, dict) and len(data) == 1 and isinstance(next(iter(data.values())), list):
        data = next(iter(data.values()))  # {"data": [...]} style
    if not isinstance(data, list):
        raise DataError(f"expected a JSON list of records (objects), got a {type(data).__name__}", file=path)
    rows = []
    for i, rec in enumerate(data, start=1):
        if not isinstance(rec, dict):
            errors.handle(
                DataError(f"malformed record: expected a JSON object, got {type(rec).__name__}", file=path, row=i)
            )
            continue
        rows.append(Row(i, {str(k): v for k, v in rec.items()}))
    return Table(path, _columns_of([r.values for r in rows]), rows)


def _load_jsonl(path: Path, text: str, errors: RowErrors) -> Table:
    rows = []
    for i, line in enumerate(text.split("\n"), start=1):  # not splitlines(): U+2028 may sit inside a string
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.handle(DataError(f"malformed JSON line: {exc.msg} (column {exc.colno})", file=path, row=i))
            continue
        except RecursionError:
            errors.handle(DataError("malformed JSON line: nested too deeply", file=path, row=i))
            continue
        if not isinstance(rec, dict):
            errors.handle(
                DataError(f"malformed JSON line: expected an object, got {type(rec).__name__}", file=path, row=i)
            )
            continue
        rows.append(Row(i, {str(k): v for k, v in rec.items()}))
    return Table(path, _columns_of([r.values for r in rows]), rows)


def _load_parquet(path: Path) -> Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        arrow = pq.read_table(path)
        records = arrow.to_pylist()
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(f"cannot read as Parquet: {exc}", file=path) from None
    columns = [str(c) for c in arrow.column_names]
    rows = [Row(i, rec) for i, rec in enumerate(records, start=1)]
    return Table(path, columns, rows)
