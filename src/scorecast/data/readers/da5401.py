"""DA5401 2025 metric matching: JSON records (a list, or JSONL) of ``metric_name``,
``system_prompt``, ``user_prompt``, ``response`` and ``score`` (0-10; absent in the test set;
numbers or numeric strings such as "9.0").

Each record's metric name is looked up in ``metric_names`` (a JSON list of names; default
``metric_names.json`` beside the records) to pick its row of ``metric_embeddings`` (a ``.npy``
(names x D) array; default ``metric_name_embeddings.npy`` beside the records) into
``vectors["metric"]``. Items: id = the record's ``ID``/``id`` if present, else its 1-based position;
``texts`` system_prompt (may be empty or null: kept as ""), user_prompt and response (must not be
empty); target ``score``; ``group`` and ``meta["metric_name"]`` = the metric name.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from scorecast.data.items import Item
from scorecast.data.readers import READERS, Reader
from scorecast.data.table import RowErrors, load_npy, load_table, read_text_file
from scorecast.errors import DataError

LOW, HIGH = 0.0, 10.0
FIELDS = ["metric_name", "system_prompt", "user_prompt", "response"]


def load_metric_table(names_path: str | Path, embeddings_path: str | Path) -> tuple[list[str], np.ndarray]:
    """(names, (len(names), D) float32 embeddings), checked against each other."""
    text = read_text_file(names_path)
    try:
        names = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise DataError(f"metric names: not valid JSON ({exc})", file=names_path) from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise DataError("metric names: expected a JSON list of strings", file=names_path)
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise DataError(f"metric names: {dup!r} appears more than once", file=names_path)
    embeddings = load_npy(embeddings_path, "metric embeddings")
    if embeddings.ndim != 2 or embeddings.shape[0] != len(names):
        raise DataError(
            f"metric embeddings: expected shape ({len(names)}, D) to match the {len(names)} metric names, "
            f"got {embeddings.shape}",
            file=embeddings_path,
        )
    if not np.all(np.isfinite(embeddings)):
        raise DataError("metric embeddings: contain NaN or infinite values", file=embeddings_path)
    return names, embeddings.astype(np.float32)


def read_da5401_scores(path: str | Path) -> np.ndarray:
    """The partial set's ``y_train_scores.npy``: (N,) float scores in [0, 10], in record order."""
    scores = load_npy(path, "scores")
    if scores.ndim != 1:
        raise DataError(f"scores: expected a 1-D array, got shape {scores.shape}", file=path)
    scores = scores.astype(float)
    bad = np.flatnonzero(~np.isfinite(scores) | (scores < LOW) | (scores > HIGH))
    if bad.size:
        raise DataError(
            f"scores: expected finite values in [{LOW:g}, {HIGH:g}], got {scores[bad[0]]} at index {bad[0]} "
            f"({bad.size} such values)",
            file=path,
        )
    return scores


@READERS.register("da5401")
class DA5401Reader(Reader):
    """DA5401 records (see the module docstring). ``labelled``: None (default) reads scores when the
    records have them; True requires them; False ignores them."""

    target_names = ["score"]

    def __init__(
        self,
        metric_names: str | None = None,
        metric_embeddings: str | None = None,
        labelled: bool | None = None,
        format: str | None = None,
    ) -> None:
        self.metric_names = metric_names
        self.metric_embeddings = metric_embeddings
        self.labelled = labelled
        self.format = format

    def _read(self, path: Path, errors: RowErrors) -> list[Item]:
        fmt = self.format or ("json" if path.suffix.lower() not in (".jsonl", ".ndjson", ".parquet") else None)
        table = load_table(path, errors=errors, format=fmt)
        names, embeddings = load_metric_table(
            self.metric_names or path.parent / "metric_names.json",
            self.metric_embeddings or path.parent / "metric_name_embeddings.npy",
        )
        index = {n: i for i, n in enumerate(names)}
        labelled = "score" in table.columns if self.labelled is None else self.labelled
        table.require(FIELDS + (["score"] if labelled else []), "DA5401 records")
        id_col = next((c for c in ("ID", "id") if c in table.columns), None)
        items = []
        for row in table.rows:
            view = table.view(row)
            try:
                item_id = view.ident(id_col) if id_col else str(view.number)
                errors.claim_id(item_id, view.number, id_col)
                metric = view.text("metric_name")
                if metric not in index:
                    raise view.error(
                        f"unknown metric name {metric!r}: not among the {len(names)} names in the metric table",
                        "metric_name",
                    )
                item = Item(
                    id=item_id,
                    texts={
                        "system_prompt": view.text("system_prompt", allow_empty=True),
                        "user_prompt": view.text("user_prompt"),
                        "response": view.text("response"),
                    },
                    vectors={"metric": embeddings[index[metric]]},
                    group=metric,
                    meta={"row": view.number, "metric_name": metric},
                )
                if labelled:
                    item.targets["score"] = view.score("score", LOW, HIGH)
            except DataError as exc:
                errors.handle(exc)
                continue
            items.append(item)
        return items
