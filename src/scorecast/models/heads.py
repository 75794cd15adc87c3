"""Point heads: ``regression`` and ``heteroscedastic`` (mean + log-variance), plus the shared head base.

Every head maps (B, in_dim) -> :class:`HeadOutput` with ``mean`` (B, T) in target units, T = number
of targets, and declares the keys it gives in ``provides`` (losses check their ``requires`` against it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from scorecast.config import TargetSpec
from scorecast.errors import ConfigError
from scorecast.models.base import HEADS, Head, HeadOutput
from scorecast.models.layers import check_positive_int, mlp, mlp_out_dim

LOG_VAR_RANGE = (-15.0, 15.0)


class TrunkHead(Head):
    """Base of scorecast's heads: validates ``in_dim``/``targets`` and builds an optional MLP trunk
    (``hidden`` sizes, ``dropout``) before the output layer; ``self.width`` is the trunk's output size."""

    provides: ClassVar[tuple[str, ...]] = ("mean",)
    registry_name: ClassVar[str] = "head"

    def __init__(
        self, in_dim: int, targets: list[TargetSpec], hidden: Sequence[int] = (), dropout: float = 0.0
    ) -> None:
        where = self.where
        in_dim = check_positive_int(in_dim, "in_dim", where)
        if not isinstance(targets, (list, tuple)) or not targets or not all(isinstance(t, TargetSpec) for t in targets):
            raise ConfigError(f"{where}: expected a non-empty list of TargetSpec as 'targets', got {targets!r}")
        super().__init__(in_dim, list(targets))
        self.trunk = mlp(in_dim, hidden, dropout, where=where)
        self.width = mlp_out_dim(in_dim, hidden)
        lows = torch.tensor([t.low for t in self.targets], dtype=torch.float32)
        highs = torch.tensor([t.high for t in self.targets], dtype=torch.float32)
        self.register_buffer("low", lows, persistent=False)
        self.register_buffer("high", highs, persistent=False)

    @property
    def where(self) -> str:
        return f"head '{type(self).registry_name}'"

    @property
    def num_targets(self) -> int:
        return len(self.targets)

    def mean_layer(self) -> nn.Linear | None:
        """The output layer whose outputs :meth:`to_range` maps to the mean (None: no calibrated start)."""
        return None

    @torch.no_grad()
    def calibrate(self, h: torch.Tensor, target: torch.Tensor, ridge: float = 1e-3) -> bool:
        """Set :meth:`mean_layer` by ridge least squares so that the head starts at the best linear map of
        its trunk's outputs on ``h`` (N, in_dim) to ``target`` (N, T) (in the raw space ``to_range``
        reads: logits for a bounded head). ``ridge`` is relative to the mean feature variance. Returns
        False where the head has no such layer or no target has two finite values."""
        layer = self.mean_layer()
        if layer is None:
            return False
        was = self.training
        self.eval()
        z = self.trunk(h).double()
        self.train(was)
        done = False
        for j in range(self.num_targets):
            ok = torch.isfinite(target[:, j])
            if int(ok.sum()) < 2:
                continue
            y = target[ok, j].double()
            low, high = float(self.low[j]), float(self.high[j])
            if getattr(self, "bounded", False):
                u = ((y - low) / (high - low)).clamp(0.02, 0.98)
                raw = torch.log(u / (1 - u))
            else:
                raw = (y - (low + high) / 2) / ((high - low) / 2)
            x = z[ok]
            mu, r_mu = x.mean(0), raw.mean()
            xc = x - mu
            gram = xc.T @ xc
            lam = ridge * float(torch.trace(gram)) / max(x.shape[1], 1) + 1e-12
            w = torch.linalg.solve(gram + lam * torch.eye(x.shape[1], dtype=x.dtype), xc.T @ (raw - r_mu))
            layer.weight[j] = w.to(layer.weight.dtype)
            layer.bias[j] = float(r_mu - mu @ w)
            done = True
        return done

    def to_range(self, z: torch.Tensor, bounded: bool) -> torch.Tensor:
        """(B, T) raw outputs -> target units: ``low + (high-low) * sigmoid(z)`` when bounded, else
        ``centre + half_range * z`` (so a zero-initialised output starts mid-range)."""
        if bounded:
            return self.low + (self.high - self.low) * torch.sigmoid(z)
        return (self.low + self.high) / 2 + (self.high - self.low) / 2 * z


@HEADS.register("regression")
class RegressionHead(TrunkHead):
    """MLP -> T scores. ``bounded`` squashes each into its target's [low, high] with a sigmoid."""

    provides = ("mean",)

    def __init__(
        self,
        in_dim: int,
        targets: list[TargetSpec],
        hidden: Sequence[int] = (),
        dropout: float = 0.0,
        bounded: bool = False,
    ) -> None:
        super().__init__(in_dim, targets, hidden, dropout)
        self.bounded = bool(bounded)
        self.out = nn.Linear(self.width, self.num_targets)

    def mean_layer(self) -> nn.Linear:
        return self.out

    def forward(self, h: torch.Tensor) -> HeadOutput:
        return HeadOutput(mean=self.to_range(self.out(self.trunk(h)), self.bounded))


@HEADS.register("heteroscedastic")
class HeteroscedasticHead(TrunkHead):
    """MLP -> a mean and a log-variance per target (train with ``gaussian-nll``).

    ``log_var`` (B, T) is offset so that a zero output means a standard deviation of a quarter of the
    target's range, and clamped to ``LOG_VAR_RANGE``; ``std`` = exp(0.5 * log_var).
    """

    provides = ("mean", "log_var", "std")

    def __init__(
        self,
        in_dim: int,
        targets: list[TargetSpec],
        hidden: Sequence[int] = (),
        dropout: float = 0.0,
        bounded: bool = False,
    ) -> None:
        super().__init__(in_dim, targets, hidden, dropout)
        self.bounded = bool(bounded)
        self.out_mean = nn.Linear(self.width, self.num_targets)
        self.out_log_var = nn.Linear(self.width, self.num_targets)
        offset = torch.tensor([2 * math.log((t.high - t.low) / 4) for t in self.targets], dtype=torch.float32)
        self.register_buffer("log_var_offset", offset, persistent=False)

    def mean_layer(self) -> nn.Linear:
        return self.out_mean

    def forward(self, h: torch.Tensor) -> HeadOutput:
        z = self.trunk(h)
        mean = self.to_range(self.out_mean(z), self.bounded)
        log_var = (self.out_log_var(z) + self.log_var_offset).clamp(*LOG_VAR_RANGE)
        return HeadOutput(mean=mean, log_var=log_var, std=torch.exp(0.5 * log_var))
