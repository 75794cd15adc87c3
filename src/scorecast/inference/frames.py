"""Predictions as a table: the one layout shared by ``scorecast predict``, ``Predictions.frame()`` and
run folders (``oof.csv``, ``val.csv``, ``test.csv``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def prediction_frame(
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
    """A DataFrame: id, [fold], [group], then per target [<target> (truth)] and <pred_prefix><target>,
    then std.<target> per target where ``std`` is given. ``mean``, ``std`` and ``truth`` are (N, T) in target units."""
    import pandas as pd

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
    return pd.DataFrame(cols)
