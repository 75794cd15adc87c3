"""Losses over score bins from ``logits`` (B, T, K): ``cross-entropy`` and ``focal``. The target is
rounded to its nearest level (``BinLayout.to_index``); bins a target lacks are ignored."""

from __future__ import annotations

import torch

from scorecast.config import TargetSpec
from scorecast.errors import ConfigError
from scorecast.losses.base import LOSSES
from scorecast.losses.common import Batch, ScoreLoss, check_number, reduce_elementwise
from scorecast.models.bins import BinLayout


class BinLoss(ScoreLoss):
    """A loss over the bins of the targets; checks that the logits have this layout's K."""

    requires = ("mean", "logits")
    logits_key = "logits"

    def __init__(self, targets: list[TargetSpec]) -> None:
        super().__init__(targets)
        self.bins = BinLayout(self.targets, where=self.where)

    def log_probs(self, out) -> torch.Tensor:
        """(B, T, K) log-probabilities over each target's valid bins."""
        logits = out[self.logits_key].float()
        self.check_width(logits, self.bins.num_bins)
        return torch.log_softmax(self.bins.mask_logits(logits), dim=-1)

    def check_width(self, logits: torch.Tensor, k: int) -> None:
        t = len(self.targets)
        if logits.ndim != 3 or logits.shape[1:] != (t, k):
            raise ConfigError(
                f"{self.where}: expected head output '{self.logits_key}' of shape (B, {t}, {k}) for targets "
                f"{[x.name for x in self.targets]}, got {tuple(logits.shape)}; the head and the loss must be "
                f"built for the same targets"
            )


@LOSSES.register("cross-entropy")
class CrossEntropyLoss(BinLoss):
    """Cross-entropy to the nearest level, with optional label smoothing ``label_smoothing`` spread
    uniformly over the target's own levels."""

    def __init__(self, targets: list[TargetSpec], label_smoothing: float = 0.0) -> None:
        super().__init__(targets)
        self.label_smoothing = check_number(label_smoothing, "label_smoothing", self.where, low=0.0)
        if self.label_smoothing >= 1.0:
            raise ConfigError(f"{self.where}: expected 'label_smoothing' in [0, 1), got {label_smoothing}")

    def compute(self, out, batch: Batch, extra) -> torch.Tensor:
        log_p = self.log_probs(out)
        idx = self.bins.to_index(batch.target)
        onehot = torch.nn.functional.one_hot(idx, self.bins.num_bins).to(log_p.dtype)
        uniform = self.bins.valid / self.bins.counts.unsqueeze(-1)
        q = (1.0 - self.label_smoothing) * onehot + self.label_smoothing * uniform
        values = -(q * log_p).sum(-1)
        return reduce_elementwise(values, batch)


@LOSSES.register("focal")
class FocalLoss(BinLoss):
    """Focal loss ``-(1 - p_y)^gamma log p_y`` at the nearest level (``gamma`` = 0: cross-entropy)."""

    def __init__(self, targets: list[TargetSpec], gamma: float = 2.0) -> None:
        super().__init__(targets)
        self.gamma = check_number(gamma, "gamma", self.where, low=0.0)

    def compute(self, out, batch: Batch, extra) -> torch.Tensor:
        log_p = self.log_probs(out)
        idx = self.bins.to_index(batch.target)
        log_py = log_p.gather(-1, idx.unsqueeze(-1)).squeeze(-1)
        values = -((1.0 - log_py.exp()).clamp(min=1e-12) ** self.gamma) * log_py
        return reduce_elementwise(values, batch)
