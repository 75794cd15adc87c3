"""Listener-aware training (``training.listeners``): learn from every listener's rating, predict for
the mean listener.

Each training item with per-listener ratings becomes one training row per rating; the model's output
``m`` is the mean listener's score, and listener ``l``'s rating is modelled as

    centre + exp(s_l) * (m - centre) + half_range * b_l

with ``b`` and ``s`` centred over the listeners (so the mean listener has bias 0 and scale 1) and an
L2 penalty ``l2 * mean(b^2 + s^2)``. Rows without a listener (items with only a mean score, augmented
copies, synthetic negatives) use the mean listener. Validation, prediction and the saved scorer use the
mean listener only: the listener table stays behind with the training run (``member.listeners``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from scorecast.config import Listeners, Recipe, TargetSpec
from scorecast.data.items import Ratings
from scorecast.errors import ConfigError, DataError

#: head outputs a listener transform keeps meaningful (it moves ``mean``; the others are per-rating spreads)
LISTENER_SAFE_OUTPUTS = {"mean", "log_var", "std", "correction"}


def check_listener_recipe(recipe: Recipe) -> None:
    """Refuse what listener-aware training cannot do, saying why."""
    from scorecast.losses.base import LOSSES

    if len(recipe.targets) != 1:
        raise ConfigError(
            f"training.listeners: expected one target (listener ratings are per target), got {len(recipe.targets)}"
        )
    if recipe.training.mixup_alpha > 0:
        raise ConfigError(
            "training.listeners: mixup mixes two items' ratings of different listeners; set mixup_alpha: 0"
        )
    for term in recipe.losses:
        needs = set(LOSSES.get(term.name).requires) - LISTENER_SAFE_OUTPUTS
        if needs:
            raise ConfigError(
                f"training.listeners: loss '{term.name}' reads {sorted(needs)}, which a listener's bias and scale "
                f"do not transform; expected losses on the mean (mse, mae, huber, gaussian-nll, cosent, ...)"
            )


@dataclass
class ListenerRows:
    """Training rows of listener-aware training: ``items`` (R,) item index, ``values`` (R,) the rating,
    ``listener`` (R,) listener index (-1: the mean listener), ``names`` the listeners in index order."""

    items: np.ndarray
    values: np.ndarray
    listener: np.ndarray
    names: list[str]


def expand_ratings(train_idx: np.ndarray, targets: np.ndarray, ratings: Sequence[Ratings | None]) -> ListenerRows:
    """One row per (training item, rating); an item without rater ids keeps one row with its mean
    score and the mean listener. DataError when no training item has rater ids."""
    names = sorted({r for i in train_idx if ratings[i] is not None for r in (ratings[i].raters or [])})
    if not names:
        raise DataError(
            "training.listeners: expected per-listener ratings with rater ids on the training items, got none "
            "(read the data with a rater column, participant lists or the yourtts reader, or drop training.listeners)"
        )
    index = {n: k for k, n in enumerate(names)}
    items, values, listener = [], [], []
    for i in train_idx:
        rt = ratings[i]
        if rt is not None and rt.raters:
            items += [i] * rt.count
            values += [float(v) for v in rt.values]
            listener += [index[r] for r in rt.raters]
        elif np.isfinite(targets[i, 0]):
            items.append(i)
            values.append(float(targets[i, 0]))
            listener.append(-1)
    return ListenerRows(np.asarray(items, int), np.asarray(values, float), np.asarray(listener, int), names)


class ListenerLayer(nn.Module):
    """Per-listener bias and (optionally) scale applied to the mean listener's score (B, 1)."""

    def __init__(self, n_listeners: int, target: TargetSpec, cfg: Listeners) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(n_listeners))
        self.log_scale = nn.Parameter(torch.zeros(n_listeners), requires_grad=bool(cfg.scale))
        self.centre = (target.low + target.high) / 2
        self.half_range = (target.high - target.low) / 2
        self.l2 = float(cfg.l2)

    def centred(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.bias - self.bias.mean(), self.log_scale - self.log_scale.mean()

    def forward(self, mean: torch.Tensor, listener: torch.Tensor) -> torch.Tensor:
        """(B, 1) listener ``listener`` (B,)'s expected rating (the mean listener where the index is -1)."""
        bias, log_scale = self.centred()
        known = listener >= 0
        safe = listener.clamp(min=0)
        b = torch.where(known, bias[safe], torch.zeros_like(bias[safe])).unsqueeze(1).to(mean.dtype)
        s = torch.where(known, log_scale[safe], torch.zeros_like(bias[safe])).unsqueeze(1).to(mean.dtype)
        return self.centre + torch.exp(s) * (mean - self.centre) + self.half_range * b

    def penalty(self) -> torch.Tensor:
        bias, log_scale = self.centred()
        return self.l2 * ((bias**2).mean() + (log_scale**2).mean())

    def table(self, names: Sequence[str]) -> dict[str, dict[str, float]]:
        """{listener: {"bias" (target units), "scale"}} of the mean-centred parameters."""
        bias, log_scale = (t.detach().cpu().numpy() for t in self.centred())
        return {
            n: {"bias": float(self.half_range * bias[k]), "scale": float(np.exp(log_scale[k]))}
            for k, n in enumerate(names)
        }
