"""``concat``: concatenate the pooled inputs, optionally normalised/projected each, then an MLP trunk."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from scorecast.errors import ConfigError
from scorecast.models.base import FUSIONS, FeatureShape, Fusion
from scorecast.models.layers import check_positive_int, get_pooled, mlp, mlp_out_dim, resolve_input


@FUSIONS.register("concat")
class ConcatFusion(Fusion):
    """Concatenates pooled vectors (B, D_i) -> (B, sum D_i or sum project) -> MLP trunk -> (B, out_dim).

    Params: ``use`` (feature names, default all inputs in order), ``norm`` (LayerNorm each input),
    ``project`` (project each input to this size first), ``hidden`` (trunk sizes), ``dropout``.
    """

    uses_sequences: tuple[str, ...] = ()

    def __init__(
        self,
        inputs: dict[str, FeatureShape],
        use: Sequence[str] | None = None,
        norm: bool = False,
        project: int | None = None,
        hidden: Sequence[int] = (256,),
        dropout: float = 0.1,
    ) -> None:
        super().__init__(inputs)
        where = "fusion 'concat'"
        if not inputs:
            raise ConfigError(f"{where}: expected at least one input feature, got none")
        if use is not None and (isinstance(use, str) or not len(use)):
            raise ConfigError(f"{where}: expected 'use' to be a non-empty list of feature names, got {use!r}")
        self.use = [resolve_input(where, inputs, name, "use", None) for name in (use or list(inputs))]
        if project is not None:
            project = check_positive_int(project, "project", where)
        self.norms = nn.ModuleDict({n: nn.LayerNorm(inputs[n].dim) for n in self.use} if norm else {})
        self.projections = nn.ModuleDict({n: nn.Linear(inputs[n].dim, project) for n in self.use} if project else {})
        width = sum(project or inputs[n].dim for n in self.use)
        self.trunk = mlp(width, hidden, dropout, where=where)
        self.out_dim = mlp_out_dim(width, hidden)

    def forward(self, pooled, sequences=None, masks=None) -> torch.Tensor:
        parts = []
        for name in self.use:
            x = get_pooled("fusion 'concat'", pooled, name)
            if name in self.norms:
                x = self.norms[name](x)
            if name in self.projections:
                x = self.projections[name](x)
            parts.append(x)
        return self.trunk(torch.cat(parts, dim=-1))
