"""``cross-attention``: bidirectional audio<->text attention with a learned gate (the grammar engine)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from scorecast.errors import ConfigError
from scorecast.models.base import FUSIONS, FeatureShape, Fusion
from scorecast.models.layers import (
    AttentivePooling,
    check_dropout,
    check_heads,
    check_positive_int,
    get_pooled,
    get_sequence,
    mlp,
    mlp_out_dim,
    resolve_input,
)


class CrossBlock(nn.Module):
    """One bidirectional block: audio attends to text and text to audio (simultaneously), each with a
    residual + LayerNorm and a feed-forward sub-layer. Padded keys are masked out."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.a2t = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.t2a = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm_a = nn.LayerNorm(dim)
        self.norm_t = nn.LayerNorm(dim)
        self.ff_a = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim))
        self.ff_t = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim))
        self.norm_a2 = nn.LayerNorm(dim)
        self.norm_t2 = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, a, a_mask, t, t_mask):
        a_att, _ = self.a2t(a, t, t, key_padding_mask=~t_mask, need_weights=False)
        t_att, _ = self.t2a(t, a, a, key_padding_mask=~a_mask, need_weights=False)
        a = self.norm_a(a + self.drop(a_att))
        t = self.norm_t(t + self.drop(t_att))
        a = self.norm_a2(a + self.drop(self.ff_a(a)))
        t = self.norm_t2(t + self.drop(self.ff_t(t)))
        return a, t


@FUSIONS.register("cross-attention")
class CrossAttentionFusion(Fusion):
    """Audio (B, Ta, Da) and text (B, Tt, Dt) sequences -> projected to ``dim`` -> ``layers``
    bidirectional cross-attention blocks -> attentive pooling of each (masked) -> gated combination
    ``g * a + (1 - g) * t`` with ``g = sigmoid(Linear([a, t]))`` -> other inputs' pooled vectors
    concatenated -> MLP trunk -> (B, out_dim).

    A feature without a sequence is used as a length-1 sequence of its pooled vector.
    Params: ``audio``, ``text`` (feature names; default the first two inputs), ``dim`` (256),
    ``heads`` (4), ``layers`` (1), ``dropout`` (0.1), ``use_others`` (True), ``hidden`` ((256,)).
    """

    def __init__(
        self,
        inputs: dict[str, FeatureShape],
        audio: str | None = None,
        text: str | None = None,
        dim: int = 256,
        heads: int = 4,
        layers: int = 1,
        dropout: float = 0.1,
        use_others: bool = True,
        hidden: Sequence[int] = (256,),
    ) -> None:
        super().__init__(inputs)
        where = "fusion 'cross-attention'"
        names = list(inputs)
        if len(names) < 2:
            raise ConfigError(
                f"{where}: expected at least two input features, got {len(names)}: {', '.join(names) or '(none)'}"
            )
        self.audio = resolve_input(where, inputs, audio, "audio", names[0])
        self.text = resolve_input(where, inputs, text, "text", next(n for n in names if n != self.audio))
        if self.audio == self.text:
            raise ConfigError(
                f"{where}: expected two different features for 'audio' and 'text', got '{self.audio}' twice"
            )
        dim = check_positive_int(dim, "dim", where)
        check_heads(dim, heads, where)
        layers = check_positive_int(layers, "layers", where)
        dropout = check_dropout(dropout, where)
        self.uses_sequences = tuple(n for n in (self.audio, self.text) if inputs[n].has_sequence)
        self.others = [n for n in names if n not in (self.audio, self.text)] if use_others else []
        self.proj_audio = nn.Sequential(nn.Linear(inputs[self.audio].frame_dim, dim), nn.LayerNorm(dim))
        self.proj_text = nn.Sequential(nn.Linear(inputs[self.text].frame_dim, dim), nn.LayerNorm(dim))
        self.blocks = nn.ModuleList(CrossBlock(dim, heads, dropout) for _ in range(layers))
        self.pool_audio = AttentivePooling(dim)
        self.pool_text = AttentivePooling(dim)
        self.gate = nn.Linear(2 * dim, dim)
        width = dim + sum(inputs[n].dim for n in self.others)
        self.trunk = mlp(width, hidden, dropout, where=where)
        self.out_dim = mlp_out_dim(width, hidden)

    def forward(self, pooled, sequences=None, masks=None) -> torch.Tensor:
        where = "fusion 'cross-attention'"
        a, a_mask = get_sequence(where, self.audio, self.inputs[self.audio].has_sequence, pooled, sequences, masks)
        t, t_mask = get_sequence(where, self.text, self.inputs[self.text].has_sequence, pooled, sequences, masks)
        a, t = self.proj_audio(a), self.proj_text(t)
        for block in self.blocks:
            a, t = block(a, a_mask, t, t_mask)
        a = self.pool_audio(a, a_mask)
        t = self.pool_text(t, t_mask)
        g = torch.sigmoid(self.gate(torch.cat([a, t], dim=-1)))
        fused = g * a + (1.0 - g) * t
        parts = [fused] + [get_pooled(where, pooled, n) for n in self.others]
        return self.trunk(torch.cat(parts, dim=-1))
