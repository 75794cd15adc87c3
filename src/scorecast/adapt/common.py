"""Shared pieces of encoder adaptation (SimCSE and end-to-end fine-tuning).

An adapted encoder is a new local model folder. It carries ``scorecast_adaptation.json``: where it
came from, how it was adapted and on what data, and an ``adaptation_hash`` over all of that. The
file lives beside the weights, so every identity built from the folder's files (the HF encoders'
``model_fingerprint`` hashes every ``.json`` in the folder) changes with it; encoders may also put
:func:`read_adaptation` into their identity dict explicitly.

Layer helpers: :func:`transformer_layers` finds the stack of transformer blocks of an HF model
(WavLM, wav2vec 2.0, HuBERT, Whisper encoder, BERT, RoBERTa, ...); :func:`freeze_all_but_top`
freezes everything except the top ``k`` blocks under the layer used for features; and
:func:`layerwise_param_groups` gives the top block the encoder learning rate and each block below
it that rate times ``decay`` once more.

Recipe settings: an ``hf-audio`` / ``hf-text`` / ``sentence`` encoder whose params hold
``finetune_top_k`` (>= 1, with optional ``finetune_lr``, default 2e-5, ``layer_decay``, default 0.9,
and ``finetune_share``, default true, and ``finetune_cache_frozen``, default false) is fine-tuned end to end by :mod:`scorecast.adapt.finetune`
(``scorecast adapt RECIPE --method finetune``). Tuned encoders with the same name and the same params
on different inputs (the ``s1`` / ``s2`` of a sentence pair) share one model (siamese weights)
unless they set ``finetune_share: false``. :data:`FINETUNE_KEYS` are not encoder constructor
arguments: :func:`without_finetune` strips them before an encoder is built. The trainable model in
front of the head is :class:`scorecast.adapt.tunable.TunableEncoder`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from scorecast.config import EncoderSpec
from scorecast.errors import ConfigError

ADAPTATION_FILE = "scorecast_adaptation.json"


# ------------------------------------------------------------------------------------- identity
def hash_json(value: Any) -> str:
    """sha256 (hex) of a JSON-able value with sorted keys."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def hash_texts(texts: Iterable[str]) -> str:
    """sha256 (hex) of a sequence of texts, in order (each length-prefixed, so no two lists collide)."""
    h = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        h.update(f"{len(data)}:".encode())
        h.update(data)
    return h.hexdigest()


def write_adaptation(folder: str | Path, record: dict[str, Any]) -> dict[str, Any]:
    """Write ``record`` plus its ``adaptation_hash`` to ``folder/scorecast_adaptation.json``.

    ``record`` should name the method, the source model (path and fingerprint), the settings and a
    hash of the data; it must not hold timestamps, so that the same adaptation gives the same file.
    """
    body = {k: v for k, v in record.items() if k != "adaptation_hash"}
    body["adaptation_hash"] = hash_json(body)[:16]
    path = Path(folder) / ADAPTATION_FILE
    path.write_text(json.dumps(body, indent=2, sort_keys=True, default=str) + "\n")
    return body


def read_adaptation(folder: str | Path) -> dict[str, Any] | None:
    """The adaptation record of a model folder, or None for a folder scorecast did not adapt."""
    path = Path(folder) / ADAPTATION_FILE
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: expected a JSON adaptation record, got invalid JSON: {exc}") from None
    if not isinstance(value, dict) or "adaptation_hash" not in value:
        raise ConfigError(f"{path}: expected a JSON object with an 'adaptation_hash', got {type(value).__name__}")
    return value


# --------------------------------------------------------------------------------------- layers
LAYER_PATHS = (
    "encoder.layers",  # wav2vec2, HuBERT, WavLM, data2vec-audio, Whisper encoder, BART-like
    "encoder.layer",  # BERT, RoBERTa, XLM-R, ELECTRA, DeBERTa
    "model.encoder.layers",  # Whisper model (encoder side)
    "transformer.layer",  # DistilBERT
    "layers",  # models that are their own encoder (WhisperEncoder, ModernBERT)
    "layer",
)


def transformer_layers(model: Any) -> Any:
    """The ``nn.ModuleList`` of transformer blocks of an HF model (searched at the usual places)."""
    for path in LAYER_PATHS:
        node = model
        for part in path.split("."):
            node = getattr(node, part, None)
            if node is None:
                break
        if isinstance(node, nn.ModuleList) and len(node) > 0:
            return node
    raise ConfigError(
        f"cannot find the transformer layers of {type(model).__name__}: expected a ModuleList at one of "
        f"{', '.join(LAYER_PATHS)}"
    )


def trained_layer_indices(num_layers: int, used_layer: int, top_k: int) -> list[int]:
    """0-based block indices trained for ``top_k`` blocks ending at ``used_layer``.

    ``used_layer`` indexes hidden states (0 = embeddings, ``num_layers`` = the last block), so the
    blocks that shape it are 0 .. used_layer - 1; the top ``k`` of those are trained.
    """
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ConfigError(f"finetune_top_k: expected an integer >= 1, got {top_k!r}")
    if not 1 <= used_layer <= num_layers:
        raise ConfigError(
            f"layer: fine-tuning needs a transformer layer in [1, {num_layers}] as the feature layer, got {used_layer}"
        )
    if top_k > used_layer:
        raise ConfigError(
            f"finetune_top_k: expected at most {used_layer} (the blocks up to feature layer {used_layer}), got {top_k}"
        )
    return list(range(used_layer - top_k, used_layer))


def freeze_all_but_top(model: Any, used_layer: int, top_k: int) -> list[int]:
    """Freeze every parameter of ``model`` except those of the top ``top_k`` blocks below
    ``used_layer`` (see :func:`trained_layer_indices`). Returns the trained block indices."""
    layers = transformer_layers(model)
    trained = trained_layer_indices(len(layers), used_layer, top_k)
    for p in model.parameters():
        p.requires_grad_(False)
    for i in trained:
        for p in layers[i].parameters():
            p.requires_grad_(True)
    return trained


def layerwise_param_groups(
    model: Any, trained: list[int], lr: float, decay: float, weight_decay: float = 0.0, prefix: str = "encoder"
) -> list[dict[str, Any]]:
    """AdamW parameter groups, one per trained block: the top block gets ``lr``, the one below
    ``lr * decay``, then ``lr * decay**2``... Each group carries a ``name`` (``<prefix>.layer<i>``)."""
    if lr <= 0:
        raise ConfigError(f"finetune_lr: expected > 0, got {lr}")
    if not 0 < decay <= 1:
        raise ConfigError(f"layer_decay: expected a factor in (0, 1], got {decay}")
    layers = transformer_layers(model)
    groups = []
    for depth, i in enumerate(sorted(trained, reverse=True)):
        params = [p for p in layers[i].parameters() if p.requires_grad]
        if params:
            groups.append(
                {"params": params, "lr": lr * decay**depth, "weight_decay": weight_decay, "name": f"{prefix}.layer{i}"}
            )
    return groups


# ----------------------------------------------------------------------------- recipe settings
from scorecast.encoders.base import FINETUNE_KEYS  # noqa: E402  (re-exported)

FINETUNE_ENCODERS = ("hf-audio", "hf-text", "sentence")
DEFAULT_FINETUNE_LR = 2e-5
DEFAULT_LAYER_DECAY = 0.9


@dataclass(frozen=True)
class FinetuneSettings:
    """``finetune_top_k`` blocks trained at ``finetune_lr`` (the top one), times ``layer_decay`` per
    block further down; ``share``: one model for every tuned encoder with the same name and params;
    ``cache_frozen``: compute the frozen blocks' states once (text towers, :mod:`scorecast.adapt.frozen_states`)."""

    top_k: int
    lr: float = DEFAULT_FINETUNE_LR
    decay: float = DEFAULT_LAYER_DECAY
    share: bool = True
    cache_frozen: bool = False


def finetune_settings(spec: EncoderSpec) -> FinetuneSettings | None:
    """The fine-tuning settings in ``spec.params``, or None when ``finetune_top_k`` is absent or 0."""
    params = spec.params
    if not any(k in params for k in FINETUNE_KEYS):
        return None
    where = f"encoder '{spec.feature_name}'"
    top_k = params.get("finetune_top_k", 0)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise ConfigError(f"{where}: finetune_top_k: expected an integer >= 0, got {top_k!r}")
    if top_k == 0:
        extra = [k for k in FINETUNE_KEYS[1:] if k in params]
        if extra:
            raise ConfigError(f"{where}: {', '.join(extra)} given without finetune_top_k >= 1")
        return None
    if spec.name not in FINETUNE_ENCODERS:
        raise ConfigError(f"{where}: fine-tuning works with encoders {', '.join(FINETUNE_ENCODERS)}, got '{spec.name}'")
    lr, decay = params.get("finetune_lr", DEFAULT_FINETUNE_LR), params.get("layer_decay", DEFAULT_LAYER_DECAY)
    for name, value in (("finetune_lr", lr), ("layer_decay", decay)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: {name}: expected a number, got {value!r}")
    if lr <= 0:
        raise ConfigError(f"{where}: finetune_lr: expected > 0, got {lr}")
    if not 0 < decay <= 1:
        raise ConfigError(f"{where}: layer_decay: expected a factor in (0, 1], got {decay}")
    flags = {k: params.get(k, default) for k, default in (("finetune_share", True), ("finetune_cache_frozen", False))}
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {name}: expected true or false, got {value!r}")
    return FinetuneSettings(
        int(top_k), float(lr), float(decay), flags["finetune_share"], flags["finetune_cache_frozen"]
    )


def without_finetune(spec: EncoderSpec) -> EncoderSpec:
    """``spec`` with the fine-tuning keys removed from its params (what the encoder class takes)."""
    return spec.model_copy(update={"params": {k: v for k, v in spec.params.items() if k not in FINETUNE_KEYS}})
