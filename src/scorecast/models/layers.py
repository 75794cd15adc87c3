"""Building blocks shared by fusions and heads: MLPs, attentive pooling, masks, padding."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from scorecast.errors import ConfigError, DataError


def mlp(in_dim: int, hidden: Sequence[int], dropout: float = 0.0, *, where: str = "mlp") -> nn.Sequential:
    """``Linear -> GELU -> Dropout`` per hidden size; an empty ``hidden`` gives an empty (identity) block.

    The output size is ``hidden[-1]`` (or ``in_dim`` when ``hidden`` is empty): see :func:`mlp_out_dim`.
    """
    sizes = check_hidden(hidden, where)
    check_dropout(dropout, where)
    layers: list[nn.Module] = []
    dim = in_dim
    for size in sizes:
        layers += [nn.Linear(dim, size), nn.GELU(), nn.Dropout(dropout)]
        dim = size
    return nn.Sequential(*layers)


def mlp_out_dim(in_dim: int, hidden: Sequence[int] | int) -> int:
    sizes = check_hidden(hidden, "mlp")
    return sizes[-1] if sizes else int(in_dim)


def check_hidden(hidden: Any, where: str) -> list[int]:
    """Hidden sizes: a list of positive ints (an int is taken as a one-layer list)."""
    if isinstance(hidden, int) and not isinstance(hidden, bool):
        hidden = [hidden]
    if not isinstance(hidden, (list, tuple)) or not all(
        isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in hidden
    ):
        raise ConfigError(f"{where}: expected 'hidden' to be a list of positive integers, got {hidden!r}")
    return [int(h) for h in hidden]


def check_dropout(dropout: Any, where: str) -> float:
    if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0.0 <= dropout < 1.0:
        raise ConfigError(f"{where}: expected 'dropout' in [0, 1), got {dropout!r}")
    return float(dropout)


def check_positive_int(value: Any, name: str, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{where}: expected '{name}' to be a positive integer, got {value!r}")
    return int(value)


def check_heads(dim: int, heads: int, where: str) -> None:
    check_positive_int(heads, "heads", where)
    if dim % heads:
        raise ConfigError(f"{where}: expected 'dim' ({dim}) to be divisible by 'heads' ({heads})")


class AttentivePooling(nn.Module):
    """Masked attentive pooling: (B, T, D) with mask (B, T) True at real frames -> (B, D).

    Frame weights are ``softmax(w . tanh(W x))`` over real frames only, so padded frames get weight 0.
    """

    def __init__(self, dim: int, hidden: int | None = None) -> None:
        super().__init__()
        hidden = hidden or max(dim // 2, 1)
        self.proj = nn.Linear(dim, hidden)
        # no bias: a constant added to every frame's score would not change the softmax
        self.score = nn.Linear(hidden, 1, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = self.score(torch.tanh(self.proj(x))).squeeze(-1)  # (B, T)
        scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        return torch.einsum("bt,btd->bd", weights, x)


def sinusoidal_positions(length: int, dim: int, device=None, dtype=None) -> torch.Tensor:
    """The Transformer's fixed sinusoidal position code, (length, dim); no parameters, any length."""
    pos = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim, device=device, dtype=torch.float32)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return pe.to(dtype) if dtype is not None else pe


def pad_sequences(
    sequences: Sequence[np.ndarray | torch.Tensor], dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """Collate variable-length sequences: a list of B arrays (T_i, D) -> (B, T_max, D) zero-padded
    tensor and a (B, T_max) bool mask, True at real frames."""
    if len(sequences) == 0:
        raise DataError("pad_sequences: expected at least one sequence, got an empty list")
    tensors = [torch.as_tensor(np.asarray(s) if not isinstance(s, torch.Tensor) else s) for s in sequences]
    dim = None
    for i, t in enumerate(tensors):
        if t.ndim != 2:
            raise DataError(f"pad_sequences: sequence {i}: expected shape (T, D), got {tuple(t.shape)}")
        if t.shape[0] == 0:
            raise DataError(f"pad_sequences: sequence {i}: expected at least one frame, got 0")
        if dim is None:
            dim = t.shape[1]
        elif t.shape[1] != dim:
            raise DataError(f"pad_sequences: sequence {i}: expected dimension {dim} like sequence 0, got {t.shape[1]}")
    longest = max(t.shape[0] for t in tensors)
    out = torch.zeros(len(tensors), longest, int(dim), dtype=dtype)
    mask = torch.zeros(len(tensors), longest, dtype=torch.bool)
    for i, t in enumerate(tensors):
        out[i, : t.shape[0]] = t.to(dtype)
        mask[i, : t.shape[0]] = True
    return out, mask


# ----------------------------------------------------------------- fusion input helpers


def resolve_input(where: str, inputs: dict, value: Any, role: str, default: str | None) -> str:
    """The feature name a fusion uses for ``role`` (e.g. 'audio'): ``value`` if given, else ``default``;
    it must be one of the fusion's inputs."""
    name = default if value is None else value
    if name is None:
        raise ConfigError(
            f"{where}: no input for '{role}'; set params.{role} to one of: {', '.join(inputs) or '(none)'}"
        )
    if not isinstance(name, str) or name not in inputs:
        raise ConfigError(
            f"{where}: '{role}' input {name!r} is not a feature of this recipe; expected one of: "
            f"{', '.join(inputs) or '(none)'}"
        )
    return name


def resolve_pair(where: str, inputs: dict, left: Any, right: Any) -> tuple[str, str]:
    """The two different features a pair fusion reads as ``left`` and ``right`` (default: the first two
    inputs); at least two inputs are required."""
    names = list(inputs)
    if len(names) < 2:
        raise ConfigError(
            f"{where}: expected at least two input features, got {len(names)}: {', '.join(names) or '(none)'}"
        )
    first = resolve_input(where, inputs, left, "left", names[0])
    second = resolve_input(where, inputs, right, "right", next(n for n in names if n != first))
    if first == second:
        raise ConfigError(f"{where}: expected two different features for 'left' and 'right', got '{first}' twice")
    return first, second


def get_pooled(where: str, pooled: dict[str, torch.Tensor], name: str) -> torch.Tensor:
    if name not in pooled:
        raise ConfigError(f"{where}: the batch has no pooled feature '{name}'; got: {', '.join(pooled) or '(none)'}")
    x = pooled[name]
    if x.ndim != 2:
        raise ConfigError(f"{where}: pooled feature '{name}': expected shape (B, D), got {tuple(x.shape)}")
    return x


def get_sequence(
    where: str,
    name: str,
    has_sequence: bool,
    pooled: dict[str, torch.Tensor],
    sequences: dict[str, torch.Tensor] | None,
    masks: dict[str, torch.Tensor] | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, D) and its mask (B, T) for ``name``; a feature without a sequence is a length-1 sequence
    of its pooled vector. A feature declared with a sequence must come with one."""
    if not has_sequence:
        x = get_pooled(where, pooled, name).unsqueeze(1)
        return x, torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    if sequences is None or name not in sequences:
        raise ConfigError(
            f"{where}: feature '{name}' was declared with a sequence but the batch has none; "
            f"pass sequences['{name}'] (B, T, D) with masks['{name}'] (B, T)"
        )
    x = sequences[name]
    if x.ndim != 3:
        raise ConfigError(f"{where}: sequence '{name}': expected shape (B, T, D), got {tuple(x.shape)}")
    mask = masks.get(name) if masks is not None else None
    if mask is None:
        mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    elif tuple(mask.shape) != tuple(x.shape[:2]):
        raise ConfigError(f"{where}: mask of '{name}': expected shape {tuple(x.shape[:2])}, got {tuple(mask.shape)}")
    mask = mask.to(torch.bool)
    if not bool(mask.any(dim=1).all()):
        raise DataError(
            f"{where}: sequence '{name}': every item needs at least one real frame; a mask row is all False"
        )
    return x, mask
