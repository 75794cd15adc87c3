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
    """What a fusion is told about one input feature: ``dim`` of its pooled vector, whether it has a
    frame sequence, and ``seq_dim`` of the frames where that differs from ``dim`` (eGeMAPS: 88
    functionals pooled, 25 low-level descriptors per frame)."""

    dim: int
    has_sequence: bool = False
    seq_dim: int | None = None

    @property
    def frame_dim(self) -> int:
        """Size of one frame a fusion reads: ``seq_dim`` for a sequence that has its own, else ``dim``
        (a feature without a sequence is read as a length-1 sequence of its pooled vector)."""
        return self.seq_dim if self.has_sequence and self.seq_dim is not None else self.dim


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
