"""Score bins shared by the class/ordinal/distribution heads and their losses.

A target with range [low, high] and step s has K_t = num_bins levels low, low+s, ..., high. Several
targets share tensors of the largest K; a target with fewer levels has its extra bins marked invalid
(logits ``PAD_LOGIT``, probability 0) and its extra thresholds likewise.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from scorecast.config import TargetSpec
from scorecast.errors import ConfigError

#: logit given to bins (and thresholds) a target does not have: finite (fp16-safe), softmax/sigmoid -> 0
PAD_LOGIT = -1.0e4


def bin_edges(target: TargetSpec) -> np.ndarray:
    """(K+1,) edges half a step either side of each level: for ``Ratings.histogram``."""
    return target.low - target.step / 2 + target.step * np.arange(target.num_bins + 1)


class BinLayout(nn.Module):
    """The bin grid of a list of targets, as non-persistent buffers (they follow ``.to(device)`` and
    never enter a state_dict).

    ``centers`` (T, K) level values (0 where invalid); ``valid`` (T, K) bool; ``thr_valid`` (T, K-1)
    bool; ``low``, ``step``, ``high`` (T,); ``counts`` (T,) levels per target.
    """

    def __init__(self, targets: list[TargetSpec], *, min_bins: int = 2, where: str = "head") -> None:
        super().__init__()
        if not targets:
            raise ConfigError(f"{where}: expected at least one target, got none")
        counts = [t.num_bins for t in targets]
        for t, k in zip(targets, counts):
            if k < min_bins:
                raise ConfigError(
                    f"{where}: target '{t.name}' has {k} score level(s) (low={t.low}, high={t.high}, "
                    f"step={t.step}); expected at least {min_bins}"
                )
        self.num_targets = len(targets)
        self.num_bins = max(counts)
        k = self.num_bins
        centers = torch.zeros(len(targets), k)
        valid = torch.zeros(len(targets), k, dtype=torch.bool)
        for i, t in enumerate(targets):
            centers[i, : counts[i]] = torch.as_tensor(t.bin_centers(), dtype=torch.float32)
            valid[i, : counts[i]] = True
        self.register_buffer("centers", centers, persistent=False)
        self.register_buffer("valid", valid, persistent=False)
        self.register_buffer("thr_valid", valid[:, 1:].clone(), persistent=False)
        self.register_buffer("counts", torch.tensor(counts), persistent=False)
        self.register_buffer("low", torch.tensor([t.low for t in targets], dtype=torch.float32), persistent=False)
        self.register_buffer("high", torch.tensor([t.high for t in targets], dtype=torch.float32), persistent=False)
        self.register_buffer("step", torch.tensor([t.step for t in targets], dtype=torch.float32), persistent=False)

    # ------------------------------------------------------------------ units <-> bins

    def to_index(self, values: torch.Tensor) -> torch.Tensor:
        """(B, T) scores in target units -> (B, T) long index of the nearest level (clamped to the
        range; NaN -> 0, mask those yourself)."""
        idx = torch.round((values - self.low) / self.step)
        idx = torch.nan_to_num(idx, nan=0.0)
        idx = torch.minimum(idx.clamp(min=0), (self.counts - 1).to(idx.dtype))
        return idx.long()

    def from_index(self, index: torch.Tensor) -> torch.Tensor:
        """(B, T) level index -> (B, T) scores in target units."""
        return self.low + self.step * index.to(self.low.dtype)

    # ------------------------------------------------------------------ decoding

    def mask_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, T, K) logits with bins a target lacks set to ``PAD_LOGIT``."""
        return logits.masked_fill(~self.valid, PAD_LOGIT)

    def mask_cum_logits(self, cum_logits: torch.Tensor) -> torch.Tensor:
        return cum_logits.masked_fill(~self.thr_valid, PAD_LOGIT)

    def expected(self, probs: torch.Tensor) -> torch.Tensor:
        """(B, T, K) probabilities -> (B, T) expected score."""
        return (probs * self.centers).sum(-1)

    def spread(self, probs: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        """(B, T) standard deviation of the distribution ``probs`` around ``mean``."""
        var = (probs * (self.centers - mean.unsqueeze(-1)) ** 2).sum(-1)
        return torch.sqrt(var.clamp(min=1e-12))

    def cumulative_mean(self, cum_logits: torch.Tensor) -> torch.Tensor:
        """(B, T, K-1) logits of P(y > k) -> (B, T) ``low + step * sum_k P(y > k)``."""
        exceed = torch.sigmoid(cum_logits) * self.thr_valid
        return self.low + self.step * exceed.sum(-1)

    def cumulative_probs(self, cum_logits: torch.Tensor) -> torch.Tensor:
        """(B, T, K-1) cumulative logits -> (B, T, K) level probabilities ``P(y>k-1) - P(y>k)``, clipped
        at 0 and renormalised (CORAL's thresholds need not stay ordered)."""
        exceed = torch.sigmoid(cum_logits) * self.thr_valid
        ones = torch.ones_like(exceed[..., :1])
        zeros = torch.zeros_like(exceed[..., :1])
        upper = torch.cat([ones, exceed], dim=-1)
        lower = torch.cat([exceed, zeros], dim=-1)
        probs = (upper - lower).clamp(min=0) * self.valid
        return probs / probs.sum(-1, keepdim=True).clamp(min=1e-12)

    # ------------------------------------------------------------------ targets over bins

    def exceed_levels(self, values: torch.Tensor) -> torch.Tensor:
        """(B, T) scores -> (B, T, K-1) float indicators ``[y > level k]`` (index > k), 0 at invalid thresholds."""
        idx = self.to_index(values)
        ks = torch.arange(self.num_bins - 1, device=idx.device)
        return ((idx.unsqueeze(-1) > ks) & self.thr_valid).to(self.low.dtype)

    def gaussian(self, values: torch.Tensor, sigma: float | None = None) -> torch.Tensor:
        """(B, T) scores -> (B, T, K) Gaussian-smoothed target distributions over each target's levels
        (``sigma`` in score units; default half a step). NaN scores give uniform rows (mask them)."""
        s = self.step / 2 if sigma is None else torch.full_like(self.step, float(sigma))
        v = torch.nan_to_num(values, nan=0.0).unsqueeze(-1)
        logit = -((self.centers - v) ** 2) / (2 * s.unsqueeze(-1) ** 2)
        logit = logit.masked_fill(~self.valid, float("-inf"))
        return torch.softmax(logit, dim=-1)


def rating_histograms(ratings: list[dict], targets: list[TargetSpec]) -> np.ndarray:
    """Per-rater histograms for the ``kl`` loss's ``extra['target_dist']``: ``ratings[i]`` is item i's
    ``Item.ratings`` ({target name: Ratings}) -> (N, T, K) float32 over each target's levels (K the
    largest level count; extra bins 0). An item without ratings for a target gets a zero row, which
    the loss replaces by the Gaussian-smoothed target."""
    k = max(t.num_bins for t in targets)
    out = np.zeros((len(ratings), len(targets), k), dtype=np.float32)
    for j, target in enumerate(targets):
        edges = bin_edges(target)
        for i, item_ratings in enumerate(ratings):
            r = item_ratings.get(target.name)
            if r is not None and r.count > 0:
                out[i, j, : target.num_bins] = r.histogram(edges)
    return out
