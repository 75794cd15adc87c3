"""The errors scorecast raises: each says what was expected, what was got, and where."""

from __future__ import annotations

from pathlib import Path


class ScorecastError(Exception):
    """Base class of every error scorecast raises on purpose (bad input, bad config, bad bundle)."""


class ConfigError(ScorecastError):
    """A recipe, a flag or an argument is invalid."""


class DataError(ScorecastError):
    """Bad data in a table or a file. Names the file, the row and the field where known."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        row: int | None = None,
        field: str | None = None,
    ) -> None:
        self.file = str(file) if file is not None else None
        self.row = row
        self.field = field
        where = []
        if self.file is not None:
            where.append(f"file {self.file}")
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field '{field}'")
        self.message = message
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class AudioError(DataError):
    """An audio file cannot be read, or holds no usable samples."""


class CacheError(ScorecastError):
    """The embedding cache is unusable (not a corrupt entry: those are recomputed)."""


class BundleError(ScorecastError):
    """A scorer bundle is missing, altered, or does not match this installation."""


class SkippedRowsWarning(UserWarning):
    """Rows or items left out (``on_error: skip``). ``rows`` holds one dict per left-out row or item:
    ``{"file", "row", "field", "id", "reason"}`` (None where unknown), so a caller (the CLI) can list
    them all, e.g. in a run folder's ``skipped.csv``."""

    def __init__(self, message: str, rows: list[dict] | None = None) -> None:
        super().__init__(message)
        self.rows = list(rows or [])


def skipped_row(reason: str | Exception, *, file=None, row=None, field=None, id=None) -> dict:
    """One entry of :attr:`SkippedRowsWarning.rows`; a DataError gives its own file, row and field."""
    if isinstance(reason, DataError):
        file, row, field = reason.file or file, reason.row or row, reason.field or field
        reason = reason.message
    return {"file": None if file is None else str(file), "row": row, "field": field, "id": id, "reason": str(reason)}
