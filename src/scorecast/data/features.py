"""Features: what encoders produce for a set of items and what models consume."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scorecast.errors import DataError


@dataclass
class Encoded:
    """One item's encoding: a pooled vector (D,) and, where the model has one, a sequence (T, D)."""

    pooled: np.ndarray
    sequence: np.ndarray | None = None


@dataclass
class FeatureSet:
    """Encoded features of N items, aligned with ``ids``.

    ``pooled[name]`` is (N, D) float32; ``sequences[name]`` (only for encoders asked to keep them)
    is a list of N arrays (T_i, D).
    """

    ids: list[str]
    pooled: dict[str, np.ndarray] = field(default_factory=dict)
    sequences: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.ids)
        for name, arr in self.pooled.items():
            if arr.ndim != 2 or arr.shape[0] != n:
                raise DataError(f"feature '{name}': expected shape ({n}, D), got {arr.shape}")
        for name, seqs in self.sequences.items():
            if len(seqs) != n:
                raise DataError(f"sequence feature '{name}': expected {n} sequences, got {len(seqs)}")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def names(self) -> list[str]:
        return list(self.pooled)

    def dims(self) -> dict[str, int]:
        return {name: int(arr.shape[1]) for name, arr in self.pooled.items()}

    def subset(self, indices) -> FeatureSet:
        idx = np.asarray(indices, dtype=int)
        return FeatureSet(
            [self.ids[i] for i in idx],
            {k: v[idx] for k, v in self.pooled.items()},
            {k: [v[i] for i in idx] for k, v in self.sequences.items()},
        )

    @staticmethod
    def concat(parts: list[FeatureSet]) -> FeatureSet:
        ids = [i for p in parts for i in p.ids]
        pooled = {k: np.concatenate([p.pooled[k] for p in parts]) for k in parts[0].pooled}
        sequences = {k: [s for p in parts for s in p.sequences[k]] for k in parts[0].sequences}
        return FeatureSet(ids, pooled, sequences)
