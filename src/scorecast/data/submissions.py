"""Challenge submission files, written from item ids and predictions.

    writer = SUBMISSIONS.build("da5401")
    writer.write("submission.csv", ids, {"score": preds}, recipe.targets, round_scores=True)

Every writer clips scores to the target's range ``[low, high]``; ``round_scores`` rounds to the
nearest integer (halves up) after clipping. Registered formats:

* ``xacle``: ``wav_file_name,prediction`` CSV (``pred_col`` renames the second column; the
  baseline's ``evaluate.py`` reads ``pred_score``);
* ``audiomos``: ``answer.txt``, lines ``<wav id>,<MI>,<TA>`` with no header (the id without ``.wav``);
* ``shl``: ``filename,label`` CSV;
* ``da5401``: ``ID,score`` CSV.
"""

from __future__ import annotations

import csv
import math
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from scorecast.config import TargetSpec
from scorecast.errors import ConfigError, DataError
from scorecast.registry import Registry


class SubmissionWriter:
    """Base class: subclasses set ``header`` / ``columns`` or override ``rows``."""

    registry_name: ClassVar[str] = ""

    def write(
        self,
        path: str | Path,
        ids: Sequence[str],
        preds: dict[str, np.ndarray],
        targets: Sequence[TargetSpec],
        round_scores: bool = False,
    ) -> Path:
        """Write the file at ``path`` (parent folders created) and return its path."""
        columns = self.prepare(ids, preds, targets, round_scores)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            if self.header() is not None:
                writer.writerow(self.header())
            for i, item_id in enumerate(ids):
                writer.writerow([self.format_id(str(item_id))] + [_fmt(c[i], round_scores) for c in columns])
        return path

    # -- to override --------------------------------------------------------------------------

    def header(self) -> list[str] | None:
        raise NotImplementedError

    def target_names(self, targets: Sequence[TargetSpec]) -> list[str]:
        """Which targets go in the file, in column order (default: the first target)."""
        if not targets:
            raise ConfigError(f"submission '{self.registry_name}': expected at least one target, got none")
        return [targets[0].name]

    def format_id(self, item_id: str) -> str:
        return item_id

    # -- shared checks ------------------------------------------------------------------------

    def prepare(
        self, ids: Sequence[str], preds: dict[str, np.ndarray], targets: Sequence[TargetSpec], round_scores: bool
    ) -> list[np.ndarray]:
        specs = {t.name: t for t in targets}
        names = self.target_names(targets)
        if len(set(map(str, ids))) != len(ids):
            dup = Counter(map(str, ids)).most_common(1)[0][0]
            raise DataError(f"submission '{self.registry_name}': id {dup!r} appears more than once")
        columns = []
        for name in names:
            if name not in specs:
                raise ConfigError(
                    f"submission '{self.registry_name}': target {name!r} is not among the targets {list(specs)}"
                )
            if name not in preds:
                raise ConfigError(
                    f"submission '{self.registry_name}': expected predictions for target {name!r}, "
                    f"got {', '.join(map(repr, preds)) or 'none'}"
                )
            values = np.asarray(preds[name], dtype=float).reshape(-1)
            if values.size != len(ids):
                raise DataError(
                    f"submission '{self.registry_name}': expected {len(ids)} predictions of {name!r} (one per id), "
                    f"got {values.size}"
                )
            bad = np.flatnonzero(~np.isfinite(values))
            if bad.size:
                raise DataError(
                    f"submission '{self.registry_name}': prediction of {name!r} for id {ids[bad[0]]!r} is "
                    f"{values[bad[0]]} ({bad.size} non-finite); expected numbers"
                )
            spec = specs[name]
            values = np.clip(values, spec.low, spec.high)
            if round_scores:
                values = np.clip(np.floor(values + 0.5), math.ceil(spec.low), math.floor(spec.high))
            columns.append(values)
        return columns


def _fmt(value: float, rounded: bool) -> str:
    return str(int(value)) if rounded else repr(float(value))


SUBMISSIONS: Registry[type[SubmissionWriter]] = Registry("submission")


@SUBMISSIONS.register("xacle")
class XacleSubmission(SubmissionWriter):
    """``wav_file_name,<pred_col>`` CSV, one row per clip."""

    def __init__(self, pred_col: str = "prediction", target: str | None = None) -> None:
        self.pred_col = pred_col
        self.target = target

    def header(self) -> list[str]:
        return ["wav_file_name", self.pred_col]

    def target_names(self, targets: Sequence[TargetSpec]) -> list[str]:
        return [self.target] if self.target else super().target_names(targets)


@SUBMISSIONS.register("audiomos")
class AudioMOSSubmission(SubmissionWriter):
    """AudioMOS 2025 track 1 ``answer.txt``: ``<wav id>,<MI>,<TA>`` per line, no header."""

    def __init__(self, columns: Sequence[str] = ("MI", "TA")) -> None:
        if isinstance(columns, str) or len(columns) != 2:
            raise ConfigError(
                f"option columns: expected the two target names (music impression, text alignment), got {columns!r}"
            )
        self.columns = list(columns)

    def header(self) -> None:
        return None

    def target_names(self, targets: Sequence[TargetSpec]) -> list[str]:
        have = [t.name for t in targets]
        missing = [c for c in self.columns if c not in have]
        if missing:
            raise ConfigError(f"submission 'audiomos': expected targets {self.columns}, got {have} (missing {missing})")
        return self.columns

    def format_id(self, item_id: str) -> str:
        stem, ext = os.path.splitext(os.path.basename(item_id))
        return stem if ext.lower() == ".wav" else os.path.basename(item_id)


@SUBMISSIONS.register("shl")
class SHLSubmission(SubmissionWriter):
    """``filename,label`` CSV."""

    def __init__(self, target: str | None = None) -> None:
        self.target = target

    def header(self) -> list[str]:
        return ["filename", "label"]

    def target_names(self, targets: Sequence[TargetSpec]) -> list[str]:
        return [self.target] if self.target else super().target_names(targets)


@SUBMISSIONS.register("da5401")
class DA5401Submission(SubmissionWriter):
    """``ID,score`` CSV (``round_scores`` for integer scores)."""

    def __init__(self, target: str | None = None) -> None:
        self.target = target

    def header(self) -> list[str]:
        return ["ID", "score"]

    def target_names(self, targets: Sequence[TargetSpec]) -> list[str]:
        return [self.target] if self.target else super().target_names(targets)
