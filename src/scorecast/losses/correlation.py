"""Correlation losses over a batch: ``correlation`` (1 - Pearson) and ``spearman`` (1 - Pearson of
soft ranks, a differentiable Spearman surrogate). Per target on the items whose target is present
(at least two), with sample weights as weights of the correlation; averaged over targets."""

from __future__ import annotations

import torch

from scorecast.config import TargetSpec
from scorecast.losses.base import LOSSES
from scorecast.losses.common import PerTargetLoss, check_number, weighted_pearson


@LOSSES.register("correlation")
class CorrelationLoss(PerTargetLoss):
    """``1 - r`` with r the (weighted) Pearson correlation of predictions and targets in the batch."""

    def target_loss(self, t, p, y, w) -> torch.Tensor:
        return 1.0 - weighted_pearson(p, y, w)


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
class SpearmanLoss(PerTargetLoss):
    """``1 - Pearson(soft_ranks(mean / range, temperature), ranks(y))``: the targets' ranks are exact
    (ties averaged); the predictions' are soft, with ``temperature`` a fraction of the score range."""

    def __init__(self, targets: list[TargetSpec], temperature: float = 0.05) -> None:
        super().__init__(targets)
        self.temperature = check_number(temperature, "temperature", self.where, low=0.0, low_open=True)
        self.ranges = [t.high - t.low for t in self.targets]

    def target_loss(self, t, p, y, w) -> torch.Tensor:
        return 1.0 - weighted_pearson(soft_ranks(p / self.ranges[t], self.temperature), average_ranks(y), w)
