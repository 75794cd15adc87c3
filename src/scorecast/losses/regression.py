"""Point losses on the decoded mean: ``mse``, ``mae``, ``huber`` and ``gaussian-nll`` (with log-variance)."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from scorecast.config import TargetSpec
from scorecast.errors import ConfigError
from scorecast.losses.base import LOSSES
from scorecast.losses.common import Batch, ScoreLoss, check_number, reduce_elementwise


@LOSSES.register("mse")
class MSELoss(ScoreLoss):
    """Squared error ``(mean - y)^2``."""

    def compute(self, out, batch: Batch, extra) -> torch.Tensor:
        return reduce_elementwise((out["mean"].float() - batch.target) ** 2, batch)


@LOSSES.register("mae")
class MAELoss(ScoreLoss):
    """Absolute error ``|mean - y|``."""

    def compute(self, out, batch: Batch, extra) -> torch.Tensor:
        return reduce_elementwise((out["mean"].float() - batch.target).abs(), batch)


@LOSSES.register("huber")
class HuberLoss(ScoreLoss):
    """Huber loss: ``0.5 e^2`` for ``|e| <= delta``, else ``delta (|e| - 0.5 delta)`` (score units)."""

    def __init__(self, targets: list[TargetSpec], delta: float = 1.0) -> None:
        super().__init__(targets)
        self.delta = check_number(delta, "delta", self.where, low=0.0, low_open=True)

    def compute(self, out, batch: Batch, extra) -> torch.Tensor:
        values = F.huber_loss(out["mean"].float(), batch.target, reduction="none", delta=self.delta)
        return reduce_elementwise(values, batch)


@LOSSES.register("gaussian-nll")
class GaussianNLLLoss(ScoreLoss):
    """Gaussian negative log-likelihood ``0.5 (log_var + (y - mean)^2 / exp(log_var))`` (no constant),
    mixed with MAE as ``(1 - mae_weight) * nll + mae_weight * |y - mean|``. Needs ``log_var``
    (the ``heteroscedastic`` head)."""

    requires = ("mean", "log_var")

    def __init__(self, targets: list[TargetSpec], mae_weight: float = 0.0) -> None:
        super().__init__(targets)
        self.mae_weight = check_number(mae_weight, "mae_weight", self.where, low=0.0)
        if self.mae_weight > 1.0:
            raise ConfigError(f"{self.where}: expected 'mae_weight' in [0, 1], got {mae_weight}")

    def compute(self, out, batch: Batch, extra) -> torch.Tensor:
        err = out["mean"].float() - batch.target
        log_var = out["log_var"].float()
        nll = 0.5 * (log_var + err**2 * torch.exp(-log_var))
        values = (1.0 - self.mae_weight) * nll + self.mae_weight * err.abs()
        return reduce_elementwise(values, batch)


@LOSSES.register("correction-l2")
class CorrectionL2Loss(ScoreLoss):
    """Squared size of a prior head's correction, ``correction^2`` (in units of half the target range):
    pulls the ``prior`` head back towards its calibrated zero-shot score where the data do not move it.
    Needs ``correction`` (the ``prior`` head)."""

    requires = ("mean", "correction")

    def compute(self, out, batch: Batch, extra) -> torch.Tensor:
        return reduce_elementwise(out["correction"].float() ** 2, batch)
