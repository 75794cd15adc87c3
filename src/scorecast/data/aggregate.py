"""Per-rater ratings: collecting them per item, and turning them into targets and distributions.

A :class:`~scorecast.data.items.Ratings` holds one item's ratings of one target (values and rater
ids) and gives the mean, the standard deviation (ddof=1), the count and a histogram. Readers use
:class:`RatingCollector` for long tables (one row per rater); training uses
:func:`rating_distributions` for distribution targets (``extra["target_dist"]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from scorecast.config import TargetSpec
from scorecast.data.items import Item, Ratings
from scorecast.errors import DataError


class RatingCollector:
    """Collects (item, rater, score) triples from a long table; one rater rating one item twice is an
    error naming both rows."""

    def __init__(self, file: str | Path) -> None:
        self.file = str(file)
        self._values: dict[str, list[float]] = {}
        self._raters: dict[str, list[str]] = {}
        self._rows: dict[tuple[str, str], int] = {}

    def add(self, item_id: str, score: float, rater: str, row: int, field: str | None = None) -> None:
        key = (item_id, rater)
        first = self._rows.get(key)
        if first is not None:
            raise DataError(
                f"rater {rater!r} rated item {item_id!r} twice: first at row {first}, again at row {row}",
                file=self.file,
                row=row,
                field=field,
            )
        self._rows[key] = row
        self._values.setdefault(item_id, []).append(float(score))
        self._raters.setdefault(item_id, []).append(rater)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._values

    def ratings(self, item_id: str) -> Ratings:
        return Ratings(np.asarray(self._values[item_id], dtype=float), list(self._raters[item_id]))


def make_ratings(values: Sequence[float], raters: Sequence[object] | None = None) -> Ratings:
    """A Ratings from values (and rater ids, converted to strings); lengths must agree."""
    array = np.asarray(values, dtype=float).reshape(-1)
    if raters is not None and len(raters) != len(array):
        raise ValueError(f"expected one rater id per rating, got {len(raters)} ids for {len(array)} ratings")
    return Ratings(array, [str(r) for r in raters] if raters is not None else None)


def target_bin_edges(spec: TargetSpec) -> np.ndarray:
    """(K+1,) edges of the target's score levels: level centres low, low+step, ..., high ± step/2."""
    centers = spec.bin_centers()
    return np.concatenate([centers - spec.step / 2, centers[-1:] + spec.step / 2])


def rating_distributions(items: Sequence[Item], spec: TargetSpec) -> np.ndarray:
    """(N, K) per-item distributions over the target's levels, each row summing to 1.

    Items with per-rater ratings give their normalised histogram; items with only an aggregate
    score give a one-hot row at that score's level; items with neither give a row of NaN.
    """
    edges = target_bin_edges(spec)
    k = len(edges) - 1
    out = np.full((len(items), k), np.nan)
    for i, item in enumerate(items):
        ratings = item.ratings.get(spec.name)
        if ratings is not None and ratings.count:
            out[i] = ratings.histogram(edges)
        elif spec.name in item.targets:
            out[i] = Ratings(np.array([item.targets[spec.name]])).histogram(edges)
    return out
