"""The Lightning pieces of encoder fine-tuning (:mod:`scorecast.adapt.finetune`): the dataset of
raw inputs plus frozen features, its collate, the module with tuned encoders in front of the fusion,
the best-weights callback that keeps only what training changes, and the head's calibration on the
tuned encoders' initial outputs."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from scorecast.adapt.tunable import TunableEncoder, unique_towers
from scorecast.config import TargetSpec, TrainingConfig
from scorecast.data.features import FeatureSet
from scorecast.data.items import Item
from scorecast.training.module import ScoreModule, with_scheduler
from scorecast.training.trainer import BestWeights

log = logging.getLogger(__name__)


class FinetuneDataset(Dataset):
    """Items at ``indices``: raw inputs of the tuned encoders (``encoders``: feature name -> tower; or
    the precomputed ``states`` of their frozen blocks), standardised frozen features, targets."""

    def __init__(
        self,
        items: Sequence[Item],
        indices: np.ndarray,
        encoders: dict[str, TunableEncoder],
        frozen: FeatureSet | None,
        targets: np.ndarray,
        weights: np.ndarray | None = None,
        target_dist: np.ndarray | None = None,
        states: dict[str, dict[int, Any]] | None = None,
    ) -> None:
        self.items, self.indices, self.encoders = items, np.asarray(indices, dtype=int), encoders
        self.states = states or {}  # feature -> item index -> its frozen blocks' states (cache_frozen)
        sub = frozen.subset(self.indices) if frozen is not None else None
        self.pooled = {k: torch.from_numpy(np.asarray(v, np.float32)) for k, v in (sub.pooled if sub else {}).items()}
        self.sequences = {
            k: [torch.from_numpy(np.asarray(q, np.float32)) for q in v]
            for k, v in (sub.sequences if sub else {}).items()
        }
        self.targets = torch.from_numpy(np.asarray(targets[self.indices], np.float32))
        self.weights = None if weights is None else torch.as_tensor(np.asarray(weights, np.float32))
        self.target_dist = (
            None if target_dist is None else torch.as_tensor(np.asarray(target_dist[self.indices], np.float32))
        )

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, j: int) -> dict:
        i = int(self.indices[j])
        item = self.items[i]
        return {
            "index": j,
            "pooled": {k: v[j] for k, v in self.pooled.items()},
            "sequences": {k: v[j] for k, v in self.sequences.items()},
            "target": self.targets[j],
            "weight": None if self.weights is None else self.weights[j],
            "target_dist": None if self.target_dist is None else self.target_dist[j],
            "raw": {
                name: self.states[name][i] if name in self.states else enc.load_input(item, name)
                for name, enc in self.encoders.items()
            },
        }


class FinetuneCollate:
    """The training collate for the frozen part, plus each tuned encoder's ``prepare`` of its raw inputs."""

    def __init__(self, encoders: dict[str, TunableEncoder]) -> None:
        self.encoders = encoders

    def __call__(self, batch: list[dict]) -> dict:
        from scorecast.models.datasets import collate

        out = collate([{k: v for k, v in b.items() if k != "raw"} for b in batch])
        out["raw"] = {name: enc.prepare([b["raw"][name] for b in batch]) for name, enc in self.encoders.items()}
        return out


class FinetuneModule(ScoreModule):
    """:class:`ScoreModule` with tuned encoders in front: their pooled outputs (and sequences where the
    fusion reads them) join the frozen features. ``encoders`` maps feature names to towers; features
    that share a tower (the same object) run through the same weights, held once (``encoders.e<i>``,
    one per distinct tower). Optimiser groups: ``head`` (fusion, head, loss) at ``training.lr``, the
    parts named in ``training.lr_multipliers`` (``model.fusion``, ``model.head``) at their multiple,
    and one group per trained block of each tower (layer-wise decay)."""

    def __init__(
        self,
        encoders: dict[str, TunableEncoder],
        model: nn.Module,
        loss: nn.Module,
        training: TrainingConfig,
        targets: list[TargetSpec],
        monitor: str | None = None,
        val_groups: np.ndarray | None = None,
    ) -> None:
        super().__init__(model, loss, training, targets, monitor=monitor, val_groups=val_groups)
        self.feature_names = list(encoders)
        towers = unique_towers(encoders)
        self.encoders = nn.ModuleDict({f"e{i}": enc for i, enc in enumerate(towers)})
        self.tower_keys = {
            name: f"e{next(i for i, t in enumerate(towers) if t is enc)}" for name, enc in encoders.items()
        }

    def feature_encoders(self) -> dict[str, TunableEncoder]:
        """Feature name -> its tower (shared towers appear under each of their features)."""
        return {name: self.encoders[key] for name, key in self.tower_keys.items()}

    def forward(self, batch: dict):
        pooled = dict(batch["pooled"])
        sequences, masks = dict(batch["sequences"] or {}), dict(batch["masks"] or {})
        uses = set(getattr(self.model, "uses_sequences", ()))
        for name in self.feature_names:
            p, seq, mask = self.encoders[self.tower_keys[name]](batch["raw"][name])
            pooled[name] = p
            if name in uses:
                sequences[name], masks[name] = seq, mask
        return self.model(pooled, sequences or None, masks or None)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """The state entries that training changes (fusion, head, loss, trained encoder blocks)."""
        names = {n for n, p in self.named_parameters() if p.requires_grad}
        return {k: v for k, v in self.state_dict().items() if k in names or k.startswith(("model.", "loss."))}

    def param_group_specs(self) -> list[dict[str, Any]]:
        lrs = {"head": self.cfg.lr, **{f"model.{part}": self.cfg.lr * m for part, m in self.cfg.lr_multipliers.items()}}
        parts: dict[str, list] = {name: [] for name in lrs}
        for name, p in [*self.model.named_parameters(prefix="model"), *self.loss.named_parameters(prefix="loss")]:
            if p.requires_grad:
                part = ".".join(name.split(".")[:2])
                parts[part if part in lrs else "head"].append(p)
        groups = [
            {"params": ps, "lr": lrs[part], "weight_decay": self.cfg.weight_decay, "name": part}
            for part, ps in parts.items()
            if ps
        ]
        for enc in self.encoders.values():
            groups += enc.param_groups(self.cfg.weight_decay)
        return groups

    def configure_optimizers(self):
        groups = self.param_group_specs()
        return with_scheduler(self, torch.optim.AdamW(groups), self.cfg.scheduler)


class TrainableBestWeights(BestWeights):
    """:class:`BestWeights` that copies only what training changes (not the frozen encoder)."""

    def weights_of(self, pl_module) -> dict[str, torch.Tensor]:
        return pl_module.trainable_state()

    def restore(self, pl_module, state: dict[str, torch.Tensor]) -> None:
        pl_module.load_state_dict(state, strict=False)


def calibrate_finetune_head(
    model: nn.Module,
    encoders: dict[str, TunableEncoder],
    dataset: FinetuneDataset,
    seed: int,
    most: int = 1024,
    batch_size: int = 32,
) -> None:
    """``training.calibrate_head`` for fine-tuning: ``model``'s head starts at the least-squares map of
    the initial fused features of (up to ``most`` of) ``dataset``'s items, the tuned encoders run in
    eval mode without gradients, to their targets."""
    if getattr(model, "uses_sequences", ()):
        log.warning("training.calibrate_head: not done when fine-tuning a fusion that reads sequences")
        return
    idx = np.arange(len(dataset))
    if len(idx) > most:
        idx = np.sort(np.random.default_rng(seed).choice(len(idx), most, replace=False))
    collate, towers = FinetuneCollate(encoders), unique_towers(encoders)
    modes = [t.training for t in towers]
    for t in towers:
        t.eval()
    parts, targets = [], []
    with torch.no_grad():
        for start in range(0, len(idx), batch_size):
            batch = collate([dataset[int(j)] for j in idx[start : start + batch_size]])
            pooled = dict(batch["pooled"])
            pooled.update({name: enc(batch["raw"][name])[0] for name, enc in encoders.items()})
            parts.append(pooled)
            targets.append(batch["target"])
    for t, mode in zip(towers, modes, strict=True):
        t.train(mode)
    pooled = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
    if not model.calibrate_head(pooled, {}, {}, torch.cat(targets).double()):
        log.info("training.calibrate_head: head '%s' has no mean layer to calibrate", type(model.head).__name__)
