"""Losses on cumulative logits ``cum_logits`` (B, T, K-1) of P(y > level k) (``ordinal``/``coral``
heads): ``cumulative-bce`` and ``coral``. The target's level index is its nearest level; the
indicator for threshold k is ``index > k``. Thresholds a target lacks are ignored."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F

from scorecast.config import TargetSpec
from scorecast.errors import ConfigError
from scorecast.losses.base import LOSSES
from scorecast.losses.classification import BinLoss
from scorecast.losses.common import Batch, reduce_elementwise


class CumulativeLoss(BinLoss):
    requires = ("mean", "cum_logits")
    logits_key = "cum_logits"

    def threshold_bce(self, out, batch: Batch) -> torch.Tensor:
        """(B, T, K-1) binary cross-entropy per threshold, 0 at thresholds a target lacks."""
        cum = out[self.logits_key].float()
        self.check_width(cum, self.bins.num_bins - 1)
        levels = self.bins.exceed_levels(batch.target)
        bce = F.binary_cross_entropy_with_logits(cum, levels, reduction="none")
        return bce * self.bins.thr_valid


@LOSSES.register("cumulative-bce")
class CumulativeBCELoss(CumulativeLoss):
    """Binary cross-entropy of each threshold's logit against ``[y > level k]``, averaged over the
    target's K_t - 1 thresholds."""

    def compute(self, out, batch: Batch, extra) -> torch.Tensor:
        bce = self.threshold_bce(out, batch)
        values = bce.sum(-1) / (self.bins.counts - 1).to(bce.dtype)
        return reduce_elementwise(values, batch)


@LOSSES.register("coral")
class CoralLoss(CumulativeLoss):
    """The CORAL loss (Cao et al. 2020): the sum over thresholds of ``importance[k]`` times each
    threshold's binary cross-entropy. ``importance`` (K_max - 1 numbers, default all 1) is shared by
    the targets (a target with fewer levels uses the first K_t - 1)."""

    def __init__(self, targets: list[TargetSpec], importance: Sequence[float] | None = None) -> None:
        super().__init__(targets)
        k1 = self.bins.num_bins - 1
        if importance is None:
            weights = torch.ones(k1)
        else:
            if isinstance(importance, str) or len(importance) != k1:
                raise ConfigError(
                    f"{self.where}: expected 'importance' to list {k1} weights (one per threshold), got {importance!r}"
                )
            weights = torch.as_tensor([float(x) for x in importance], dtype=torch.float32)
            if bool((weights < 0).any()):
                raise ConfigError(f"{self.where}: expected non-negative 'importance' weights, got {list(importance)}")
        self.register_buffer("importance", weights, persistent=False)

    def compute(self, out, batch: Batch, extra) -> torch.Tensor:
        values = (self.threshold_bce(out, batch) * self.importance).sum(-1)
        return reduce_elementwise(values, batch)
