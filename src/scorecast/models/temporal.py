"""``temporal``: transformer layers over a frame sequence + attentive pooling (AudioMOS 2025 track 1)."""

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
    sinusoidal_positions,
)


@FUSIONS.register("temporal")
class TemporalFusion(Fusion):
    """The ``audio`` frame sequence (B, T, D) -> Linear to ``dim`` (+ sinusoidal positions) ->
    ``layers`` transformer encoder layers (padded frames masked) -> masked attentive pooling (B, dim);
    the other inputs' pooled vectors are concatenated after -> MLP trunk -> (B, out_dim).

    Params: ``audio`` (the sequence feature; default the first input that has a sequence), ``dim``
    (256), ``heads`` (4), ``layers`` (2), ``ff_dim`` (2*dim), ``dropout`` (0.1), ``positional``
    (True), ``use_others`` (True), ``hidden`` ((256,)).
    """

    def __init__(
        self,
        inputs: dict[str, FeatureShape],
        audio: str | None = None,
        dim: int = 256,
        heads: int = 4,
        layers: int = 2,
        ff_dim: int | None = None,
        dropout: float = 0.1,
        positional: bool = True,
        use_others: bool = True,
        hidden: Sequence[int] = (256,),
    ) -> None:
        super().__init__(inputs)
        where = "fusion 'temporal'"
        with_seq = [n for n, s in inputs.items() if s.has_sequence]
        if audio is None and not with_seq:
            raise ConfigError(
                f"{where}: needs a feature with a frame sequence, but none of {', '.join(inputs) or '(none)'} "
                f"has one; set 'sequence: true' on the encoder whose frames it should read"
            )
        self.audio = resolve_input(where, inputs, audio, "audio", with_seq[0] if with_seq else None)
        if not inputs[self.audio].has_sequence:
            raise ConfigError(
                f"{where}: input '{self.audio}' has no frame sequence; set 'sequence: true' on its encoder "
                f"or choose one that has: {', '.join(with_seq) or '(none)'}"
            )
        dim = check_positive_int(dim, "dim", where)
        check_heads(dim, heads, where)
        layers = check_positive_int(layers, "layers", where)
        ff_dim = check_positive_int(ff_dim if ff_dim is not None else 2 * dim, "ff_dim", where)
        dropout = check_dropout(dropout, where)
        self.uses_sequences = (self.audio,)
        self.positional = bool(positional)
        self.others = [n for n in inputs if n != self.audio] if use_others else []
        self.proj = nn.Sequential(nn.Linear(inputs[self.audio].frame_dim, dim), nn.LayerNorm(dim))
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=ff_dim, dropout=dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(dim), enable_nested_tensor=False)
        self.pool = AttentivePooling(dim)
        width = dim + sum(inputs[n].dim for n in self.others)
        self.trunk = mlp(width, hidden, dropout, where=where)
        self.out_dim = mlp_out_dim(width, hidden)

    def forward(self, pooled, sequences=None, masks=None) -> torch.Tensor:
        where = "fusion 'temporal'"
        x, mask = get_sequence(where, self.audio, True, pooled, sequences, masks)
        x = self.proj(x)
        if self.positional:
            x = x + sinusoidal_positions(x.shape[1], x.shape[2], device=x.device, dtype=x.dtype)
        x = self.encoder(x, src_key_padding_mask=~mask)
        x = self.pool(x, mask)
        parts = [x] + [get_pooled(where, pooled, n) for n in self.others]
        return self.trunk(torch.cat(parts, dim=-1))
