"""Synthetic negatives: mismatched pairs given a low score (as in the DA5401 metric-matching work).

A ratio of the training items is copied with one feature (``Negatives.swap``; by default the last
encoder's feature, e.g. the metric-name embedding) replaced by another item's, and the copy's
targets set to ``Negatives.score`` (by default each target's low end). The partner item has a
different id and, where possible, a different group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scorecast.config import Negatives, TargetSpec
from scorecast.data.features import FeatureSet
from scorecast.errors import ConfigError


@dataclass
class NegativeSet:
    """The synthetic items: their features (ids ``<id>~neg<k>``), targets (M, T), and which items made them."""

    features: FeatureSet
    targets: np.ndarray
    source: np.ndarray  # (M,) index of the item each copy keeps
    partner: np.ndarray  # (M,) index of the item whose feature was swapped in


def make_negatives(
    features: FeatureSet,
    cfg: Negatives,
    targets: list[TargetSpec],
    *,
    groups: list[str | None] | None = None,
    rng: np.random.Generator | None = None,
) -> NegativeSet | None:
    """Synthetic negatives for the items of ``features`` (a training fold), or None when ratio is 0."""
    if cfg.ratio <= 0:
        return None
    n = len(features)
    names = features.names
    swap = cfg.swap or (names[-1] if names else None)
    if swap is None or swap not in features.pooled:
        raise ConfigError(f"training.negatives.swap: expected one of the features {names}, got '{cfg.swap}'")
    if len(names) < 2:
        raise ConfigError(
            f"training.negatives: swapping '{swap}' needs at least two features (got only {names}); "
            "a negative keeps the other features and takes this one from another item"
        )
    if n < 2:
        raise ConfigError(f"training.negatives: need at least 2 training items to make pairs, got {n}")
    rng = rng if rng is not None else np.random.default_rng(0)
    m = int(round(cfg.ratio * n))
    if m == 0:
        return None
    source = rng.choice(n, size=m, replace=m > n)
    ids = np.asarray(features.ids, dtype=object)
    grp = np.asarray(groups if groups is not None else [None] * n, dtype=object)
    partner = np.empty(m, dtype=int)
    for k, i in enumerate(source):
        other = np.flatnonzero(ids != ids[i])
        if len(other) == 0:
            raise ConfigError("training.negatives: every training item has the same id; cannot make mismatched pairs")
        if grp[i] is not None:
            other_group = other[grp[other] != grp[i]]
            if len(other_group):
                other = other_group
        partner[k] = rng.choice(other)
    pooled = {name: arr[source].copy() for name, arr in features.pooled.items()}
    pooled[swap] = features.pooled[swap][partner].copy()
    sequences = {name: [seqs[i] for i in source] for name, seqs in features.sequences.items()}
    if swap in sequences:
        sequences[swap] = [features.sequences[swap][j] for j in partner]
    neg_ids = [f"{features.ids[i]}~neg{k}" for k, i in enumerate(source)]
    score = np.array([cfg.score if cfg.score is not None else t.low for t in targets], dtype=float)
    tgt = np.tile(score, (m, 1))
    return NegativeSet(FeatureSet(neg_ids, pooled, sequences), tgt, source, partner)
