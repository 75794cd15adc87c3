"""Ranking losses over the pairs of a batch: ``pairwise-ranking`` (margin) and ``cosent``.

Both work per target on the items whose target is present; a pair (i, j) is weighted by
``w_i * w_j``. A target with no usable pair adds nothing (a batch with none gives 0).
"""

from __future__ import annotations

import torch

from scorecast.config import TargetSpec
from scorecast.losses.base import LOSSES
from scorecast.losses.common import PerTargetLoss, check_number


@LOSSES.register("pairwise-ranking")
class PairwiseRankingLoss(PerTargetLoss):
    """Margin ranking: for each pair with ``y_i - y_j > threshold``,
    ``max(0, margin - (p_i - p_j))``; the weighted mean over those pairs (score units)."""

    def __init__(self, targets: list[TargetSpec], margin: float = 0.1, threshold: float = 0.0) -> None:
        super().__init__(targets)
        self.margin = check_number(margin, "margin", self.where, low=0.0)
        self.threshold = check_number(threshold, "threshold", self.where, low=0.0)

    def target_loss(self, t, p, y, w) -> torch.Tensor | None:
        pairs = (y.unsqueeze(1) - y.unsqueeze(0)) > self.threshold  # (N, N): y_i - y_j > threshold
        pair_w = (w.unsqueeze(1) * w.unsqueeze(0)) * pairs
        den = pair_w.sum()
        if not bool(den > 0):
            return None
        hinge = torch.relu(self.margin - (p.unsqueeze(1) - p.unsqueeze(0)))
        return (hinge * pair_w).sum() / den


@LOSSES.register("cosent")
class CoSENTLoss(PerTargetLoss):
    """CoSENT-style ranking: ``log(1 + sum_{y_i > y_j} w_ij exp(scale * (q_j - q_i)))`` where
    ``q = mean / (high - low)`` (so ``scale`` does not depend on the score range) and the pair weights
    ``w_ij = w_i w_j`` are normalised to average 1 over the pairs."""

    def __init__(self, targets: list[TargetSpec], scale: float = 20.0) -> None:
        super().__init__(targets)
        self.scale = check_number(scale, "scale", self.where, low=0.0, low_open=True)
        self.ranges = [t.high - t.low for t in self.targets]

    def target_loss(self, t, p, y, w) -> torch.Tensor | None:
        q = p / self.ranges[t]
        pairs = (y.unsqueeze(1) - y.unsqueeze(0)) > 0  # y_i > y_j
        pair_w = (w.unsqueeze(1) * w.unsqueeze(0))[pairs]
        if pair_w.numel() == 0 or not bool(pair_w.sum() > 0):
            return None
        pair_w = pair_w / pair_w.mean()
        diff = self.scale * (q.unsqueeze(0) - q.unsqueeze(1))[pairs]  # q_j - q_i
        terms = torch.cat([diff.new_zeros(1), diff + torch.log(pair_w)])
        return torch.logsumexp(terms, dim=0)
