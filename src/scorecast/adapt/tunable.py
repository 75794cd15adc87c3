"""The trainable encoder in front of the head during end-to-end fine-tuning.

:class:`TunableEncoder` is an ``hf-audio`` / ``hf-text`` / ``sentence`` model with its top ``k``
blocks trainable. It pools exactly as the frozen encoder does, so the adapted folder, encoded through
the cache afterwards, gives the features the head was trained on:

* ``hf-audio`` / ``hf-text``: the feature ``layer`` and ``pooling`` of the encoder's params;
* ``sentence``: the model's own sentence-transformers modules (``modules.json``): the transformer's
  last hidden state, the ``1_Pooling`` mode (mean, cls or max) and L2 normalisation where the model
  has a ``Normalize`` module or the encoder's ``normalize`` param is on (its default). Texts are cut
  at ``max_seq_length`` tokens (the frozen encoder would average windows of a longer text).

One tower may read several inputs: :func:`build_tunable_encoders` gives tuned encoders with the same
name and params (the ``s1`` / ``s2`` of a sentence pair) ONE ``TunableEncoder`` (siamese weights:
one set of parameters, gradients from both sides, saved once) unless ``finetune_share: false``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from scorecast.adapt.common import (
    FinetuneSettings,
    freeze_all_but_top,
    hash_json,
    layerwise_param_groups,
    transformer_layers,
    without_finetune,
    write_adaptation,
)
from scorecast.config import EncoderSpec
from scorecast.data.items import Item
from scorecast.errors import ConfigError, DataError

_ST_POOLING = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max"}
_ST_MODULES = ("Transformer", "Pooling", "Normalize")


def read_sentence_modules(model_dir: Path) -> dict[str, Any]:
    """What a sentence-transformers folder computes: ``transformer`` (the transformer's sub-folder,
    "" for the folder itself), ``pooling`` (mean | cls | max) and ``normalize`` (has a Normalize module).
    Other modules (Dense, LayerNorm, ...) and pooling modes raise a ConfigError."""
    where = f"sentence model {model_dir}"
    modules = json.loads((model_dir / "modules.json").read_text())
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if not kinds or kinds[0] != "Transformer" or any(k not in _ST_MODULES for k in kinds) or "Pooling" not in kinds:
        raise ConfigError(
            f"{where}: fine-tuning supports the modules Transformer -> Pooling (-> Normalize), got {' -> '.join(kinds)}"
        )
    pooling_dir = model_dir / modules[kinds.index("Pooling")]["path"]
    config = json.loads((pooling_dir / "config.json").read_text())
    modes = [mode for key, mode in _ST_POOLING.items() if config.get(key)]
    others = [k for k, v in config.items() if k.startswith("pooling_mode_") and v and k not in _ST_POOLING]
    if len(modes) != 1 or others:
        raise ConfigError(
            f"{where}: fine-tuning supports exactly one pooling mode of mean, cls or max tokens, "
            f"got {', '.join(modes + others) or 'none'}"
        )
    return {"transformer": modules[0]["path"], "pooling": modes[0], "normalize": "Normalize" in kinds}


class TunableEncoder(nn.Module):
    """A model with its top ``k`` blocks trainable, for one or more inputs (``inputs``: feature name ->
    item input).

    ``prepare(raw inputs)`` (in the data loader) -> tensors; ``forward(tensors)`` -> pooled (B, D),
    sequence (B, T, D), mask (B, T) True at real frames / content tokens.
    """

    def __init__(self, spec: EncoderSpec, settings: FinetuneSettings) -> None:
        super().__init__()
        from scorecast.encoders._hf_common import check_layer, read_config, resolve_model_dir

        params = without_finetune(spec).params
        self.spec, self.settings = spec, settings
        self.inputs = {spec.feature_name: spec.input}
        self.modality = "audio" if spec.input == "audio" else "text"
        if (spec.name == "hf-audio") != (self.modality == "audio"):
            raise ConfigError(f"encoder '{spec.feature_name}': {spec.name} cannot read input '{spec.input}'")
        self.normalize = False
        if spec.name == "sentence":
            self._init_sentence(params)
        else:
            if "model" not in params:
                raise ConfigError(
                    f"encoder '{spec.feature_name}': fine-tuning needs params.model (a local model folder)"
                )
            self.model_dir = self.transformer_dir = resolve_model_dir(params["model"])
            config = read_config(self.model_dir)
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
            self.pooling = params.get("pooling", "mean" if self.modality == "audio" else "cls")
            allowed = ("mean", "max", "mean+std") if self.modality == "audio" else ("cls", "mean", "max")
            if self.pooling not in allowed:
                raise ConfigError(
                    f"encoder '{spec.feature_name}': pooling: expected one of {', '.join(allowed)}, got '{self.pooling}'"
                )
            self._load(params)
        self.trained = freeze_all_but_top(self.model, self.layer, settings.top_k)
        self.first_trained = min(self.trained)
        hidden = int(self.model.config.hidden_size)
        self.out_dim = 2 * hidden if self.pooling == "mean+std" else hidden
        if settings.cache_frozen:
            if self.modality != "text":
                raise ConfigError(f"encoder '{spec.feature_name}': finetune_cache_frozen works with text towers only")
            self.check_cached_path()

    def _init_sentence(self, params: dict[str, Any]) -> None:
        from transformers import AutoModel, AutoTokenizer

        from scorecast.encoders.base import ENCODERS

        frozen = ENCODERS.build("sentence", **params)  # the frozen encoder's own checks and model resolution
        self.model_dir = Path(frozen.model_dir)
        st = read_sentence_modules(self.model_dir)
        self.transformer_subdir = st["transformer"]
        self.transformer_dir = self.model_dir / st["transformer"]
        self.pooling, self.normalize = st["pooling"], st["normalize"] or frozen.normalize
        self.model = AutoModel.from_pretrained(self.transformer_dir, local_files_only=True)
        self.processor = AutoTokenizer.from_pretrained(self.transformer_dir, local_files_only=True)
        self.layer = int(self.model.config.num_hidden_layers)  # the transformer's output
        self.max_length = int(frozen.max_seq_length)
        cfg = self.model_dir / "sentence_bert_config.json"
        self.lower = bool(cfg.is_file() and json.loads(cfg.read_text()).get("do_lower_case", False))

    def _load(self, params: dict[str, Any]) -> None:
        from transformers import AutoFeatureExtractor, AutoModel, AutoTokenizer

        self.model = AutoModel.from_pretrained(self.model_dir, local_files_only=True)
        self.lower = False
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

    # ------------------------------------------------------------------ sharing, modes and groups
    @property
    def name(self) -> str:
        """The tower's name: its feature names joined by ``+`` (one name when not shared)."""
        return "+".join(self.inputs)

    @property
    def feature_name(self) -> str:
        """The first feature this tower reads."""
        return next(iter(self.inputs))

    def add_input(self, spec: EncoderSpec) -> None:
        """Read ``spec``'s input too, with these same weights (siamese sharing)."""
        if spec.feature_name in self.inputs:
            raise ConfigError(f"encoder '{spec.feature_name}': two tuned encoders share this feature name")
        if ("audio" if spec.input == "audio" else "text") != self.modality:
            raise ConfigError(
                f"encoder '{spec.feature_name}': cannot share the {self.modality} tower '{self.name}' "
                f"with input '{spec.input}'"
            )
        self.inputs[spec.feature_name] = spec.input

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
            self.model, self.trained, self.settings.lr, self.settings.decay, weight_decay, prefix=f"encoder.{self.name}"
        )

    # ------------------------------------------------------------------ inputs
    def load_input(self, item: Item, feature: str | None = None) -> Any:
        """The raw input of ``item`` for ``feature`` (default the first): a mono waveform at the model's
        rate (cut to ``window_s``) or a text."""
        feature = feature or self.feature_name
        if feature not in self.inputs:
            raise ConfigError(f"tower '{self.name}': expected one of its features {list(self.inputs)}, got '{feature}'")
        source = self.inputs[feature]
        if self.modality == "audio":
            from scorecast.data.audio import load_audio

            if not item.audio:
                raise DataError(f"item '{item.id}' has no audio; encoder '{feature}' reads it", field="audio")
            wave = load_audio(item.audio, sample_rate=self.sample_rate)
            return wave[: self.max_samples] if self.max_samples else wave
        name = source.split(".", 1)[1]
        if name not in item.texts:
            raise DataError(f"item '{item.id}' has no text field '{name}'; encoder '{feature}' reads it", field=source)
        return item.texts[name]

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Texts -> padded token tensors (with ``special_tokens_mask``), cut at ``max_length`` tokens."""
        texts = [t.lower() for t in texts] if self.lower else list(texts)
        enc = self.processor(
            texts,
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_special_tokens_mask=True,
            return_tensors="pt",
        )
        return dict(enc)

    def precompute(self, texts: list[str]) -> list[dict[str, torch.Tensor]]:
        """The frozen blocks' states of ``texts`` (``finetune_cache_frozen``; see :mod:`.frozen_states`)."""
        from scorecast.adapt.frozen_states import precompute_states

        return precompute_states(self, texts)

    def check_cached_path(self, atol: float = 1e-4) -> None:
        """Refuse ``finetune_cache_frozen`` for a model where the split forward differs from the whole one."""
        texts = ["a short probe", "a somewhat longer probe sentence for the cached path"]
        was = self.training
        self.eval()
        with torch.no_grad():
            whole = self(self.tokenize(texts))[0]
            cached = self(self.prepare(self.precompute(texts)))[0]
        self.train(was)
        diff = float((whole - cached).abs().max())
        if not diff <= atol:
            raise ConfigError(
                f"encoder '{self.feature_name}': finetune_cache_frozen: the split forward of "
                f"{type(self.model).__name__} differs from the whole one by {diff:.2g} (expected <= {atol}); "
                "set finetune_cache_frozen: false"
            )

    def prepare(self, raw: list[Any]) -> dict[str, Any]:
        """Raw inputs of a batch (texts, waveforms, or precomputed frozen states) -> model inputs (CPU tensors)."""
        if self.modality == "text":
            if raw and isinstance(raw[0], dict):
                from scorecast.adapt.frozen_states import pad_states

                return pad_states(raw)
            return self.tokenize(raw)
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
            return self._forward_text(inputs)
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

    def _forward_text(self, inputs: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if "states" in inputs:  # the frozen blocks' states, precomputed: run the top blocks only
            from scorecast.adapt.frozen_states import run_top

            hidden = run_top(self, inputs)
        else:
            out = self.model(
                input_ids=inputs["input_ids"],
                attention_mask=inputs["attention_mask"],
                **({"token_type_ids": inputs["token_type_ids"]} if "token_type_ids" in inputs else {}),
                output_hidden_states=True,
            )
            hidden = out.hidden_states[self.layer]
        real = inputs["attention_mask"].bool()
        content = real & ~inputs["special_tokens_mask"].bool()  # the frozen encoders' token sequences
        pooled = hidden[:, 0] if self.pooling == "cls" else _pool(hidden, real, self.pooling)
        if self.normalize:
            pooled = nn.functional.normalize(pooled, dim=-1, eps=1e-12)
        return pooled, hidden, content

    def save(self, folder: Path, record: dict[str, Any]) -> None:
        """The adapted encoder as a model folder the frozen encoder loads (safetensors weights; a
        sentence-transformers folder keeps its modules.json, pooling and configuration files)."""
        folder.mkdir(parents=True, exist_ok=True)
        if self.spec.name == "sentence":
            for name in ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json"):
                if (self.model_dir / name).is_file():
                    shutil.copy2(self.model_dir / name, folder / name)
            for module in json.loads((self.model_dir / "modules.json").read_text())[1:]:
                if module["path"] and (self.model_dir / module["path"]).is_dir():
                    shutil.copytree(self.model_dir / module["path"], folder / module["path"], dirs_exist_ok=True)
            target = folder / self.transformer_subdir
        else:
            target = folder
        self.model.save_pretrained(target)
        self.processor.save_pretrained(target)
        write_adaptation(folder, record)


def share_key(spec: EncoderSpec, settings: FinetuneSettings) -> str | None:
    """Tuned encoders with equal keys share one tower; None: this one never shares."""
    return hash_json([spec.name, spec.params]) if settings.share else None


def build_tunable_encoders(tuned: list[tuple[EncoderSpec, FinetuneSettings]]) -> dict[str, TunableEncoder]:
    """Feature name -> its tower; features with the same :func:`share_key` get the same object."""
    towers: dict[str, TunableEncoder] = {}
    out: dict[str, TunableEncoder] = {}
    for spec, settings in tuned:
        if spec.feature_name in out:
            raise ConfigError(f"fine-tuning: two tuned encoders have the feature name '{spec.feature_name}'")
        key = share_key(spec, settings)
        if key is not None and key in towers:
            towers[key].add_input(spec)
            out[spec.feature_name] = towers[key]
            continue
        out[spec.feature_name] = TunableEncoder(spec, settings)
        if key is not None:
            towers[key] = out[spec.feature_name]
    return out


def unique_towers(encoders: dict[str, TunableEncoder]) -> list[TunableEncoder]:
    """The distinct towers of a feature -> tower map, in order of first appearance."""
    seen: dict[int, TunableEncoder] = {}
    for enc in encoders.values():
        seen.setdefault(id(enc), enc)
    return list(seen.values())


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
