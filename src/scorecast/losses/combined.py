"""``CombinedLoss``: a weighted sum of losses (e.g. 0.5 MSE + 0.3 Huber + 0.2 ordinal), built from
the recipe's ``losses`` list by :func:`build_loss`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from scorecast.config import LossTerm, TargetSpec
from scorecast.errors import ConfigError
from scorecast.losses.base import LOSSES, Loss
from scorecast.losses.common import heads_providing


class CombinedLoss(nn.Module):
    """``forward(out, target, weight=None, extra=None) -> (total, parts)``: ``total`` is
    ``sum_i weight_i * loss_i`` (a scalar with a graph); ``parts`` maps each term's name (its registry
    name, ``name.2``, ``name.3`` ... when repeated) to its unweighted value, detached, for logging."""

    def __init__(self, terms: Sequence[tuple[float, Loss]]) -> None:
        super().__init__()
        if not terms:
            raise ConfigError("losses: expected at least one loss term, got none")
        names: list[str] = []
        weights: list[float] = []
        for i, term in enumerate(terms):
            if not (isinstance(term, tuple) and len(term) == 2 and isinstance(term[1], Loss)):
                raise ConfigError(f"losses[{i}]: expected a (weight, Loss) pair, got {term!r}")
            weight, loss = term
            if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight < 0:
                raise ConfigError(f"losses[{i}]: expected a non-negative weight, got {weight!r}")
            base = getattr(type(loss), "registry_name", type(loss).__name__)
            name, n = base, 1
            while name in names:
                n += 1
                name = f"{base}.{n}"
            names.append(name)
            weights.append(float(weight))
        self.names = names
        self.weights = weights
        self.losses = nn.ModuleList(loss for _, loss in terms)

    @property
    def requires(self) -> tuple[str, ...]:
        """Every head output any term needs."""
        keys: list[str] = []
        for loss in self.losses:
            keys += [k for k in loss.requires if k not in keys]
        return tuple(keys)

    def check_head(self, provides: Sequence[str], head_name: str = "head") -> None:
        """Fail early (before training) when a term needs outputs the head does not give."""
        for name, loss in zip(self.names, self.losses):
            missing = [k for k in loss.requires if k not in provides]
            if missing:
                raise ConfigError(
                    f"loss '{name}' needs head output(s) {missing}, but head '{head_name}' gives only "
                    f"{sorted(provides)}; use a head that gives them: {', '.join(heads_providing(missing)) or '(none)'}"
                )

    def forward(
        self,
        out: dict[str, torch.Tensor],
        target: torch.Tensor,
        weight: torch.Tensor | None = None,
        extra: dict[str, Any] | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        total: torch.Tensor | None = None
        parts: dict[str, torch.Tensor] = {}
        for name, w, loss in zip(self.names, self.weights, self.losses):
            value = loss(out, target, weight, extra)
            parts[name] = value.detach()
            total = w * value if total is None else total + w * value
        assert total is not None  # at least one term, checked in __init__
        return total, parts


def build_loss(loss_terms: Sequence[LossTerm], targets: Sequence[TargetSpec]) -> CombinedLoss:
    """Build each ``LossTerm`` (``name``, ``params``, ``weight``) from the LOSSES registry for ``targets``."""
    if not loss_terms:
        raise ConfigError("losses: expected at least one loss term (e.g. [{name: mse}]), got none")
    terms = []
    for term in loss_terms:
        if not isinstance(term, LossTerm):
            raise ConfigError(f"losses: expected LossTerm entries, got {type(term).__name__}")
        terms.append((term.weight, LOSSES.build(term.name, targets=list(targets), **term.params)))
    return CombinedLoss(terms)
