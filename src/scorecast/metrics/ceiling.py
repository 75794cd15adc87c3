"""The data's own ceiling: split-half agreement of the listeners, Spearman-Brown corrected.

Split the listeners (rater ids) at random into two halves; score every item by the mean of each
half's ratings (items rated by both halves); correlate the two half scores across items (clip level)
and across systems (each system's mean of its items' half scores); correct each correlation to the
full panel with Spearman-Brown, ``2 r / (1 + r)``. Averaged over ``splits`` random splits, this is
about as well as any scorer can agree with the mean human score of this panel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from scorecast.data.items import Ratings
from scorecast.errors import DataError

CEILING_METRICS = ("srcc", "lcc")


def spearman_brown(r: float, factor: float = 2.0) -> float:
    """The reliability of a panel ``factor`` times as large: ``factor r / (1 + (factor - 1) r)``."""
    return float(factor * r / (1.0 + (factor - 1.0) * r)) if np.isfinite(r) else float("nan")


def _raters(ratings: Sequence[Ratings | None]) -> list[str]:
    found = sorted({r for rt in ratings if rt is not None and rt.raters for r in rt.raters})
    if not found:
        raise DataError("split-half ceiling: expected per-listener ratings with rater ids, got none")
    return found


def half_scores(ratings: Sequence[Ratings | None], half_of: Mapping[str, int]) -> np.ndarray:
    """(N, 2) each item's mean rating from half 0 and from half 1 of the listeners (NaN where a half
    did not rate it)."""
    flat = _Flat(ratings)
    return flat.half_scores(np.array([half_of[r] for r in flat.raters]))


class _Flat:
    """Every (item, rater, value) of ``ratings`` as flat arrays, for fast repeated splits."""

    def __init__(self, ratings: Sequence[Ratings | None]) -> None:
        self.n = len(ratings)
        self.raters = _raters(ratings)
        index = {r: k for k, r in enumerate(self.raters)}
        item, rater, value = [], [], []
        for i, rt in enumerate(ratings):
            if rt is not None and rt.raters:
                item += [i] * rt.count
                rater += [index[r] for r in rt.raters]
                value += [float(v) for v in rt.values]
        self.item, self.rater, self.value = np.array(item, int), np.array(rater, int), np.array(value, float)

    def half_scores(self, half: np.ndarray) -> np.ndarray:
        """(N, 2) from ``half`` (L,) 0/1 per rater index."""
        h = half[self.rater]
        out = np.full((self.n, 2), np.nan)
        for k in (0, 1):
            sel = h == k
            sums = np.bincount(self.item[sel], self.value[sel], minlength=self.n)
            counts = np.bincount(self.item[sel], minlength=self.n)
            np.divide(sums, counts, out=out[:, k], where=counts > 0)
        return out


def split_half_once(
    ratings: Sequence[Ratings | None], half_of: Mapping[str, int], groups: Sequence[object] | None = None
) -> dict[str, dict[str, float]]:
    """Spearman-Brown corrected clip-level (and, with ``groups``, system-level) correlations of one split."""
    return _correlate(half_scores(ratings, half_of), groups)


def _correlate(scores: np.ndarray, groups: Sequence[object] | None) -> dict[str, dict[str, float]]:
    from scorecast.metrics.functional import METRICS

    both = np.isfinite(scores).all(axis=1)
    out: dict[str, dict[str, float]] = {}
    if both.sum() >= 3:
        out["clip"] = {
            m: spearman_brown(float(METRICS.get(m)(scores[both, 0], scores[both, 1]))) for m in CEILING_METRICS
        }
    if groups is not None:
        _, codes = np.unique(np.asarray([str(x) for x in groups], dtype=object), return_inverse=True)
        codes = codes[both]
        present = np.bincount(codes) > 0
        if present.sum() >= 3:
            counts = np.bincount(codes)[present]
            sys_scores = np.stack([np.bincount(codes, scores[both, k])[present] / counts for k in (0, 1)], axis=1)
            out["system"] = {
                m: spearman_brown(float(METRICS.get(m)(sys_scores[:, 0], sys_scores[:, 1]))) for m in CEILING_METRICS
            }
    return out


def split_half_ceiling(
    ratings: Sequence[Ratings | None], groups: Sequence[object] | None = None, *, splits: int = 200, seed: int = 0
) -> dict[str, object]:
    """Mean over ``splits`` random halvings of the listeners (half of them, rounded down, in half 0,
    drawn by ``numpy.random.default_rng(seed).permutation`` per split) of :func:`split_half_once`:
    ``{"listeners", "splits", "items", "clip": {srcc, lcc}, "system": {srcc, lcc}, "n_systems"}``."""
    flat = _Flat(ratings)
    raters = flat.raters
    if len(raters) < 2:
        raise DataError(f"split-half ceiling: expected at least 2 listeners, got {len(raters)}")
    rng = np.random.default_rng(seed)
    runs: list[dict[str, dict[str, float]]] = []
    for _ in range(int(splits)):
        order = rng.permutation(len(raters))
        half = np.empty(len(raters), int)
        half[order] = (np.arange(len(raters)) >= len(raters) // 2).astype(int)
        runs.append(_correlate(flat.half_scores(half), groups))
    out: dict[str, object] = {"listeners": len(raters), "splits": int(splits)}
    out["items"] = int(sum(1 for r in ratings if r is not None and r.raters))
    for level in ("clip", "system"):
        values = [r[level] for r in runs if level in r]
        if values:
            out[level] = {m: float(np.nanmean([v[m] for v in values])) for m in CEILING_METRICS}
    if groups is not None:
        out["n_systems"] = len({str(g) for g in groups})
    return out


def item_ceilings(items, target_names: Sequence[str], splits: int = 200, seed: int = 0) -> dict[str, dict]:
    """{target: split_half_ceiling(...)} for each target whose ratings carry rater ids on at least
    two listeners (groups = the items' groups where every item has one); targets without are left out."""
    out: dict[str, dict] = {}
    items = list(items)
    groups = [item.group for item in items]
    use_groups = groups if groups and all(g is not None for g in groups) else None
    for name in target_names:
        ratings = [item.ratings.get(name) for item in items]
        raters = {r for rt in ratings if rt is not None and rt.raters for r in rt.raters}
        if len(raters) >= 2:
            out[name] = split_half_ceiling(ratings, use_groups, splits=splits, seed=seed)
    return out
