"""Sample weights against score imbalance: (square-root) inverse frequency of score bins.

As in the DA5401 work: an item whose score bin holds ``n`` items gets ``1 / sqrt(n)``
(``sqrt-inverse``) or ``1 / n`` (``inverse``); weights are normalised to mean 1 over the items, then
clipped to ``[min, max]`` so no rare bin dominates and no common bin vanishes.
"""

from __future__ import annotations

import numpy as np

from scorecast.config import SampleWeights, TargetSpec
from scorecast.errors import ConfigError


def score_bins(values: np.ndarray, target: TargetSpec, bins: int | None = None) -> np.ndarray:
    """Bin index of each score (N,) -> (N,) int; -1 where the score is missing (NaN).

    Without ``bins``, the bins are the target's levels (``low, low+step, ..., high``; a score goes
    to the nearest level); with ``bins``, ``bins`` equal-width bins over ``[low, high]``.
    """
    values = np.asarray(values, dtype=float)
    out = np.full(values.shape, -1, dtype=int)
    ok = np.isfinite(values)
    clipped = np.clip(values[ok], target.low, target.high)
    if bins is None:
        out[ok] = np.clip(np.rint((clipped - target.low) / target.step), 0, target.num_bins - 1).astype(int)
    else:
        if bins < 1:
            raise ConfigError(f"sample weights: expected bins >= 1, got {bins}")
        width = (target.high - target.low) / bins
        out[ok] = np.clip(np.floor((clipped - target.low) / width), 0, bins - 1).astype(int)
    return out


def sample_weights(values: np.ndarray, target: TargetSpec, cfg: SampleWeights) -> np.ndarray | None:
    """(N,) weights for the scores ``values`` of one target, or None when ``cfg.kind`` is ``none``.

    Items with a missing score get weight 1 (before normalisation).
    """
    if cfg.kind == "none":
        return None
    if not 0 < cfg.min <= cfg.max:
        raise ConfigError(f"sample weights: expected 0 < min <= max, got min={cfg.min}, max={cfg.max}")
    idx = score_bins(values, target, cfg.bins)
    n_bins = cfg.bins if cfg.bins is not None else target.num_bins
    counts = np.bincount(idx[idx >= 0], minlength=n_bins).astype(float)
    weights = np.ones(len(idx), dtype=float)
    have = idx >= 0
    power = 0.5 if cfg.kind == "sqrt-inverse" else 1.0
    weights[have] = counts[idx[have]] ** -power
    weights /= weights.mean()
    return np.clip(weights, cfg.min, cfg.max)
