"""Readers: each turns one kind of table or challenge list into an :class:`ItemSet`.

    reader = READERS.build("xacle", audio_dir="data/xacle")
    items = reader.read("train_average.csv", on_error="skip")

or, from a recipe's ``data`` section, ``read_items(recipe.data)``.

Registered readers (options are constructor keyword arguments; see each class):

========================  =====================================================================
``table``                 any CSV/TSV/JSON/JSONL/Parquet table with a column mapping
``xacle``                 XACLE ``wav_file_name,text,average_score`` or ``wav,caption,MOS`` lists
``xacle-listeners``       XACLE per-listener lists, aggregated per clip
``audiomos``              AudioMOS 2025 track 1 / MusicEval ``filename,overall,textual`` lists
``shl``                   SHL grammar scoring ``filename,label[,transcript]``
``da5401``                DA5401 metric matching JSON/JSONL records + metric-name embeddings
``stsb``                  STS Benchmark tab-separated files
``mushra``                codec MUSHRA ratings (per-listener lists)
``yourtts``               YourTTS naturalness / speaker-similarity ratings (long format; audio pairs)
========================  =====================================================================

Bad input raises :class:`~scorecast.errors.DataError` naming file, row and field. With
``on_error="skip"`` a bad row is dropped instead and its message kept in ``ItemSet.skipped``
(a warning says how many); problems with the whole file (missing column, unreadable file) always raise.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import ClassVar

from scorecast.config import DataConfig
from scorecast.data.items import Item, ItemSet
from scorecast.data.table import RowErrors
from scorecast.errors import ConfigError, DataError
from scorecast.registry import Registry


class Reader:
    """Base class: subclasses implement ``_read(path, errors) -> list[Item]``.

    ``read`` checks the arguments, runs ``_read``, refuses an empty result, and reports skipped rows.
    """

    registry_name: ClassVar[str] = ""
    #: the targets this reader fills (in order); a reader may set it per instance
    target_names: list[str] = []

    def read(self, path: str | Path, on_error: str = "raise") -> ItemSet:
        errors = RowErrors(path, on_error)
        path = Path(path)
        if not path.exists():
            raise DataError(f"file not found (reader '{self.registry_name}')", file=path)
        if not path.is_file():
            raise DataError(f"expected a file, got a directory (reader '{self.registry_name}')", file=path)
        items = self._read(path, errors)
        if not items:
            detail = f"; {len(errors.skipped)} rows left out, the first: {errors.skipped[0]}" if errors.skipped else ""
            raise DataError(f"no items read (reader '{self.registry_name}'){detail}", file=path)
        if errors.skipped:
            from scorecast.errors import SkippedRowsWarning

            warnings.warn(
                SkippedRowsWarning(
                    f"{path}: left out {len(errors.skipped)} row(s) (all in ItemSet.skipped; the CLI writes "
                    f"skipped.csv); the first: {errors.skipped[0]}",
                    errors.rows,
                ),
                stacklevel=2,
            )
        present = [t for t in self.target_names if any(t in item.targets for item in items)]
        return ItemSet(items, source=str(path), target_names=present, skipped=list(errors.skipped))

    def _read(self, path: Path, errors: RowErrors) -> list[Item]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.registry_name!r})"


READERS: Registry[type[Reader]] = Registry("reader")


def read_items(config: DataConfig) -> ItemSet:
    """Build the reader named in ``config`` with its options and read ``config.path``."""
    if not config.path:
        raise ConfigError(f"data.path: expected the path of the table to read (reader '{config.reader}'), got none")
    reader = READERS.build(config.reader, **config.options)
    return reader.read(config.path, on_error=config.on_error)


def check_choice(name: str, value: object, choices: tuple[object, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"option {name}: expected one of {', '.join(map(repr, choices))}, got {value!r}")


def as_field_map(name: str, value: object) -> dict[str, str]:
    """An option naming columns: a string, a list of strings or a mapping, as {key: value} strings."""
    if value is None:
        return {}
    if isinstance(value, str):
        return {value: value}
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return {v: v for v in value}
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return dict(value)
    raise ConfigError(f"option {name}: expected a column name, a list of names or a mapping of names, got {value!r}")


# Register the readers (each module adds itself to READERS on import).
from scorecast.data.readers import audiomos, da5401, mushra, shl, stsb, table, xacle, yourtts  # noqa: E402, F401
