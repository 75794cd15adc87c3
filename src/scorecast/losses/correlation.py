"""Correlation losses over a batch: ``correlation`` (1 - Pearson) and ``spearman`` (1 - Pearson of
soft ranks, a differentiable Spearman surrogate). Per target on the items whose target is present
(at least two), with sample weights as weights of the correlation; averaged over targets."""

from __future__ import annotations

import torch

from scorecast.config import TargetSpec
from scorecast.losses.base import LOSSES
from scorecast.losses.common import Batch, ScoreLoss, check_number, mean_over_targets, weighted_pearson


@LOSSES.register("correlation")
class CorrelationLoss(ScoreLoss):
    """``1 - r`` with r the (weighted) Pearson correlation of predictions and targets in the batch."""

    def compute(self, out, batch: Batch, extra) -> torch.Tensor:
        mean = out["mean"].float()
        parts = []
        for t in range(mean.shape[1]):
            sel = batch.items(t)
            if int(sel.sum()) < 2:
                continue
            parts.append(1.0 - weighted_pearson(mean[sel, t], batch.target[sel, t], batch.weight[sel]))
        return mean_over_targets(parts, mean)


def soft_ranks(x: torch.Tensor, temperature: float) -> torch.Tensor:
    """(N,) -> (N,) differentiable ranks ``0.5 + sum_j sigmoid((x_i - x_j) / temperature)`` (1-based;
    tends to the average rank as temperature -> 0)."""
    return 0.5 + torch.sigmoid((x.unsqueeze(1) - x.unsqueeze(0)) / temperature).sum(1)


def average_ranks(y: torch.Tensor) -> torch.Tensor:
    """(N,) -> (N,) 1-based ranks, ties given their average rank (as ``scipy.stats.rankdata``)."""
    less = (y.unsqueeze(0) < y.unsqueeze(1)).sum(1).to(y.dtype)
    equal = (y.unsqueeze(0) == y.unsqueeze(1)).sum(1).to(y.dtype)
    return less + (equal + 1) / 2


@LOSSES.register("spearman")
class SpearmanLoss(ScoreLoss):
    """``1 - Pearson(soft_ranks(mean / range, temperature), ranks(y))``: the targets' ranks are exact
    (ties averaged); the predictions' are soft, with ``temperature`` a fraction of the score range."""

    def __init__(self, targets: list[TargetSpec], temperature: float = 0.05) -> None:
        super().__init__(targets)
        self.temperature = check_number(temperature, "temperature", self.where, low=0.0, low_open=True)
        self.ranges = [t.high - t.low for t in self.targets]

    def compute(self, out, batch: Batch, extra) -> torch.Tensor:
        mean = out["mean"].float()
        parts = []
        for t in range(mean.shape[1]):
            sel = batch.items(t)
            if int(sel.sum()) < 2:
                continue
            rp = soft_ranks(mean[sel, t] / self.ranges[t], self.temperature)
            ry = average_ranks(batch.target[sel, t])
            parts.append(1.0 - weighted_pearson(rp, ry, batch.weight[sel]))
        return mean_over_targets(parts, mean)
