"""``ScoreModel``: a fusion followed by a head; ``build_model`` makes one from the recipe's model section."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from scorecast.config import ModelConfig, TargetSpec
from scorecast.data.features import FeatureSet
from scorecast.errors import ConfigError
from scorecast.models.base import FUSIONS, HEADS, FeatureShape, Fusion, Head, HeadOutput
from scorecast.models.layers import pad_sequences

__all__ = ["ScoreModel", "build_model", "pad_sequences", "feature_batch", "feature_shapes"]


class ScoreModel(nn.Module):
    """``forward(pooled, sequences=None, masks=None) -> HeadOutput``.

    ``pooled[name]`` (B, D); ``sequences[name]`` (B, T, D) with ``masks[name]`` (B, T) True at real
    frames, for the features in ``uses_sequences`` (others may be omitted).
    """

    def __init__(self, fusion: Fusion, head: Head) -> None:
        super().__init__()
        if getattr(fusion, "out_dim", None) != head.in_dim:
            raise ConfigError(
                f"ScoreModel: the head expects in_dim={head.in_dim} but the fusion gives "
                f"out_dim={getattr(fusion, 'out_dim', None)}"
            )
        self.fusion = fusion
        self.head = head

    @property
    def inputs(self) -> dict[str, FeatureShape]:
        return dict(self.fusion.inputs)

    @property
    def uses_sequences(self) -> tuple[str, ...]:
        """Feature names whose frame sequences the fusion reads (collate them with ``pad_sequences``)."""
        return tuple(getattr(self.fusion, "uses_sequences", ()))

    @property
    def provides(self) -> tuple[str, ...]:
        return tuple(getattr(self.head, "provides", ("mean",)))

    @property
    def targets(self) -> list[TargetSpec]:
        return list(self.head.targets)

    def forward(
        self,
        pooled: dict[str, torch.Tensor],
        sequences: dict[str, torch.Tensor] | None = None,
        masks: dict[str, torch.Tensor] | None = None,
    ) -> HeadOutput:
        h = self.fusion(pooled, sequences, masks)
        if getattr(self.head, "reads_features", False):  # a prior head reads its zero-shot score itself
            return self.head(h, pooled)
        return self.head(h)

    @torch.no_grad()
    def calibrate_head(self, pooled, sequences, masks, target: torch.Tensor) -> bool:
        """Start the head at the best linear map of the (initial) fused features to ``target`` (N, T)
        on these items (``Head.calibrate``); False where the head cannot."""
        calibrate = getattr(self.head, "calibrate", None)
        if calibrate is None:
            return False
        was = self.training
        self.eval()
        h = self.fusion(pooled, sequences, masks)
        self.train(was)
        return bool(calibrate(h, target))


def build_model(config: ModelConfig, shapes: dict[str, FeatureShape], targets: Sequence[TargetSpec]) -> ScoreModel:
    """Build the fusion ``config.fusion.name`` over ``shapes`` and the head ``config.head.name`` for
    ``targets``. Unknown names raise a ConfigError listing the registered ones."""
    if not shapes:
        raise ConfigError("build_model: expected at least one input feature shape, got none")
    for name, shape in shapes.items():
        if not isinstance(shape, FeatureShape):
            raise ConfigError(f"build_model: feature '{name}': expected a FeatureShape, got {type(shape).__name__}")
    fusion = FUSIONS.build(config.fusion.name, inputs=dict(shapes), **config.fusion.params)
    extra = {"inputs": dict(shapes)} if getattr(HEADS.get(config.head.name), "reads_features", False) else {}
    head = HEADS.build(config.head.name, in_dim=fusion.out_dim, targets=list(targets), **config.head.params, **extra)
    return ScoreModel(fusion, head)


def feature_shapes(features: FeatureSet, with_sequences: Sequence[str] | None = None) -> dict[str, FeatureShape]:
    """FeatureShape per feature of ``features`` (``has_sequence`` where it holds sequences and, if
    ``with_sequences`` is given, the feature is listed there), with the frames' own size as ``seq_dim``."""
    shapes = {}
    for name, arr in features.pooled.items():
        has = name in features.sequences and (with_sequences is None or name in with_sequences)
        seqs = features.sequences.get(name) or []
        seq_dim = int(np.asarray(seqs[0]).shape[1]) if has and len(seqs) and np.asarray(seqs[0]).ndim == 2 else None
        shapes[name] = FeatureShape(int(arr.shape[1]), has, seq_dim)
    return shapes


def feature_batch(
    features: FeatureSet,
    indices: Sequence[int] | np.ndarray | None = None,
    sequence_names: Sequence[str] = (),
    device: torch.device | str | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Tensors for the items at ``indices`` (default all): ``pooled`` {name: (B, D)}, and for each
    name in ``sequence_names`` the padded ``sequences`` {name: (B, T, D)} and ``masks`` {name: (B, T)}."""
    idx = np.arange(len(features)) if indices is None else np.asarray(indices, dtype=int)
    pooled = {
        k: torch.as_tensor(np.asarray(v[idx], dtype=np.float32), device=device) for k, v in features.pooled.items()
    }
    sequences: dict[str, torch.Tensor] = {}
    masks: dict[str, torch.Tensor] = {}
    for name in sequence_names:
        if name not in features.sequences:
            raise ConfigError(
                f"feature_batch: the model reads the sequence of '{name}' but the features hold none; "
                f"features with sequences: {', '.join(features.sequences) or '(none)'}"
            )
        seq, mask = pad_sequences([features.sequences[name][i] for i in idx])
        sequences[name], masks[name] = seq.to(device), mask.to(device)
    return pooled, sequences, masks
