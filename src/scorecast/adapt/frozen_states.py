"""Hidden states of a text tower's frozen blocks, computed once (``finetune_cache_frozen: true``).

When only the top ``k`` blocks of a text model train, everything below them (embeddings and the
lower blocks, frozen and in eval mode: no dropout) maps a text to the same hidden states in every
epoch. :func:`precompute_states` runs that bottom once per text (no gradients, batches sorted by
length) and keeps each text's states at the first trained block's input ((T, D) float32, real tokens
only); a training step then runs just the top blocks on them (:func:`run_top`), so a step costs the
top ``k`` blocks forward and backward instead of the whole model forward. The results are the same
as the full forward up to float rounding (:meth:`TunableEncoder.check_cached_path` compares them on a
probe when the tower is built, and refuses a model where they differ). Memory: T x D floats per text.

The split runs the model's own ``forward`` with its block list swapped for the wanted slice (and,
for the top, its embeddings module swapped for one that passes the given states through), so masks
and position biases are built exactly as the model builds them. It works for models whose forward is
``embeddings -> blocks`` (BERT, RoBERTa, MPNet, ...).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from scorecast.adapt.common import LAYER_PATHS
from scorecast.errors import ConfigError

log = logging.getLogger(__name__)


class _GivenStates(nn.Module):
    """Stands in for a model's embeddings: returns the hidden states passed as ``inputs_embeds``."""

    def forward(self, input_ids=None, inputs_embeds=None, **kwargs: Any) -> torch.Tensor:
        return inputs_embeds


def _layer_slot(model: nn.Module) -> tuple[nn.Module, str]:
    """(parent module, attribute) of the model's ModuleList of transformer blocks."""
    for path in LAYER_PATHS:
        *parents, attr = path.split(".")
        node = model
        for part in parents:
            node = getattr(node, part, None)
            if node is None:
                break
        if node is not None and isinstance(getattr(node, attr, None), nn.ModuleList):
            return node, attr
    raise ConfigError(f"cannot find the transformer layers of {type(model).__name__}")


@contextmanager
def blocks_only(model: nn.Module, start: int, stop: int, from_states: bool) -> Iterator[None]:
    """Inside: ``model(...)`` runs only blocks ``start .. stop - 1``; with ``from_states`` its
    embeddings pass ``inputs_embeds`` through (the given hidden states) instead of embedding tokens."""
    if not hasattr(model, "embeddings"):
        raise ConfigError(f"finetune_cache_frozen: {type(model).__name__} has no 'embeddings' module to split at")
    parent, attr = _layer_slot(model)
    blocks, embeddings = getattr(parent, attr), model.embeddings
    setattr(parent, attr, nn.ModuleList(list(blocks)[start:stop]))
    if from_states:
        model.embeddings = _GivenStates()
    try:
        yield
    finally:
        setattr(parent, attr, blocks)
        model.embeddings = embeddings


def precompute_states(tower: Any, texts: list[str], batch_size: int = 64) -> list[dict[str, torch.Tensor]]:
    """Per text: ``states`` (T, D) at the input of the tower's first trained block and its
    ``special`` (T,) mask, over the real tokens (no padding)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: list[dict[str, torch.Tensor] | None] = [None] * len(texts)
    was = tower.training
    tower.eval()
    with torch.no_grad(), blocks_only(tower.model, 0, tower.first_trained, from_states=False):
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            enc = tower.tokenize([texts[i] for i in idx])
            hidden = tower.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
            for row, i in enumerate(idx):
                n = int(enc["attention_mask"][row].sum())
                out[i] = {
                    "states": hidden[row, :n].float().clone(),
                    "special": enc["special_tokens_mask"][row, :n].bool().clone(),
                }
    tower.train(was)  # the tower's own modes: frozen parts in eval, trained blocks as they were
    return out  # type: ignore[return-value]


def pad_states(entries: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """A batch of precomputed entries -> ``states`` (B, T, D), ``attention_mask`` and
    ``special_tokens_mask`` (B, T), zero-padded."""
    length = max(int(e["states"].shape[0]) for e in entries)
    dim = int(entries[0]["states"].shape[1])
    states = torch.zeros(len(entries), length, dim)
    mask = torch.zeros(len(entries), length, dtype=torch.long)
    special = torch.ones(len(entries), length, dtype=torch.long)
    for row, e in enumerate(entries):
        n = int(e["states"].shape[0])
        states[row, :n], mask[row, :n], special[row, :n] = e["states"], 1, e["special"].long()
    return {"states": states, "attention_mask": mask, "special_tokens_mask": special}


def run_top(tower: Any, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The hidden states at the tower's feature layer from precomputed ``inputs`` (see :func:`pad_states`)."""
    with blocks_only(tower.model, tower.first_trained, tower.layer, from_states=True):
        out = tower.model(inputs_embeds=inputs["states"], attention_mask=inputs["attention_mask"])
    return out.last_hidden_state


def item_states(items: Any, encoders: dict[str, Any], indices: Any) -> dict[str, dict[int, dict[str, torch.Tensor]]]:
    """Feature -> item index -> the frozen blocks' states, for the features whose tower sets
    ``finetune_cache_frozen`` (computed once per item, before training)."""
    out = {}
    for name, enc in encoders.items():
        if enc.settings.cache_frozen:
            start = time.perf_counter()
            idx = [int(i) for i in indices]
            out[name] = dict(zip(idx, enc.precompute([enc.load_input(items[i], name) for i in idx]), strict=True))
            log.info(
                "fine-tuning: frozen states of %s for %d items in %.1f s", name, len(idx), time.perf_counter() - start
            )
    return out
