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

Recipe settings: an ``hf-audio`` / ``hf-text`` encoder whose params hold ``finetune_top_k`` (>= 1,
with optional ``finetune_lr``, default 2e-5, and ``layer_decay``, default 0.9) is fine-tuned end to
end by :mod:`scorecast.adapt.finetune` (``scorecast adapt RECIPE --method finetune``).
:data:`FINETUNE_KEYS` are not encoder constructor arguments: :func:`without_finetune` strips them
before an encoder is built. :class:`TunableEncoder` is the trainable model in front of the head:
it pools exactly as the frozen encoder does (feature ``layer``, ``pooling``), so the adapted folder,
encoded through the cache afterwards, gives the features the head was trained on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from scorecast.config import EncoderSpec
from scorecast.data.items import Item
from scorecast.errors import ConfigError, DataError

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
_LAYER_PATHS = (
    "encoder.layers",  # wav2vec2, HuBERT, WavLM, data2vec-audio, Whisper encoder, BART-like
    "encoder.layer",  # BERT, RoBERTa, XLM-R, ELECTRA, DeBERTa
    "model.encoder.layers",  # Whisper model (encoder side)
    "transformer.layer",  # DistilBERT
    "layers",  # models that are their own encoder (WhisperEncoder, ModernBERT)
    "layer",
)


def transformer_layers(model: Any) -> Any:
    """The ``nn.ModuleList`` of transformer blocks of an HF model (searched at the usual places)."""
    for path in _LAYER_PATHS:
        node = model
        for part in path.split("."):
            node = getattr(node, part, None)
            if node is None:
                break
        if isinstance(node, nn.ModuleList) and len(node) > 0:
            return node
    raise ConfigError(
        f"cannot find the transformer layers of {type(model).__name__}: expected a ModuleList at one of "
        f"{', '.join(_LAYER_PATHS)}"
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

FINETUNE_ENCODERS = ("hf-audio", "hf-text")
DEFAULT_FINETUNE_LR = 2e-5
DEFAULT_LAYER_DECAY = 0.9


@dataclass(frozen=True)
class FinetuneSettings:
    """``finetune_top_k`` blocks trained at ``finetune_lr`` (the top one), times ``layer_decay`` per
    block further down."""

    top_k: int
    lr: float = DEFAULT_FINETUNE_LR
    decay: float = DEFAULT_LAYER_DECAY


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
    return FinetuneSettings(int(top_k), float(lr), float(decay))


def without_finetune(spec: EncoderSpec) -> EncoderSpec:
    """``spec`` with the fine-tuning keys removed from its params (what the encoder class takes)."""
    return spec.model_copy(update={"params": {k: v for k, v in spec.params.items() if k not in FINETUNE_KEYS}})


# ------------------------------------------------------------------------ tunable encoder
class TunableEncoder(nn.Module):
    """An ``hf-audio`` / ``hf-text`` model with its top ``k`` blocks trainable.

    ``prepare(raw inputs)`` (in the data loader) -> tensors; ``forward(tensors)`` -> pooled (B, D),
    sequence (B, T, D), mask (B, T) True at real frames / content tokens.
    """

    def __init__(self, spec: EncoderSpec, settings: FinetuneSettings) -> None:
        super().__init__()
        from scorecast.encoders._hf_common import check_layer, read_config, resolve_model_dir

        params = without_finetune(spec).params
        self.spec, self.settings = spec, settings
        self.feature_name = spec.feature_name
        if "model" not in params:
            raise ConfigError(f"encoder '{spec.feature_name}': fine-tuning needs params.model (a local model folder)")
        self.model_dir = resolve_model_dir(params["model"])
        config = read_config(self.model_dir)
        self.modality = "audio" if spec.input == "audio" else "text"
        if (spec.name == "hf-audio") != (self.modality == "audio"):
            raise ConfigError(f"encoder '{spec.feature_name}': {spec.name} cannot read input '{spec.input}'")
        if config.get("model_type") in ("whisper", "clap"):
            raise ConfigError(
                f"encoder '{spec.feature_name}': fine-tuning supports self-supervised speech models (WavLM, "
                f"HuBERT, wav2vec 2.0) and BERT-like text models, got model_type '{config.get('model_type')}'"
            )
        layer = check_layer(params.get("layer", -1), config.get("num_hidden_layers"))
        if not isinstance(layer, int):
            raise ConfigError(
                f"encoder '{spec.feature_name}': fine-tuning needs one feature layer (an int), got {layer!r}"
            )
        self.layer = layer
        default_pool = "mean" if self.modality == "audio" else "cls"
        self.pooling = params.get("pooling", default_pool)
        allowed = ("mean", "max", "mean+std") if self.modality == "audio" else ("cls", "mean", "max")
        if self.pooling not in allowed:
            raise ConfigError(
                f"encoder '{spec.feature_name}': pooling: expected one of {', '.join(allowed)}, got '{self.pooling}'"
            )
        self._load(params)
        self.trained = freeze_all_but_top(self.model, self.layer, settings.top_k)
        hidden = int(self.model.config.hidden_size)
        self.out_dim = 2 * hidden if self.pooling == "mean+std" else hidden

    def _load(self, params: dict[str, Any]) -> None:
        from transformers import AutoFeatureExtractor, AutoModel, AutoTokenizer

        self.model = AutoModel.from_pretrained(self.model_dir, local_files_only=True)
        if self.modality == "audio":
            self.processor = AutoFeatureExtractor.from_pretrained(self.model_dir, local_files_only=True)
            self.sample_rate = int(getattr(self.processor, "sampling_rate", 16000))
            self.batched = bool(getattr(self.processor, "return_attention_mask", False))
            window_s = params.get("window_s")
            self.max_samples = int(round(window_s * self.sample_rate)) if window_s else None
        else:
            from scorecast.encoders.hf_text import DEFAULT_MAX_LENGTH, model_token_limit

            self.processor = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
            limit = model_token_limit(self.model_dir, self.model.config.to_dict())
            self.max_length = int(params.get("max_length") or min(DEFAULT_MAX_LENGTH, limit))

    # ------------------------------------------------------------------ modes and groups
    def train(self, mode: bool = True) -> TunableEncoder:
        """Frozen parts always in eval mode (no dropout, no layer drop); trained blocks follow ``mode``."""
        super().train(mode)
        self.model.eval()
        layers = transformer_layers(self.model)
        for i in self.trained:
            layers[i].train(mode)
        return self

    def param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        return layerwise_param_groups(
            self.model,
            self.trained,
            self.settings.lr,
            self.settings.decay,
            weight_decay,
            prefix=f"encoder.{self.feature_name}",
        )

    # ------------------------------------------------------------------ inputs
    def load_input(self, item: Item) -> Any:
        """The raw input of ``item``: a mono waveform at the model's rate (cut to ``window_s``) or a text."""
        if self.modality == "audio":
            from scorecast.data.audio import load_audio

            if not item.audio:
                raise DataError(f"item '{item.id}' has no audio; encoder '{self.feature_name}' reads it", field="audio")
            wave = load_audio(item.audio, sample_rate=self.sample_rate)
            return wave[: self.max_samples] if self.max_samples else wave
        name = self.spec.input.split(".", 1)[1]
        if name not in item.texts:
            raise DataError(
                f"item '{item.id}' has no text field '{name}'; encoder '{self.feature_name}' reads it",
                field=self.spec.input,
            )
        return item.texts[name]

    def prepare(self, raw: list[Any]) -> dict[str, Any]:
        """Raw inputs of a batch -> model inputs (CPU tensors)."""
        if self.modality == "text":
            enc = self.processor(
                list(raw),
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_special_tokens_mask=True,
                return_tensors="pt",
            )
            return dict(enc)
        if self.batched:
            enc = self.processor(
                list(raw), sampling_rate=self.sample_rate, padding=True, return_attention_mask=True, return_tensors="pt"
            )
            return {"input_values": enc["input_values"], "attention_mask": enc["attention_mask"]}
        # models without attention masks (group-norm convs) see each clip alone, as the frozen encoder does
        return {
            "clips": [
                self.processor([w], sampling_rate=self.sample_rate, return_tensors="pt")["input_values"] for w in raw
            ]
        }

    # ------------------------------------------------------------------ forward
    def forward(self, inputs: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.modality == "text":
            out = self.model(
                input_ids=inputs["input_ids"],
                attention_mask=inputs["attention_mask"],
                **({"token_type_ids": inputs["token_type_ids"]} if "token_type_ids" in inputs else {}),
                output_hidden_states=True,
            )
            hidden = out.hidden_states[self.layer]
            real = inputs["attention_mask"].bool()
            content = real & ~inputs["special_tokens_mask"].bool()
            if self.pooling == "cls":
                return hidden[:, 0], hidden, content
            return _pool(hidden, real, self.pooling), hidden, content
        if "clips" in inputs:
            seqs = [
                self.model(clip, output_hidden_states=True).hidden_states[self.layer][0] for clip in inputs["clips"]
            ]
            from scorecast.models.layers import pad_sequences

            hidden, mask = pad_sequences(seqs)
            mask = mask.to(hidden.device)
        else:
            out = self.model(inputs["input_values"], attention_mask=inputs["attention_mask"], output_hidden_states=True)
            hidden = out.hidden_states[self.layer]
            lengths = self.model._get_feat_extract_output_lengths(inputs["attention_mask"].sum(-1))
            mask = torch.arange(hidden.shape[1], device=hidden.device)[None, :] < lengths[:, None]
        return _pool(hidden, mask, self.pooling), hidden, mask

    def save(self, folder: Path, record: dict[str, Any]) -> None:
        """The adapted encoder as a model folder the frozen encoder loads (safetensors weights)."""
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(folder)
        self.processor.save_pretrained(folder)
        write_adaptation(folder, record)


def _pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Masked pooling of (B, T, D) over real positions -> (B, D) (mean+std: (B, 2D))."""
    m = mask.to(hidden.dtype).unsqueeze(-1)
    n = m.sum(1).clamp_min(1.0)
    mean = (hidden * m).sum(1) / n
    if pooling == "mean":
        return mean
    if pooling == "max":
        return hidden.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1)
    var = (((hidden - mean.unsqueeze(1)) ** 2) * m).sum(1) / n
    return torch.cat([mean, var.clamp_min(0).sqrt()], dim=-1)
