"""Items: the one in-memory form every reader produces and every later step consumes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from scorecast.data.audio import AudioInput


@dataclass
class Ratings:
    """Per-rater ratings of one target for one item, with their aggregate."""

    values: np.ndarray  # (R,) float
    raters: list[str] | None = None

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def std(self) -> float:
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else 0.0

    @property
    def count(self) -> int:
        return int(len(self.values))

    def histogram(self, edges: np.ndarray) -> np.ndarray:
        """Normalised histogram over bins given by ``edges`` (K+1,) -> (K,), sums to 1."""
        counts, _ = np.histogram(np.clip(self.values, edges[0], edges[-1]), bins=edges)
        total = counts.sum()
        return counts / total if total else counts.astype(float)


@dataclass
class Item:
    """One scored (or to-be-scored) thing.

    ``audio`` is the item's clip: an absolute file path (what readers give), or ``(waveform,
    sample_rate)`` with the waveform (T,), (C, T) or (T, C) (what the Python API and the server give
    for audio that arrives in memory), or None; ``audios`` maps a named audio field to its path (pairs
    of clips: ``{"generated": ..., "reference": ...}``, read by encoders with input ``audio.<field>``);
    ``texts`` maps a field name to its text; ``vectors``
    maps a field name to a 1-D float vector; ``targets`` maps a target name to its (aggregated)
    score; ``ratings`` maps a target name to per-rater ratings; ``group`` is the system, speaker or
    signal used for grouped CV and system-level metrics.
    """

    id: str
    audio: AudioInput | None = None
    texts: dict[str, str] = field(default_factory=dict)
    audios: dict[str, str] = field(default_factory=dict)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    targets: dict[str, float] = field(default_factory=dict)
    ratings: dict[str, Ratings] = field(default_factory=dict)
    group: str | None = None
    meta: dict[str, object] = field(default_factory=dict)


@dataclass
class ItemSet:
    """A list of items read from one source, plus what the reader learned about it."""

    items: list[Item]
    source: str = ""
    target_names: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one message per skipped row (--on-error skip)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def __getitem__(self, index: int) -> Item:
        return self.items[index]

    @property
    def ids(self) -> list[str]:
        return [item.id for item in self.items]

    def targets(self, name: str | None = None) -> np.ndarray:
        """(N,) scores of one target (the first by default); NaN where an item has none."""
        name = name or (self.target_names[0] if self.target_names else None)
        if name is None:
            return np.full(len(self.items), np.nan)
        return np.array([item.targets.get(name, np.nan) for item in self.items], dtype=float)

    def target_matrix(self, names: Sequence[str] | None = None) -> np.ndarray:
        """(N, T) scores of several targets."""
        names = list(names or self.target_names)
        return np.stack([self.targets(n) for n in names], axis=1) if names else np.zeros((len(self), 0))

    def groups(self) -> list[str | None]:
        return [item.group for item in self.items]

    def subset(self, indices: Sequence[int]) -> ItemSet:
        return ItemSet([self.items[i] for i in indices], self.source, list(self.target_names))

    def to_frame(self):  # -> pandas.DataFrame
        """A flat table: id, audio, group, text fields, targets, rating mean/std/count."""
        import pandas as pd

        rows = []
        for item in self.items:
            row: dict[str, object] = {"id": item.id, "audio": item.audio, "group": item.group}
            row.update({f"audio.{k}": v for k, v in item.audios.items()})
            row.update({f"text.{k}": v for k, v in item.texts.items()})
            row.update(item.targets)
            for name, r in item.ratings.items():
                row[f"{name}.std"] = r.std
                row[f"{name}.count"] = r.count
            rows.append(row)
        return pd.DataFrame(rows)
