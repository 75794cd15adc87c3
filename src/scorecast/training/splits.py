"""Cross-validation splits: k-fold, stratified on binned scores, grouped, stratified-grouped, repeated.

Built on scikit-learn's splitters. Groups come from ``item.group`` (``cv.group_by: group`` or unset)
or from a meta field (``cv.group_by: speaker``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scorecast.config import CVConfig
from scorecast.data.items import ItemSet
from scorecast.errors import ConfigError


@dataclass(frozen=True)
class Fold:
    """One split: indices into the item list; ``repeat`` counts repetitions with other shuffles."""

    fold: int
    repeat: int
    train: np.ndarray
    val: np.ndarray


def item_groups(items: ItemSet, group_by: str | None) -> list[str]:
    """The group of every item: ``item.group`` (``group_by`` None or ``group``) or ``item.meta[group_by]``."""
    out = []
    for row, item in enumerate(items.items):
        if group_by in (None, "group"):
            value = item.group
            field = "group"
        else:
            value = item.meta.get(group_by)
            field = group_by
        if value is None or (isinstance(value, float) and np.isnan(value)):
            raise ConfigError(
                f"cv.group_by: expected every item to have a '{field}' value for grouped CV; "
                f"item '{item.id}' (item {row + 1} of {items.source or 'the data'}) has none"
            )
        out.append(str(value))
    return out


def stratify_labels(values: np.ndarray, bins: int) -> np.ndarray:
    """Quantile bins of scores (N,) -> (N,) int labels (missing scores get their own label)."""
    values = np.asarray(values, dtype=float)
    labels = np.full(len(values), -1, dtype=int)
    ok = np.isfinite(values)
    if ok.sum() == 0:
        return labels + 1
    edges = np.unique(np.quantile(values[ok], np.linspace(0, 1, bins + 1)[1:-1]))
    labels[ok] = np.searchsorted(edges, values[ok], side="right")
    return labels


def make_folds(cv: CVConfig, items: ItemSet, targets: np.ndarray, seed: int = 0) -> list[Fold]:
    """All folds of all repeats. ``targets`` (N, T): the first target is stratified on.

    Repeat ``r`` shuffles with seed ``seed + r``.
    """
    from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

    n = len(items)
    if cv.folds < 2:
        raise ConfigError(f"cv.folds: expected at least 2 folds, got {cv.folds}")
    if cv.repeats < 1:
        raise ConfigError(f"cv.repeats: expected at least 1, got {cv.repeats}")
    if n < cv.folds:
        raise ConfigError(f"cv.folds: {cv.folds} folds need at least {cv.folds} items, got {n}")
    grouped = cv.kind in ("group", "stratified-group")
    groups = np.asarray(item_groups(items, cv.group_by)) if grouped else None
    if groups is not None:
        n_groups = len(np.unique(groups))
        if n_groups < cv.folds:
            raise ConfigError(
                f"cv: {cv.kind} CV with {cv.folds} folds needs at least {cv.folds} distinct groups "
                f"(by '{cv.group_by or 'group'}'), got {n_groups}; lower cv.folds or group by another field"
            )
    first = np.asarray(targets, dtype=float).reshape(n, -1)[:, 0]
    labels = stratify_labels(first, cv.stratify_bins)
    folds: list[Fold] = []
    x = np.zeros((n, 1))
    for r in range(cv.repeats):
        rs = seed + r
        if cv.kind == "kfold":
            splits = KFold(cv.folds, shuffle=True, random_state=rs).split(x)
        elif cv.kind == "stratified":
            splits = StratifiedKFold(cv.folds, shuffle=True, random_state=rs).split(x, labels)
        elif cv.kind == "group":
            splits = GroupKFold(cv.folds, shuffle=True, random_state=rs).split(x, groups=groups)
        else:
            splits = StratifiedGroupKFold(cv.folds, shuffle=True, random_state=rs).split(x, labels, groups)
        for k, (tr, va) in enumerate(splits):
            folds.append(Fold(k, r, np.sort(tr), np.sort(va)))
    return folds


def holdout_split(
    n: int, fraction: float, seed: int, labels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) of a random ``fraction`` held out (stratified on ``labels`` where given)."""
    if fraction <= 0:
        return np.arange(n), np.arange(0)
    if not fraction < 1:
        raise ConfigError(f"training.val_fraction: expected a fraction in [0, 1), got {fraction}")
    n_val = max(1, int(round(fraction * n)))
    if n - n_val < 1:
        raise ConfigError(f"training.val_fraction={fraction} leaves no training items out of {n}")
    from sklearn.model_selection import train_test_split

    idx = np.arange(n)
    strat = None
    if labels is not None:
        _, counts = np.unique(labels, return_counts=True)
        if counts.min() >= 2 and len(counts) <= n_val:
            strat = labels
    tr, va = train_test_split(idx, test_size=n_val, random_state=seed, stratify=strat)
    return np.sort(tr), np.sort(va)
