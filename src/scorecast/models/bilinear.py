"""``bilinear``: second-order interaction of two vectors (prompt/response x metric, as in DA5401)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from scorecast.models.base import FUSIONS, FeatureShape, Fusion
from scorecast.models.layers import check_positive_int, get_pooled, mlp, mlp_out_dim, resolve_pair


class LowRankBilinear(nn.Module):
    """``z_k = sum_r P_kr (U_r . a)(V_r . b) + c_k``: a bilinear map of rank ``rank`` (B, D), (B, D) -> (B, out)."""

    def __init__(self, dim: int, out_dim: int, rank: int) -> None:
        super().__init__()
        self.u = nn.Linear(dim, rank, bias=False)
        self.v = nn.Linear(dim, rank, bias=False)
        self.p = nn.Linear(rank, out_dim)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.p(self.u(a) * self.v(b))


@FUSIONS.register("bilinear")
class BilinearFusion(Fusion):
    """Projects ``left`` and ``right`` (pooled) to ``dim`` and outputs
    ``[a, b, a*b, |a-b|, bilinear(a, b)]`` (B, 4*dim + bilinear_dim); any other inputs are concatenated
    after; then an MLP trunk.

    Params: ``left``, ``right`` (feature names; default the first two inputs), ``dim`` (128),
    ``bilinear_dim`` (default ``dim``), ``rank`` (64; ``None`` for a full ``nn.Bilinear``),
    ``use_others`` (concatenate the remaining inputs, default True), ``hidden``, ``dropout``.
    """

    uses_sequences: tuple[str, ...] = ()

    def __init__(
        self,
        inputs: dict[str, FeatureShape],
        left: str | None = None,
        right: str | None = None,
        dim: int = 128,
        bilinear_dim: int | None = None,
        rank: int | None = 64,
        use_others: bool = True,
        hidden: Sequence[int] = (256,),
        dropout: float = 0.1,
    ) -> None:
        super().__init__(inputs)
        where = "fusion 'bilinear'"
        self.left, self.right = resolve_pair(where, inputs, left, right)
        dim = check_positive_int(dim, "dim", where)
        bilinear_dim = check_positive_int(bilinear_dim if bilinear_dim is not None else dim, "bilinear_dim", where)
        self.others = [n for n in inputs if n not in (self.left, self.right)] if use_others else []
        self.proj_left = nn.Sequential(nn.LayerNorm(inputs[self.left].dim), nn.Linear(inputs[self.left].dim, dim))
        self.proj_right = nn.Sequential(nn.LayerNorm(inputs[self.right].dim), nn.Linear(inputs[self.right].dim, dim))
        if rank is None:
            self.bilinear: nn.Module = nn.Bilinear(dim, dim, bilinear_dim)
        else:
            self.bilinear = LowRankBilinear(dim, bilinear_dim, check_positive_int(rank, "rank", where))
        width = 4 * dim + bilinear_dim + sum(inputs[n].dim for n in self.others)
        self.trunk = mlp(width, hidden, dropout, where=where)
        self.out_dim = mlp_out_dim(width, hidden)

    def forward(self, pooled, sequences=None, masks=None) -> torch.Tensor:
        where = "fusion 'bilinear'"
        a = self.proj_left(get_pooled(where, pooled, self.left))
        b = self.proj_right(get_pooled(where, pooled, self.right))
        parts = [a, b, a * b, (a - b).abs(), self.bilinear(a, b)]
        parts += [get_pooled(where, pooled, n) for n in self.others]
        return self.trunk(torch.cat(parts, dim=-1))
