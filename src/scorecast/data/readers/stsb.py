"""STS Benchmark files (``sts-train.csv`` ...): tab-separated, no header, quoting off.

Fields: genre, file, year, id, score (0-5), sentence1, sentence2, and on some rows trailing
attribution fields, which are ignored. Items: id = ``{file}-{year}-{id}`` (unique within each
official file), ``texts`` sentence1 and sentence2, target ``score``, ``group`` = genre,
``meta`` file and year.
"""

from __future__ import annotations

import csv
from pathlib import Path

from scorecast.data.items import Item
from scorecast.data.readers import READERS, Reader
from scorecast.data.table import RowErrors, load_table
from scorecast.errors import DataError

LOW, HIGH = 0.0, 5.0
COLUMNS = ["genre", "file", "year", "id", "score", "sentence1", "sentence2"]


@READERS.register("stsb")
class STSBReader(Reader):
    """STS Benchmark (see the module docstring). ``labelled=False`` allows an empty score field."""

    target_names = ["score"]

    def __init__(self, labelled: bool = True) -> None:
        self.labelled = bool(labelled)

    def _read(self, path: Path, errors: RowErrors) -> list[Item]:
        table = load_table(
            path,
            errors=errors,
            format="tsv",
            header=False,
            names=COLUMNS,
            quoting=csv.QUOTE_NONE,
            extra_fields="ignore",
        )
        items = []
        for row in table.rows:
            view = table.view(row)
            try:
                file, year, number = view.ident("file"), view.ident("year"), view.ident("id")
                item_id = f"{file}-{year}-{number}"
                errors.claim_id(item_id, view.number, "id")
                item = Item(
                    id=item_id,
                    texts={"sentence1": view.text("sentence1"), "sentence2": view.text("sentence2")},
                    group=view.ident("genre"),
                    meta={"row": view.number, "file": file, "year": year},
                )
                if self.labelled or not view.missing("score"):
                    item.targets["score"] = view.score("score", LOW, HIGH)
            except DataError as exc:
                errors.handle(exc)
                continue
            items.append(item)
        return items
