"""``siamese``: one shared adapter on two inputs of the same kind, scored by their cosine (sentence pairs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from scorecast.errors import ConfigError
from scorecast.models.base import FUSIONS, FeatureShape, Fusion
from scorecast.models.layers import check_dropout, check_positive_int, get_pooled, resolve_input, resolve_pair

ADAPTERS = ("linear", "low-rank", "mlp", "none")
OUTPUTS = ("cosine", "product", "difference")


class ResidualAdapter(nn.Module):
    """``x + delta(x)`` with ``delta`` initialised to zero: at the start the adapter is the identity, so the
    fused cosine is exactly the encoder's own; weight decay pulls ``delta`` back towards it.

    ``kind``: ``linear`` (a full D x D map), ``low-rank`` (D -> rank -> D), ``mlp`` (D -> hidden -> D with
    GELU), ``none`` (the identity, nothing trained: the head learns a calibration of the raw cosine).
    """

    def __init__(self, dim: int, kind: str, rank: int, hidden: int) -> None:
        super().__init__()
        if kind == "linear":
            self.delta: nn.Module | None = nn.Linear(dim, dim, bias=False)
        elif kind == "low-rank":
            self.delta = nn.Sequential(nn.Linear(dim, rank, bias=False), nn.Linear(rank, dim, bias=False))
        elif kind == "mlp":
            self.delta = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        else:
            self.delta = None
        if self.delta is not None:
            last = self.delta if isinstance(self.delta, nn.Linear) else self.delta[-1]
            nn.init.zeros_(last.weight)
            if last.bias is not None:
                nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.delta is None else x + self.delta(x)


@FUSIONS.register("siamese")
class SiameseFusion(Fusion):
    """Maps ``left`` and ``right`` (pooled, same size) through ONE residual adapter (identity at
    initialisation) and outputs ``cos(f(left), f(right))`` (B, 1); ``outputs`` may add ``product``
    (``f(l)/|f(l)| * f(r)/|f(r)|``, B x D) and ``difference`` (``|f(l) - f(r)|`` of the unit vectors, B x D).

    This is the way a sentence encoder scores a pair, made trainable: the model starts exactly at the
    encoder's cosine and learns a correction from the data, so a few thousand pairs adapt it without
    throwing away what it learned. Train with ``training.standardize_features: false`` so that the
    cosine is taken of the encoder's own vectors (per-feature standardisation changes it).

    Params: ``left``, ``right`` (feature names; default the first two inputs), ``adapter``
    (linear | low-rank | mlp | none; default linear), ``rank`` (64, low-rank), ``hidden`` (512, mlp),
    ``outputs`` (default ``[cosine]``), ``dropout`` on the inputs while training (0.0).

    ``more_pairs`` (``[[c, d], ...]``): further pairs, each of one encoder on both sides, each with its
    own adapter of the same kind; their outputs follow the first pair's, in order (two encoders'
    cosines of one pair of clips, say). ``extra`` (feature names): features of one side only, passed
    through unchanged after the pairs' outputs (a zero-shot MOS of the generated clip, say).
    """

    uses_sequences: tuple[str, ...] = ()

    def __init__(
        self,
        inputs: dict[str, FeatureShape],
        left: str | None = None,
        right: str | None = None,
        adapter: str = "linear",
        rank: int = 64,
        hidden: int = 512,
        outputs: Sequence[str] = ("cosine",),
        dropout: float = 0.0,
        more_pairs: Sequence[Sequence[str]] = (),
        extra: Sequence[str] = (),
    ) -> None:
        super().__init__(inputs)
        where = "fusion 'siamese'"
        self.left, self.right = resolve_pair(where, inputs, left, right)
        self.pairs = [(self.left, self.right), *self._more_pairs(where, inputs, more_pairs)]
        self.extra = [resolve_input(where, inputs, name, "extra", None) for name in self._names(where, extra)]
        used = [n for pair in self.pairs for n in pair] + self.extra
        if len(set(used)) != len(used):
            raise ConfigError(f"{where}: expected each feature in one place (pairs and extra), got {used}")
        others = [n for n in inputs if n not in used]
        if others:
            raise ConfigError(
                f"{where}: scores pairs of features and reads no others; got extra inputs "
                f"{', '.join(others)} (name them in 'extra', or use 'bilinear' or 'concat')"
            )
        for a, b in self.pairs:
            if inputs[a].dim != inputs[b].dim:
                raise ConfigError(
                    f"{where}: expected the two sides of a pair of the same size (one encoder on both "
                    f"sides), got '{a}' {inputs[a].dim} and '{b}' {inputs[b].dim}"
                )
        dim = inputs[self.left].dim
        if adapter not in ADAPTERS:
            raise ConfigError(f"{where}: unknown adapter {adapter!r}; expected one of: {', '.join(ADAPTERS)}")
        outputs = [outputs] if isinstance(outputs, str) else list(outputs)
        unknown = [o for o in outputs if o not in OUTPUTS]
        if not outputs or unknown or len(set(outputs)) != len(outputs):
            raise ConfigError(
                f"{where}: expected 'outputs' to be distinct names from {', '.join(OUTPUTS)}, got {outputs!r}"
            )
        self.outputs = outputs
        rank, hidden = check_positive_int(rank, "rank", where), check_positive_int(hidden, "hidden", where)
        self.adapter = ResidualAdapter(dim, adapter, rank, hidden)
        # the first pair keeps the name ``adapter`` (bundles saved before ``more_pairs`` still load)
        self.more_adapters = nn.ModuleList(
            ResidualAdapter(inputs[a].dim, adapter, rank, hidden) for a, _ in self.pairs[1:]
        )
        self.dropout = nn.Dropout(check_dropout(dropout, where))
        self.out_dim = sum(sum(1 if o == "cosine" else inputs[a].dim for o in outputs) for a, _ in self.pairs) + sum(
            inputs[n].dim for n in self.extra
        )

    @staticmethod
    def _names(where: str, value: Any) -> list[str]:
        names = [value] if isinstance(value, str) else list(value or [])
        if not all(isinstance(n, str) for n in names):
            raise ConfigError(f"{where}: expected feature names, got {value!r}")
        return names

    @staticmethod
    def _more_pairs(where: str, inputs: dict, value: Any) -> list[tuple[str, str]]:
        pairs = []
        for pair in list(value or []):
            if isinstance(pair, str) or len(pair) != 2:
                raise ConfigError(f"{where}: expected 'more_pairs' as [[left, right], ...], got {value!r}")
            a, b = (resolve_input(where, inputs, n, "more_pairs", None) for n in pair)
            pairs.append((a, b))
        return pairs

    def _pair_outputs(self, pooled, pair: tuple[str, str], adapter: ResidualAdapter) -> list[torch.Tensor]:
        where = "fusion 'siamese'"
        a = F.normalize(adapter(self.dropout(get_pooled(where, pooled, pair[0]))), dim=-1, eps=1e-8)
        b = F.normalize(adapter(self.dropout(get_pooled(where, pooled, pair[1]))), dim=-1, eps=1e-8)
        parts = {
            "cosine": lambda: (a * b).sum(-1, keepdim=True),
            "product": lambda: a * b,
            "difference": lambda: (a - b).abs(),
        }
        return [parts[o]() for o in self.outputs]

    def forward(self, pooled, sequences=None, masks=None) -> torch.Tensor:
        adapters = [self.adapter, *self.more_adapters]
        out = [x for pair, adapter in zip(self.pairs, adapters) for x in self._pair_outputs(pooled, pair, adapter)]
        out += [get_pooled("fusion 'siamese'", pooled, name) for name in self.extra]
        return torch.cat(out, dim=-1)
