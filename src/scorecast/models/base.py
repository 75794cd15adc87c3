"""Fusions and heads: the trainable part of a scorer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from scorecast.config import TargetSpec
from scorecast.registry import Registry


@dataclass(frozen=True)
class FeatureShape:
    """What a fusion is told about one input feature."""

    dim: int
    has_sequence: bool = False


class Fusion(nn.Module):
    """Combines the encoded inputs of a batch into one vector per item.

    ``forward(pooled, sequences, masks)``: ``pooled[name]`` (B, D_name); ``sequences[name]`` (B, T, D)
    with ``masks[name]`` (B, T) True at real frames. Returns (B, out_dim).
    """

    out_dim: int

    def __init__(self, inputs: dict[str, FeatureShape], **params: Any) -> None:
        super().__init__()
        self.inputs = dict(inputs)


class HeadOutput(dict):
    """Keys: ``mean`` (B, T) always (decoded scores in target units); optionally ``std`` (B, T),
    ``log_var`` (B, T), ``logits`` (B, T, K) over score bins, ``probs`` (B, T, K)."""


class Head(nn.Module):
    """Maps a fused vector (B, in_dim) to scores for each target."""

    def __init__(self, in_dim: int, targets: list[TargetSpec], **params: Any) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.targets = list(targets)

    def forward(self, h: torch.Tensor) -> HeadOutput:  # pragma: no cover - abstract
        raise NotImplementedError


FUSIONS: Registry[type[Fusion]] = Registry("fusion")
HEADS: Registry[type[Head]] = Registry("head")
