"""The loss family. Importing this package registers every loss."""

from __future__ import annotations

from scorecast.losses import classification, correlation, distribution, ordinal, ranking, regression  # noqa: F401
from scorecast.losses.base import LOSSES, Loss
from scorecast.losses.combined import CombinedLoss, build_loss
from scorecast.losses.common import ScoreLoss

__all__ = ["LOSSES", "CombinedLoss", "Loss", "ScoreLoss", "build_loss"]
