"""Training data: a torch Dataset over a FeatureSet, its collate function, feature standardisation,
and per-rater target distributions.

A batch is a dict: ``pooled`` {name: (B, D)}, ``sequences`` {name: (B, T_max, D)} or None, ``masks``
{name: (B, T_max) bool, True at real frames} or None, ``target`` (B, T) (NaN = missing), ``weight``
(B,) or None, ``target_dist`` (B, T, K) or None, ``listener`` (B,) listener index or None, ``index`` (B,) the item's position in the dataset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from scorecast.config import TargetSpec
from scorecast.data.features import FeatureSet
from scorecast.data.items import ItemSet
from scorecast.errors import ConfigError, DataError

_EPS = 1e-6


def _require_pooled(option: str, names: Sequence[str], features: FeatureSet) -> None:
    """ConfigError naming ``option`` where some of ``names`` are not pooled features of ``features``."""
    missing = [n for n in names if n not in features.pooled]
    if missing:
        raise ConfigError(
            f"{option}: feature(s) {', '.join(missing)} are not among the pooled features: "
            f"{', '.join(features.pooled) or '(none)'}"
        )


@dataclass
class FeatureScaler:
    """Per-dimension mean/std of each pooled feature (and of each sequence feature's frames),
    computed on a training fold and applied to everything the member sees afterwards."""

    mean: dict[str, np.ndarray] = field(default_factory=dict)
    std: dict[str, np.ndarray] = field(default_factory=dict)
    seq_mean: dict[str, np.ndarray] = field(default_factory=dict)
    seq_std: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def fit(
        cls, features: FeatureSet, together: Sequence[Sequence[str]] = (), skip: Sequence[str] = ()
    ) -> FeatureScaler:
        """Statistics per pooled feature; the features of each group in ``together`` share one set, computed
        over the group's arrays stacked (``training.standardize_together``); those in ``skip`` get none and
        pass through unchanged (``training.standardize_skip``)."""
        _require_pooled("training.standardize_skip", skip, features)
        scaler = cls()
        shared = {}
        for group in together:
            _require_pooled("training.standardize_together", group, features)
            dims = {n: features.pooled[n].shape[1] for n in group}
            if len(set(dims.values())) != 1:
                raise ConfigError(f"training.standardize_together: expected features of one size, got {dims}")
            stacked = np.concatenate([np.asarray(features.pooled[n], dtype=np.float64) for n in group])
            shared.update({n: stacked for n in group})
        for name, arr in features.pooled.items():
            if name in skip:
                continue
            x = shared.get(name, np.asarray(arr, dtype=np.float64))
            scaler.mean[name] = x.mean(axis=0).astype(np.float32)
            scaler.std[name] = np.maximum(x.std(axis=0), _EPS).astype(np.float32)
        for name, seqs in features.sequences.items():
            frames = np.concatenate([np.asarray(s, dtype=np.float64) for s in seqs if len(s)], axis=0)
            scaler.seq_mean[name] = frames.mean(axis=0).astype(np.float32)
            scaler.seq_std[name] = np.maximum(frames.std(axis=0), _EPS).astype(np.float32)
        return scaler

    @classmethod
    def identity(cls) -> FeatureScaler:
        return cls()

    def transform(self, features: FeatureSet) -> FeatureSet:
        """A standardised copy (features the scaler has no statistics for pass through unchanged)."""
        pooled = {}
        for name, arr in features.pooled.items():
            x = np.asarray(arr, dtype=np.float32)
            if name in self.mean:
                if x.shape[1] != self.mean[name].shape[0]:
                    raise DataError(
                        f"feature '{name}': expected dimension {self.mean[name].shape[0]} (as in training), got {x.shape[1]}"
                    )
                x = (x - self.mean[name]) / self.std[name]
            pooled[name] = x
        sequences = {}
        for name, seqs in features.sequences.items():
            if name in self.seq_mean:
                m, s = self.seq_mean[name], self.seq_std[name]
                sequences[name] = [(np.asarray(q, dtype=np.float32) - m) / s for q in seqs]
            else:
                sequences[name] = [np.asarray(q, dtype=np.float32) for q in seqs]
        return FeatureSet(list(features.ids), pooled, sequences)

    def to_tensors(self) -> dict[str, torch.Tensor]:
        out = {}
        for prefix, table in (
            ("mean", self.mean),
            ("std", self.std),
            ("seq_mean", self.seq_mean),
            ("seq_std", self.seq_std),
        ):
            for name, arr in table.items():
                out[f"norm.{prefix}.{name}"] = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> FeatureScaler:
        scaler = cls()
        for key, value in tensors.items():
            if not key.startswith("norm."):
                continue
            _, prefix, name = key.split(".", 2)
            getattr(scaler, prefix)[name] = value.numpy().astype(np.float32)
        return scaler


def target_distributions(items: ItemSet, targets: list[TargetSpec]) -> np.ndarray | None:
    """(N, T, K) per-rater rating histograms over each target's score levels (K = the most levels of
    any target; a target's extra bins are 0). Rows of items without ratings for a target are NaN
    (the ``kl`` loss then smooths that item's score instead); None when no item has any ratings.
    """
    from scorecast.models.bins import bin_edges

    if not any(t.name in item.ratings for item in items for t in targets):
        return None
    k_max = max(t.num_bins for t in targets)
    out = np.full((len(items), len(targets), k_max), np.nan, dtype=np.float32)
    for j, t in enumerate(targets):
        edges = bin_edges(t)
        for i, item in enumerate(items):
            if t.name in item.ratings:
                out[i, j] = 0.0
                out[i, j, : t.num_bins] = item.ratings[t.name].histogram(edges)
    return out


class ScoreDataset(Dataset):
    """Items of a (standardised) FeatureSet with their targets (N, T), optional sample weights (N,)
    and optional target distributions (N, T, K)."""

    def __init__(
        self,
        features: FeatureSet,
        targets: np.ndarray | None = None,
        weights: np.ndarray | None = None,
        target_dist: np.ndarray | None = None,
    ) -> None:
        n = len(features)
        if targets is not None:
            targets = np.asarray(targets, dtype=np.float32)
            if targets.ndim == 1:
                targets = targets[:, None]
            if targets.shape[0] != n:
                raise DataError(f"training data: expected {n} target rows (one per item), got {targets.shape[0]}")
        if weights is not None and len(weights) != n:
            raise DataError(f"training data: expected {n} sample weights, got {len(weights)}")
        if target_dist is not None and target_dist.shape[0] != n:
            raise DataError(f"training data: expected {n} target distributions, got {target_dist.shape[0]}")
        self.features = features
        self.pooled = {
            k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in features.pooled.items()
        }
        self.sequences = {
            k: [torch.from_numpy(np.ascontiguousarray(s, dtype=np.float32)) for s in v]
            for k, v in features.sequences.items()
        }
        self.targets = torch.from_numpy(targets) if targets is not None else None
        self.weights = torch.as_tensor(np.asarray(weights, dtype=np.float32)) if weights is not None else None
        self.target_dist = (
            torch.as_tensor(np.asarray(target_dist, dtype=np.float32)) if target_dist is not None else None
        )
        self.listener: torch.Tensor | None = None  # (N,) listener index per row (listener-aware training)

    def __len__(self) -> int:
        return len(self.features)

    def __getitems__(self, indices: list[int]) -> dict | list[dict]:
        """A whole batch by indexing the in-memory tensors once (torch's DataLoader calls this instead
        of one ``__getitem__`` per item, then ``collate``, which passes the dict through): no
        per-item dicts and stacks on each step. Datasets with sequences give per-item dicts, which
        ``collate`` pads."""
        if self.sequences:
            return [self[i] for i in indices]
        idx = torch.as_tensor(indices, dtype=torch.long)
        return {
            "index": idx,
            "pooled": {k: v[idx] for k, v in self.pooled.items()},
            "sequences": None,
            "masks": None,
            "target": self.targets[idx] if self.targets is not None else None,
            "weight": self.weights[idx] if self.weights is not None else None,
            "target_dist": self.target_dist[idx] if self.target_dist is not None else None,
            "listener": self.listener[idx] if self.listener is not None else None,
        }

    def __getitem__(self, i: int) -> dict:
        return {
            "index": i,
            "pooled": {k: v[i] for k, v in self.pooled.items()},
            "sequences": {k: v[i] for k, v in self.sequences.items()},
            "target": self.targets[i] if self.targets is not None else None,
            "weight": self.weights[i] if self.weights is not None else None,
            "target_dist": self.target_dist[i] if self.target_dist is not None else None,
            "listener": self.listener[i] if self.listener is not None else None,
        }


def collate(batch: list[dict] | dict) -> dict:
    """Stack pooled features, pad sequences (with masks), stack targets/weights/distributions. A
    batch :meth:`ScoreDataset.__getitems__` already built (a dict) passes through."""
    from scorecast.models.layers import pad_sequences

    if isinstance(batch, dict):
        return batch
    first = batch[0]
    out: dict = {
        "index": torch.tensor([b["index"] for b in batch], dtype=torch.long),
        "pooled": {k: torch.stack([b["pooled"][k] for b in batch]) for k in first["pooled"]},
        "sequences": None,
        "masks": None,
    }
    if first["sequences"]:
        out["sequences"], out["masks"] = {}, {}
        for k in first["sequences"]:
            out["sequences"][k], out["masks"][k] = pad_sequences([b["sequences"][k] for b in batch])
    for key in ("target", "weight", "target_dist", "listener"):  # other datasets' items may lack "listener"
        out[key] = torch.stack([b[key] for b in batch]) if first.get(key) is not None else None
    return out
