"""What every scorecast loss shares: the head-output check, NaN-target masking, sample weights and the
reduction (weighted mean over the valid items of each target, then the mean over targets)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from scorecast.config import TargetSpec
from scorecast.errors import ConfigError
from scorecast.losses.base import Loss


class Batch:
    """A checked batch: ``target`` (B, T) with NaN replaced by the (detached) prediction, ``valid``
    (B, T) bool (False where the target was NaN), ``weight`` (B,) float (ones when not given)."""

    def __init__(self, target: torch.Tensor, valid: torch.Tensor, weight: torch.Tensor) -> None:
        self.target = target
        self.valid = valid
        self.weight = weight

    def items(self, t: int) -> torch.Tensor:
        """Bool (B,) selecting the items whose target ``t`` is present."""
        return self.valid[:, t]


class ScoreLoss(Loss):
    """Base of scorecast's losses: ``forward`` checks the head output and the shapes, masks NaN targets,
    and hands a :class:`Batch` to ``compute(out, batch, extra) -> scalar``."""

    registry_name: ClassVar[str] = "loss"

    def __init__(self, targets: list[TargetSpec]) -> None:
        if not isinstance(targets, (list, tuple)) or not targets or not all(isinstance(t, TargetSpec) for t in targets):
            raise ConfigError(f"{self.where}: expected a non-empty list of TargetSpec as 'targets', got {targets!r}")
        super().__init__(list(targets))

    @property
    def where(self) -> str:
        return f"loss '{type(self).registry_name}'"

    def forward(
        self,
        out: dict[str, torch.Tensor],
        target: torch.Tensor,
        weight: torch.Tensor | None = None,
        extra: dict[str, Any] | None = None,
    ) -> torch.Tensor:
        check_requires(self, out)
        batch = prepare_batch(self, out["mean"], target, weight)
        return self.compute(out, batch, extra or {})

    def compute(self, out: dict[str, torch.Tensor], batch: Batch, extra: dict[str, Any]) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover


class PerTargetLoss(ScoreLoss):
    """Base of the losses over a whole batch (correlation, ranking): for each target ``t``,
    ``target_loss(t, p, y, w)`` gets the predictions, targets and weights (N,) of the items where that
    target is present (at least two) and returns a scalar, or None when they give nothing to learn
    from; the loss is the mean over the targets that gave one (zero, attached to the graph, if none)."""

    def compute(self, out: dict[str, torch.Tensor], batch: Batch, extra: dict[str, Any]) -> torch.Tensor:
        mean = out["mean"].float()
        parts = []
        for t in range(mean.shape[1]):
            sel = batch.items(t)
            if int(sel.sum()) < 2:
                continue
            part = self.target_loss(t, mean[sel, t], batch.target[sel, t], batch.weight[sel])
            if part is not None:
                parts.append(part)
        return mean_over_targets(parts, mean)

    def target_loss(self, t: int, p: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor | None:
        raise NotImplementedError  # pragma: no cover


def check_requires(loss: Loss, out: dict[str, torch.Tensor]) -> None:
    """Raise a ConfigError naming the loss, the keys it needs, and the keys the head gave."""
    missing = [k for k in loss.requires if k not in out]
    if missing:
        name = getattr(type(loss), "registry_name", type(loss).__name__)
        raise ConfigError(
            f"loss '{name}' needs head output(s) {missing}, but the head gives only {sorted(out)}; "
            f"use a head that gives {missing}: {', '.join(heads_providing(missing)) or '(none registered)'}"
        )


def heads_providing(keys: list[str]) -> list[str]:
    """Registered head names whose ``provides`` covers ``keys``."""
    from scorecast.models.base import HEADS

    return [n for n in HEADS.names() if set(keys) <= set(getattr(HEADS.get(n), "provides", ()))]


def prepare_batch(loss: ScoreLoss, mean: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None) -> Batch:
    where = loss.where
    if mean.ndim != 2:
        raise ConfigError(f"{where}: expected the head's mean to be (B, T), got shape {tuple(mean.shape)}")
    b, t = mean.shape
    target = torch.as_tensor(target, device=mean.device)
    if target.ndim == 1 and t == 1:
        target = target.unsqueeze(1)
    if tuple(target.shape) != (b, t):
        raise ConfigError(f"{where}: expected target of shape (B, T) = ({b}, {t}), got {tuple(target.shape)}")
    if t != len(loss.targets):
        raise ConfigError(f"{where}: built for {len(loss.targets)} target(s), but the head gives {t}")
    target = target.to(torch.float32)
    valid = ~torch.isnan(target)
    target = torch.where(valid, target, mean.detach().to(torch.float32))
    if weight is None:
        w = torch.ones(b, device=mean.device)
    else:
        w = torch.as_tensor(weight, device=mean.device).to(torch.float32)
        if tuple(w.shape) != (b,):
            raise ConfigError(f"{where}: expected sample weights of shape (B,) = ({b},), got {tuple(w.shape)}")
    return Batch(target, valid, w)


def zero_like_graph(x: torch.Tensor) -> torch.Tensor:
    """A zero scalar still attached to ``x``'s graph (a batch with nothing to learn from)."""
    return (x * 0.0).sum()


def reduce_elementwise(values: torch.Tensor, batch: Batch) -> torch.Tensor:
    """(B, T) per-item losses -> scalar: weighted mean over valid items per target, mean over targets
    that have any valid item."""
    wm = batch.weight.unsqueeze(1) * batch.valid
    den = wm.sum(0)
    has = den > 0
    if not bool(has.any()):
        return zero_like_graph(values)
    per_target = (values * wm).sum(0)[has] / den[has]
    return per_target.mean()


def mean_over_targets(parts: list[torch.Tensor], fallback: torch.Tensor) -> torch.Tensor:
    """Mean of the per-target losses that could be computed (zero, attached to ``fallback``, if none)."""
    if not parts:
        return zero_like_graph(fallback)
    return torch.stack(parts).mean()


def weighted_pearson(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Pearson correlation of (N,) ``x`` and ``y`` with non-negative weights ``w`` (N,)."""
    w = w / w.sum()
    xc = x - (w * x).sum()
    yc = y - (w * y).sum()
    cov = (w * xc * yc).sum()
    return cov / torch.sqrt((w * xc * xc).sum() * (w * yc * yc).sum() + eps)


def check_number(value: Any, name: str, where: str, *, low: float | None = None, low_open: bool = False) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ConfigError(f"{where}: expected '{name}' to be a number, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        raise ConfigError(f"{where}: expected '{name}' {'>' if low_open else '>='} {low}, got {value}")
    return float(value)
