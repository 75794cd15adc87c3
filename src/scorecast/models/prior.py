"""``prior``: a head that starts from a calibrated zero-shot score and learns a correction to it.

A small listening test cannot teach a model what MOS is from nothing, but a pretrained MOS model
(DistillMOS, DNSMOS P.808) already knows much of it. This head predicts

    mean = slope * x_prior + intercept + half_range * correction(h)

where ``x_prior`` is one column of one input feature (e.g. DistillMOS's MOS, column 0 of the
``distillmos`` feature), ``slope`` and ``intercept`` are a least-squares calibration of that column
to each target on the training fold (set by :meth:`PriorHead.calibrate_prior` before training; saved with
the weights), and ``correction`` is an MLP on the fused vector whose last layer starts at zero: at
initialisation the head predicts exactly the calibrated prior. Train with the ``correction-l2``
loss term (and weight decay) to keep the correction small where the data do not support it.

Without ``feature`` the prior is a constant (the training targets' mean): the head then starts at
the mean-of-training baseline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from scorecast.config import TargetSpec
from scorecast.errors import ConfigError
from scorecast.models.base import HEADS, FeatureShape, HeadOutput
from scorecast.models.heads import LOG_VAR_RANGE, TrunkHead


@HEADS.register("prior")
class PriorHead(TrunkHead):
    """Calibrated prior + a zero-initialised correction (see the module docstring).

    Params: ``feature`` (the input feature holding the prior; None: a constant prior), ``index`` (its
    column, default 0), ``hidden``, ``dropout`` (the correction's trunk). Gives ``mean``, ``log_var``
    and ``std`` (as the heteroscedastic head) and ``correction`` (B, T) in units of half the target
    range (what ``correction-l2`` penalises).
    """

    provides = ("mean", "log_var", "std", "correction")
    reads_features: ClassVar[bool] = True

    def __init__(
        self,
        in_dim: int,
        targets: list[TargetSpec],
        feature: str | None = None,
        index: int = 0,
        hidden: Sequence[int] = (),
        dropout: float = 0.0,
        inputs: dict[str, FeatureShape] | None = None,
    ) -> None:
        super().__init__(in_dim, targets, hidden, dropout)
        if feature is not None and not isinstance(feature, str):
            raise ConfigError(f"{self.where}: expected 'feature' to be a feature name, got {feature!r}")
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ConfigError(f"{self.where}: expected 'index' to be a whole number >= 0, got {index!r}")
        if feature is not None and inputs is not None:
            if feature not in inputs:
                raise ConfigError(
                    f"{self.where}: the prior feature '{feature}' is not an input; the inputs are: "
                    f"{', '.join(inputs) or '(none)'}"
                )
            if index >= inputs[feature].dim:
                raise ConfigError(
                    f"{self.where}: 'index' {index} is out of range for feature '{feature}' of size {inputs[feature].dim}"
                )
        self.feature, self.index = feature, index
        t = self.num_targets
        self.register_buffer("slope", torch.zeros(t))
        self.register_buffer("intercept", (self.low + self.high) / 2)
        self.register_buffer("half_range", (self.high - self.low) / 2, persistent=False)
        self.out_correction = nn.Linear(self.width, t)
        nn.init.zeros_(self.out_correction.weight)
        nn.init.zeros_(self.out_correction.bias)
        self.out_log_var = nn.Linear(self.width, t)
        offset = torch.tensor([2 * math.log((s.high - s.low) / 4) for s in self.targets], dtype=torch.float32)
        self.register_buffer("log_var_offset", offset, persistent=False)

    def prior_column(self, pooled: dict[str, torch.Tensor] | dict[str, np.ndarray] | None, n: int):
        """(B,) the prior feature's column; None for a constant prior."""
        if self.feature is None:
            return None
        if pooled is None or self.feature not in pooled:
            have = ", ".join(pooled or {}) or "none"
            raise ConfigError(f"{self.where}: needs the pooled feature '{self.feature}' to read its prior; got {have}")
        return pooled[self.feature][:, self.index]

    def calibrate_prior(self, pooled: dict[str, np.ndarray], target: np.ndarray) -> None:
        """Least-squares ``target ~ slope * x_prior + intercept`` per target on training items
        (``pooled`` as the model sees them, ``target`` (N, T), NaN skipped); a constant prior gets the
        mean. Refuses a prior column that is constant or not finite on the training items."""
        target = np.asarray(target, dtype=np.float64).reshape(len(target), -1)
        x = self.prior_column(pooled, len(target))
        slope, intercept = np.zeros(self.num_targets), np.zeros(self.num_targets)
        for j in range(self.num_targets):
            ok = np.isfinite(target[:, j])
            if not ok.any():
                raise ConfigError(f"{self.where}: no training item has target '{self.targets[j].name}' to calibrate on")
            y = target[ok, j]
            if x is None:
                intercept[j] = y.mean()
                continue
            xj = np.asarray(x, dtype=np.float64)[ok]
            if not np.isfinite(xj).all() or np.ptp(xj) == 0:
                raise ConfigError(
                    f"{self.where}: the prior column {self.index} of '{self.feature}' is constant or not finite on "
                    f"the training items; expected a varying score to calibrate"
                )
            slope[j], intercept[j] = np.polyfit(xj, y, 1)
        with torch.no_grad():
            self.slope.copy_(torch.as_tensor(slope, dtype=torch.float32))
            self.intercept.copy_(torch.as_tensor(intercept, dtype=torch.float32))

    def prior(self, pooled: dict[str, torch.Tensor] | None, h: torch.Tensor) -> torch.Tensor:
        """(B, T) the calibrated prior."""
        x = self.prior_column(pooled, h.shape[0])
        base = self.intercept.to(h.dtype).expand(h.shape[0], -1)
        if x is None:
            return base
        return base + x.to(h.dtype).unsqueeze(1) * self.slope.to(h.dtype)

    def forward(self, h: torch.Tensor, pooled: dict[str, torch.Tensor] | None = None) -> HeadOutput:
        z = self.trunk(h)
        correction = self.out_correction(z)
        mean = self.prior(pooled, h) + self.half_range * correction
        log_var = (self.out_log_var(z) + self.log_var_offset).clamp(*LOG_VAR_RANGE)
        return HeadOutput(mean=mean, log_var=log_var, std=torch.exp(0.5 * log_var), correction=correction)
