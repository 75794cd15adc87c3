"""Heads over score bins: ``expected-class``, ``distribution`` (softmax) and ``ordinal``, ``coral``
(cumulative logits). Bins are each target's levels low, low+step, ..., high (see ``bins.BinLayout``)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from scorecast.config import TargetSpec
from scorecast.models.base import HEADS, HeadOutput
from scorecast.models.bins import BinLayout
from scorecast.models.heads import TrunkHead


def _centred_thresholds(counts: list[int], width: int) -> torch.Tensor:
    """(T, width) logits ``(K_t-2)/2 - k`` for k < K_t-1: evenly spaced, so P(y>k) starts symmetric
    around the middle level and the decoded mean starts mid-range."""
    out = torch.zeros(len(counts), width)
    for i, k in enumerate(counts):
        out[i, : k - 1] = (k - 2) / 2 - torch.arange(k - 1, dtype=torch.float32)
    return out


@HEADS.register("expected-class")
class ExpectedClassHead(TrunkHead):
    """Softmax over each target's score levels; ``mean`` is the expected value, ``std`` the
    distribution's standard deviation. Gives ``logits``, ``probs`` (B, T, K). Train with
    ``cross-entropy``/``focal`` (and any point loss on ``mean``)."""

    provides = ("mean", "std", "logits", "probs")

    def __init__(
        self, in_dim: int, targets: list[TargetSpec], hidden: Sequence[int] = (), dropout: float = 0.0
    ) -> None:
        super().__init__(in_dim, targets, hidden, dropout)
        self.bins = BinLayout(self.targets, where=self.where)
        self.out = nn.Linear(self.width, self.num_targets * self.bins.num_bins)

    def forward(self, h: torch.Tensor) -> HeadOutput:
        z = self.out(self.trunk(h)).view(h.shape[0], self.num_targets, self.bins.num_bins)
        return self.decode(z)

    def decode(self, logits: torch.Tensor) -> HeadOutput:
        """(B, T, K) raw logits -> the head's output (invalid bins masked; float32 even under autocast)."""
        logits = self.bins.mask_logits(logits.float())
        probs = torch.softmax(logits, dim=-1)
        mean = self.bins.expected(probs)
        return HeadOutput(mean=mean, std=self.bins.spread(probs, mean), logits=logits, probs=probs)


@HEADS.register("distribution")
class DistributionHead(ExpectedClassHead):
    """The same softmax over levels as ``expected-class``, meant to be trained as a distribution:
    ``kl`` to per-rater histograms (``extra['target_dist']``) or to Gaussian-smoothed targets."""


@HEADS.register("ordinal")
class OrdinalHead(TrunkHead):
    """Cumulative logits with input-dependent, ordered thresholds: for each target the MLP gives K-1
    raw values r; ``cum_logits[0] = r[0]``, ``cum_logits[k] = r[0] - sum_{j<=k} softplus(r[j])``, so
    P(y > k) = sigmoid(cum_logits[k]) never increases with k. ``mean = low + step * sum_k P(y > k)``.
    Gives ``cum_logits`` (B, T, K-1), ``probs`` (B, T, K), ``std``. Train with ``cumulative-bce``/``coral``."""

    provides = ("mean", "std", "cum_logits", "probs")

    def __init__(
        self, in_dim: int, targets: list[TargetSpec], hidden: Sequence[int] = (), dropout: float = 0.0
    ) -> None:
        super().__init__(in_dim, targets, hidden, dropout)
        self.bins = BinLayout(self.targets, where=self.where)
        k1 = self.bins.num_bins - 1
        self.out = nn.Linear(self.width, self.num_targets * k1)
        with torch.no_grad():  # start at evenly spaced thresholds (gaps of 1) centred on the middle level
            bias = torch.full((self.num_targets, k1), math.log(math.e - 1.0))  # softplus^-1(1)
            bias[:, 0] = _centred_thresholds(self.bins.counts.tolist(), k1)[:, 0]
            self.out.bias.copy_(bias.reshape(-1))

    def forward(self, h: torch.Tensor) -> HeadOutput:
        raw = self.out(self.trunk(h)).view(h.shape[0], self.num_targets, self.bins.num_bins - 1)
        return self.decode(raw)

    def decode(self, raw: torch.Tensor) -> HeadOutput:
        """(B, T, K-1) raw values -> output with ordered cumulative logits (float32)."""
        raw = raw.float()
        first = raw[..., :1]
        drops = torch.cumsum(F.softplus(raw[..., 1:]), dim=-1)
        cum_logits = torch.cat([first, first - drops], dim=-1)
        return _cumulative_output(self.bins, cum_logits)


@HEADS.register("coral")
class CoralHead(TrunkHead):
    """CORAL (Cao, Mirjalili & Raschka 2020): one weight vector per target shared by all K-1
    thresholds, and K-1 independent biases: ``cum_logits[k] = w . h + b[k]``. Decoded like ``ordinal``.
    Gives ``cum_logits`` (B, T, K-1), ``probs``, ``std``. Train with ``coral``/``cumulative-bce``."""

    provides = ("mean", "std", "cum_logits", "probs")

    def __init__(
        self, in_dim: int, targets: list[TargetSpec], hidden: Sequence[int] = (), dropout: float = 0.0
    ) -> None:
        super().__init__(in_dim, targets, hidden, dropout)
        self.bins = BinLayout(self.targets, where=self.where)
        self.weight = nn.Linear(self.width, self.num_targets, bias=False)
        self.biases = nn.Parameter(_centred_thresholds(self.bins.counts.tolist(), self.bins.num_bins - 1))

    def forward(self, h: torch.Tensor) -> HeadOutput:
        score = self.weight(self.trunk(h))  # (B, T)
        return _cumulative_output(self.bins, score.unsqueeze(-1) + self.biases)


def _cumulative_output(bins: BinLayout, cum_logits: torch.Tensor) -> HeadOutput:
    cum_logits = bins.mask_cum_logits(cum_logits.float())
    mean = bins.cumulative_mean(cum_logits)
    probs = bins.cumulative_probs(cum_logits)
    return HeadOutput(mean=mean, std=bins.spread(probs, mean), cum_logits=cum_logits, probs=probs)
