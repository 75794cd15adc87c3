"""``kl``: KL(target distribution || predicted distribution) over score bins, for the
``distribution`` (or ``expected-class``) head."""

from __future__ import annotations

import torch

from scorecast.config import TargetSpec
from scorecast.errors import ConfigError
from scorecast.losses.base import LOSSES
from scorecast.losses.classification import BinLoss
from scorecast.losses.common import Batch, check_number, reduce_elementwise


@LOSSES.register("kl")
class KLLoss(BinLoss):
    """``sum_k q_k (log q_k - log p_k)`` per item and target, where ``p = softmax(logits)`` and ``q`` is
    ``extra['target_dist']`` (B, T, K) (per-rater histograms over the levels) where given, else (and in
    any row of it that is all zero or not finite) a Gaussian over the levels centred on the target with
    standard deviation ``sigma`` (score units; default half a step)."""

    def __init__(self, targets: list[TargetSpec], sigma: float | None = None) -> None:
        super().__init__(targets)
        self.sigma = None if sigma is None else check_number(sigma, "sigma", self.where, low=0.0, low_open=True)

    def target_distribution(self, batch: Batch, extra) -> torch.Tensor:
        q = self.bins.gaussian(batch.target, self.sigma)
        given = extra.get("target_dist")
        if given is None:
            return q
        given = torch.as_tensor(given, device=q.device).to(q.dtype)
        if tuple(given.shape) != tuple(q.shape):
            raise ConfigError(
                f"{self.where}: expected extra['target_dist'] of shape (B, T, K) = {tuple(q.shape)}, "
                f"got {tuple(given.shape)}"
            )
        given = given * self.bins.valid
        finite = torch.isfinite(given).all(-1)
        given = torch.nan_to_num(given, nan=0.0, posinf=0.0, neginf=0.0)
        if bool((given < 0).any()):
            raise ConfigError(f"{self.where}: extra['target_dist'] holds negative values; expected histograms")
        total = given.sum(-1, keepdim=True)
        usable = finite & (total.squeeze(-1) > 0)
        return torch.where(usable.unsqueeze(-1), given / total.clamp(min=1e-12), q)

    def compute(self, out, batch: Batch, extra) -> torch.Tensor:
        log_p = self.log_probs(out)
        q = self.target_distribution(batch, extra)
        values = (torch.xlogy(q, q) - q * log_p).sum(-1)
        return reduce_elementwise(values, batch)
