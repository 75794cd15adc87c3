"""The loss family. Every loss takes ``(out, target, weight)`` and returns a scalar."""

from __future__ import annotations

from typing import Any

from torch import nn

from scorecast.config import TargetSpec
from scorecast.registry import Registry


class Loss(nn.Module):
    """``forward(out, target, weight=None, extra=None)``.

    ``out`` is a :class:`scorecast.models.base.HeadOutput` (``mean`` (B, T), maybe ``log_var``,
    ``logits`` (B, T, K), ...); ``target`` (B, T) in score units; ``weight`` (B,) sample weights;
    ``extra`` may hold ``target_dist`` (B, T, K) rating histograms. Losses that need a head output
    the head does not give raise a ConfigError naming both.
    """

    requires: tuple[str, ...] = ("mean",)

    def __init__(self, targets: list[TargetSpec], **params: Any) -> None:
        super().__init__()
        self.targets = list(targets)


LOSSES: Registry[type[Loss]] = Registry("loss")
