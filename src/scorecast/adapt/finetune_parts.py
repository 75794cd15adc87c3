"""The parts of one fine-tuning run, built and trained: tunable encoders, frozen features, model, loss,
Lightning module and data loaders (:func:`build_parts`), fitted by :func:`train_parts`.

Used by :func:`scorecast.adapt.finetune.fit_finetune` (which re-exports :func:`build_parts`).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from scorecast.adapt.frozen_states import item_states
from scorecast.adapt.module import (
    FinetuneCollate,
    FinetuneDataset,
    FinetuneModule,
    TrainableBestWeights,
    calibrate_finetune_head,
)
from scorecast.adapt.tunable import TunableEncoder, build_tunable_encoders
from scorecast.config import Recipe
from scorecast.errors import ConfigError

log = logging.getLogger("scorecast.adapt.finetune")  # the logger these warnings had before the split

__all__ = ["build_parts", "train_parts"]


@dataclass
class _Parts:
    recipe: Recipe
    module: FinetuneModule
    encoders: dict[str, TunableEncoder]
    train_loader: DataLoader
    val_loader: DataLoader | None
    scaler: Any
    dims: dict[str, int]
    sequence_features: list[str]

    def member(self):
        from scorecast.inference.members import NeuralMember

        model = copy.deepcopy(self.module.model)
        return NeuralMember(
            model, self.recipe.model, self.recipe.targets, self.dims, self.sequence_features, self.scaler
        )


def build_parts(recipe, items, tuned, frozen, targets, train_idx, val_idx, cache, seed: int = 0) -> _Parts:
    """Encoders, frozen features, model, loss, module and data loaders of one fine-tuning run."""
    from scorecast.losses.combined import build_loss
    from scorecast.models.base import FeatureShape
    from scorecast.models.datasets import FeatureScaler, target_distributions
    from scorecast.models.scorer import build_model, feature_shapes
    from scorecast.training.trainer import resolve_monitor
    from scorecast.training.weights import sample_weights

    cfg = recipe.training
    for what, on in (
        ("mixup", cfg.mixup_alpha > 0),
        ("synthetic negatives", cfg.negatives.ratio > 0),
        ("SWA", cfg.swa.enabled),
        ("augmented copies", cfg.augment.copies > 0),
    ):
        if on:
            log.warning("fine-tuning: %s is not used when encoders are fine-tuned end to end", what)
    encoders = build_tunable_encoders(tuned)
    features = None
    if frozen:
        from scorecast.cache.store import EmbeddingCache
        from scorecast.encoders.pipeline import build_features

        features = build_features(items, frozen, cache or EmbeddingCache(recipe.cache_dir), progress=cfg.progress)
        if list(features.ids) != list(items.ids):
            raise ConfigError(
                f"fine-tuning: the frozen encoders could encode {len(features)} of {len(items)} items; expected all"
            )
    scaler = (
        FeatureScaler.fit(features.subset(train_idx))
        if features is not None and cfg.standardize_features
        else FeatureScaler.identity()
    )
    scaled = scaler.transform(features) if features is not None else None
    shapes = feature_shapes(features) if features is not None else {}
    shapes.update({name: FeatureShape(enc.out_dim, enc.spec.sequence) for name, enc in encoders.items()})
    model = build_model(recipe.model, shapes, recipe.targets)
    loss = build_loss(recipe.losses, recipe.targets)
    loss.check_head(model.provides, recipe.model.head.name)
    dist = target_distributions(items, recipe.targets)
    weights = sample_weights(targets[train_idx, 0], recipe.targets[0], cfg.sample_weights)
    states = item_states(items, encoders, np.concatenate([train_idx, val_idx]))
    train_ds = FinetuneDataset(items.items, train_idx, encoders, scaled, targets, weights, dist, states)
    if cfg.calibrate_head:
        calibrate_finetune_head(model, encoders, train_ds, seed)
    has_val = len(val_idx) > 0
    val_ds = FinetuneDataset(items.items, val_idx, encoders, scaled, targets, None, dist, states) if has_val else None
    collate = FinetuneCollate(encoders)
    bs = max(1, min(cfg.batch_size, len(train_ds)))
    gen = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(
        train_ds, batch_size=bs, shuffle=True, collate_fn=collate, generator=gen, drop_last=len(train_ds) % bs == 1
    )
    val_loader = DataLoader(val_ds, batch_size=bs, shuffle=False, collate_fn=collate) if has_val else None
    monitor = resolve_monitor(cfg, has_val)
    groups = items.groups()
    val_groups = (
        np.asarray([groups[i] for i in val_idx], dtype=object)
        if has_val and all(groups[i] is not None for i in val_idx)
        else None
    )
    module = FinetuneModule(
        encoders, model, loss, cfg.model_copy(update={"mixup_alpha": 0.0}), recipe.targets, monitor, val_groups
    )
    dims = {name: s.dim for name, s in shapes.items()}
    seq = [name for name, s in shapes.items() if s.has_sequence]
    return _Parts(recipe, module, encoders, train_loader, val_loader, scaler, dims, seq)


def train_parts(recipe: Recipe, parts: _Parts, out_dir: Path, seed: int) -> list[dict[str, float]]:
    """Fit ``parts.module`` with the one Trainer set-up of :mod:`scorecast.training.trainer` (early
    stopping or SWA, best trainable weights on the monitor)."""
    from scorecast.training.trainer import fit_module

    fit_module(
        recipe.training,
        parts.module,
        parts.train_loader,
        parts.val_loader,
        log_dir=out_dir / "logs",
        name="finetune",
        best_weights=TrainableBestWeights,
        log_every_n_steps=max(1, min(50, len(parts.train_loader))),
    )
    parts.module.cpu().eval()
    return list(parts.module.history)
