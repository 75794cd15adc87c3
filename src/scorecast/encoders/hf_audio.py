"""``hf-audio``: frozen transformers audio models (WavLM, HuBERT, wav2vec 2.0, data2vec-audio,
MERT-style checkpoints that load without remote code, the Whisper encoder, CLAP's audio tower)
loaded from a local folder or the local Hugging Face cache, never downloaded.

Recipe params::

    model: path or repo id (resolved offline)   layer: -1 | int | "mean" | [int, ...]
    pooling: mean | max | mean+std               window_s / hop_s: long audio in windows
    max_frames: cap on the kept frame sequence   device: cpu | cuda | auto    batch_size: 8

Windows (one every ``hop_s``, default ``window_s``) are encoded separately; a last window shorter
than half a window joins the one before unless that exceeds the model's longest input (Whisper
30 s, CLAP 10 s; these two are always windowed at that length by default). Frame sequences are
concatenated; ``mean`` pooling is the mean of window means weighted by window length (in
samples), ``max`` and ``mean+std`` pool the concatenated frames. Batches are padded only where the model takes an attention mask (and the
padded frames are cut off again); other models (WavLM/wav2vec2 base: group-norm convs, no mask)
encode one clip at a time, so a clip's vector never depends on its batch.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from scorecast.encoders._hf_common import (
    POOLINGS_AUDIO,
    check_choice,
    check_layer,
    check_positive,
    model_fingerprint,
    pool_frames,
    read_config,
    resolve_device,
    resolve_model_dir,
    sample_windows,
    select_layer,
    shrink_sequence,
    weighted_mean,
)
from scorecast.encoders.base import ENCODERS, Encoded, Encoder
from scorecast.errors import ConfigError, DataError
from scorecast.registry import Registry

log = logging.getLogger(__name__)

MIN_SAMPLES = 1600  # 0.1 s at 16 kHz: shorter clips are zero-padded to this (with a warning)


class AudioBackend:
    """How one kind of checkpoint turns waveforms into per-layer frame sequences."""

    max_window_s: float | None = None
    layered = True  # False: the model gives one projected vector per window (no layers)

    def __init__(self, model_dir: Path, config: dict[str, Any], device: str) -> None:
        self.model_dir, self.config, self.device = model_dir, config, device

    @staticmethod
    def num_layers(config: dict[str, Any]) -> int | None:
        return config.get("num_hidden_layers")

    def load(self) -> None:
        raise NotImplementedError

    def encode(self, waves: list[np.ndarray], sample_rate: int, layer: Any) -> list[np.ndarray]:
        """Waveforms -> one (T_i, D) float32 array each (the chosen layer, padding removed)."""
        raise NotImplementedError


AUDIO_BACKENDS: Registry[type[AudioBackend]] = Registry("hf-audio backend")


class SelfSupervisedBackend(AudioBackend):
    """AutoFeatureExtractor + AutoModel with ``output_hidden_states`` (wav2vec2 family and alike)."""

    def load(self) -> None:
        from transformers import AutoFeatureExtractor, AutoModel

        self.extractor = AutoFeatureExtractor.from_pretrained(self.model_dir, local_files_only=True)
        self.model = AutoModel.from_pretrained(self.model_dir, local_files_only=True).to(self.device).eval()
        self.can_batch = bool(getattr(self.extractor, "return_attention_mask", False)) and hasattr(
            self.model, "_get_feat_extract_output_lengths"
        )

    def _run(self, waves: list[np.ndarray], sample_rate: int, layer: Any) -> list[np.ndarray]:
        import torch

        kwargs = {"padding": True, "return_attention_mask": True} if len(waves) > 1 else {}
        inputs = self.extractor(waves, sampling_rate=sample_rate, return_tensors="pt", **kwargs)
        if len(waves) == 1:
            inputs.pop("attention_mask", None)  # alone: no padding, so no mask needed
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*mismatched key_padding_mask.*")
            out = self.model(**inputs, output_hidden_states=True)
        hidden = select_layer(out.hidden_states, layer).float().cpu().numpy()
        if len(waves) == 1:
            return [hidden[0]]
        lengths = self.model._get_feat_extract_output_lengths(inputs["attention_mask"].sum(-1).cpu())
        return [hidden[i, : int(n)] for i, n in enumerate(lengths)]

    def encode(self, waves: list[np.ndarray], sample_rate: int, layer: Any) -> list[np.ndarray]:
        if self.can_batch:
            return self._run(waves, sample_rate, layer)
        return [self._run([w], sample_rate, layer)[0] for w in waves]


@AUDIO_BACKENDS.register("whisper")
class WhisperEncoderBackend(AudioBackend):
    """The Whisper encoder; every window is padded to 30 s by the feature extractor (as Whisper
    always is), and the frames past the clip's end (50 per second) are cut off."""

    max_window_s = 30.0

    @staticmethod
    def num_layers(config: dict[str, Any]) -> int | None:
        return config.get("encoder_layers")

    def load(self) -> None:
        from transformers import WhisperFeatureExtractor, WhisperModel

        self.extractor = WhisperFeatureExtractor.from_pretrained(self.model_dir, local_files_only=True)
        whole = WhisperModel.from_pretrained(self.model_dir, local_files_only=True)
        self.model = whole.get_encoder().to(self.device).eval()

    def encode(self, waves: list[np.ndarray], sample_rate: int, layer: Any) -> list[np.ndarray]:
        import torch

        feats = self.extractor(waves, sampling_rate=sample_rate, return_tensors="pt").input_features
        with torch.inference_mode():
            out = self.model(feats.to(self.device), output_hidden_states=True)
        hidden = select_layer(out.hidden_states, layer).float().cpu().numpy()
        hop = self.extractor.hop_length * 2  # conv stride 2 after the mel hop
        return [hidden[i, : max(1, min(hidden.shape[1], math.ceil(len(w) / hop)))] for i, w in enumerate(waves)]


@AUDIO_BACKENDS.register("clap")
class ClapAudioBackend(AudioBackend):
    """CLAP's audio tower: the normalised projected embedding, one vector per window (<= 10 s, so
    the feature extractor never takes its random crop)."""

    max_window_s = 10.0
    layered = False

    @staticmethod
    def num_layers(config: dict[str, Any]) -> int | None:
        return None

    def load(self) -> None:
        from transformers import ClapFeatureExtractor, ClapModel

        self.extractor = ClapFeatureExtractor.from_pretrained(self.model_dir, local_files_only=True)
        self.model = ClapModel.from_pretrained(self.model_dir, local_files_only=True).to(self.device).eval()

    def encode(self, waves: list[np.ndarray], sample_rate: int, layer: Any) -> list[np.ndarray]:
        import torch

        inputs = self.extractor(waves, sampling_rate=sample_rate, return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in inputs.items() if k in ("input_features", "is_longer")}
        with torch.inference_mode():
            out = self.model.get_audio_features(**inputs)
        emb = getattr(out, "pooler_output", out)
        return [row[None, :] for row in emb.float().cpu().numpy()]


def _backend_for(config: dict[str, Any]) -> type[AudioBackend]:
    model_type = str(config.get("model_type", ""))
    return AUDIO_BACKENDS.get(model_type) if model_type in AUDIO_BACKENDS else SelfSupervisedBackend


def _sampling_rate(model_dir: Path, default: int = 16000) -> int:
    pre = model_dir / "preprocessor_config.json"
    if pre.is_file():
        return int(json.loads(pre.read_text()).get("sampling_rate", default))
    return default


@ENCODERS.register("hf-audio")
class HFAudioEncoder(Encoder):
    """A frozen transformers audio model; pooled (D,) (2D for mean+std) and frames (T, D)."""

    modality = "audio"

    def __init__(
        self,
        model: str,
        layer: int | str | list[int] = -1,
        pooling: str = "mean",
        window_s: float | None = None,
        hop_s: float | None = None,
        max_frames: int | None = None,
        device: str = "cpu",
        batch_size: int = 8,
    ) -> None:
        check_choice("pooling", pooling, POOLINGS_AUDIO)
        for name, value in (
            ("window_s", window_s),
            ("hop_s", hop_s),
            ("max_frames", max_frames),
            ("batch_size", batch_size),
        ):
            check_positive(name, value)
        if hop_s is not None and window_s is None:
            raise ConfigError("hop_s: given without window_s; expected both (or window_s alone)")
        if hop_s is not None and hop_s > window_s:
            raise ConfigError(f"hop_s: expected <= window_s ({window_s}), got {hop_s} (audio would be skipped)")
        self.model_name = str(model)
        self.model_dir = resolve_model_dir(model)
        self.config = read_config(self.model_dir)
        self.backend_cls = _backend_for(self.config)
        if not self.backend_cls.layered and layer != -1:
            raise ConfigError(
                f"layer: {self.config.get('model_type')} gives one projected vector; expected layer -1, got {layer!r}"
            )
        self.layer = (
            check_layer(layer, self.backend_cls.num_layers(self.config)) if self.backend_cls.layered else "projection"
        )
        limit = self.backend_cls.max_window_s
        if limit is not None and window_s is not None and window_s > limit:
            raise ConfigError(
                f"window_s: {self.config.get('model_type')} takes at most {limit} s per window, got {window_s}"
            )
        self.window_s = window_s if window_s is not None else limit
        self.hop_s = hop_s
        self.pooling = pooling
        self.max_frames = max_frames
        self.device = resolve_device(device)
        self.batch_size = int(batch_size)
        self.sample_rate = _sampling_rate(self.model_dir)
        self._fp = model_fingerprint(self.model_dir)
        self._backend: AudioBackend | None = None

    def identity(self) -> dict[str, Any]:
        return {
            "name": "hf-audio",
            "model": self.model_name,
            "model_type": self.config.get("model_type"),
            **self._fp,
            "layer": self.layer,
            "pooling": self.pooling,
            "sample_rate": self.sample_rate,
            "window_s": self.window_s,
            "hop_s": self.hop_s,
            "max_frames": self.max_frames,
        }

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_backend"] = None  # reloaded lazily in another process
        return state

    @property
    def backend(self) -> AudioBackend:
        if self._backend is None:
            backend = self.backend_cls(self.model_dir, self.config, self.device)
            backend.load()
            self._backend = backend
        return self._backend

    def _windows(self, wave: np.ndarray) -> list[np.ndarray]:
        sr = self.sample_rate
        window = None if self.window_s is None else int(round(self.window_s * sr))
        hop = None if self.hop_s is None else int(round(self.hop_s * sr))
        limit = self.backend_cls.max_window_s
        max_len = None if limit is None else int(limit * sr)
        return [wave[a:b] for a, b in sample_windows(len(wave), window, hop, max_len)]

    def _check(self, wave: Any, index: int) -> np.ndarray:
        arr = np.asarray(wave, dtype=np.float32)
        if arr.ndim != 1:
            raise DataError(f"hf-audio: expected a mono 1-D waveform for input {index}, got shape {arr.shape}")
        if arr.size == 0:
            raise DataError(f"hf-audio: input {index} has zero samples")
        if arr.size < MIN_SAMPLES:
            log.warning("hf-audio: input %d has %d samples (< %d); zero-padded", index, arr.size, MIN_SAMPLES)
            arr = np.pad(arr, (0, MIN_SAMPLES - arr.size))
        return arr

    def encode_batch(self, inputs: list[Any]) -> list[Encoded]:
        waves = [self._check(w, i) for i, w in enumerate(inputs)]
        pieces = [(i, seg) for i, w in enumerate(waves) for seg in self._windows(w)]
        order = sorted(range(len(pieces)), key=lambda k: len(pieces[k][1]))  # similar lengths together
        frames: list[np.ndarray | None] = [None] * len(pieces)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            outs = self.backend.encode([pieces[k][1] for k in chunk], self.sample_rate, self.layer)
            for k, seq in zip(chunk, outs):
                frames[k] = seq
        by_item: dict[int, list[int]] = {}
        for k, (i, _) in enumerate(pieces):
            by_item.setdefault(i, []).append(k)
        results = []
        for i in range(len(waves)):
            ks = by_item[i]
            seqs = [frames[k] for k in ks]
            whole = np.concatenate(seqs).astype(np.float32)
            if self.pooling == "mean":
                pooled = weighted_mean([s.mean(0) for s in seqs], [len(pieces[k][1]) for k in ks])
            else:
                pooled = pool_frames(whole, self.pooling)
            results.append(Encoded(pooled.astype(np.float32), shrink_sequence(whole, self.max_frames)))
        return results
