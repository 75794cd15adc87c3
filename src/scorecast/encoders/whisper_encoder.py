"""``whisper``: the encoder of a CTranslate2 Whisper model (the one faster-whisper transcribes with)
as an audio encoder: its last hidden states, pooled to a vector and kept as a frame sequence (50
frames per second) for the ``cross-attention`` and ``temporal`` fusions. Offline it is the strongest
audio representation scorecast has (nothing ships WavLM weights); ``hf-audio`` still serves a
local WavLM or transformers Whisper folder.

Recipe params::

    model: whisper-base | whisper-tiny.en | a CTranslate2 Whisper folder (default whisper-base)
    pooling: mean | max | mean+std (mean)     max_frames: cap on the kept sequence (default 300)
    compute_type: int8 | float32 (int8)      batch_size: 30 s windows per encoder call (4)

Audio is cut into 30 s windows (Whisper's input length; a tail under 15 s joins the window before
it only when that still fits, else it is encoded alone); each window is zero-padded to 30 s as
Whisper always is, log-Mel features come from faster-whisper's own feature extractor, and the
frames past the window's end are cut off. ``mean`` pooling weights windows by their length.
CTranslate2 gives the last encoder layer only (no per-layer choice). Silence gives a defined,
finite vector; an empty waveform is a ``DataError``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from scorecast.encoders._hf_common import (
    POOLINGS_AUDIO,
    check_choice,
    check_positive,
    model_fingerprint,
    package_version,
    pool_frames,
    sample_windows,
    shrink_sequence,
)
from scorecast.encoders.asr_faster_whisper import LazyWhisperModel, resolve_whisper_dir
from scorecast.encoders.base import ENCODERS, Encoded, Encoder
from scorecast.errors import DataError

SR = 16000
WINDOW = 30 * SR
HOP = 320  # samples per encoder frame (mel hop 160, conv stride 2)
N_FRAMES = 3000  # mel frames per 30 s


def window_features(model, window: np.ndarray) -> np.ndarray:
    """(n_mels, 3000) log-Mel features of one window, zero-padded to 30 s (faster-whisper's extractor)."""
    from faster_whisper.audio import pad_or_trim

    padded = np.zeros(WINDOW, dtype=np.float32)
    padded[: len(window)] = window[:WINDOW]
    return pad_or_trim(model.feature_extractor(padded, padding=0), N_FRAMES).astype(np.float32)


def encode_windows(model, windows: list[np.ndarray]) -> list[np.ndarray]:
    """Each window (<= 30 s) -> its (T, D) encoder frames, frames past the window's end cut off."""
    feats = np.stack([window_features(model, w) for w in windows])
    out = np.asarray(model.encode(feats)).astype(np.float32)
    return [out[i, : max(1, min(out.shape[1], math.ceil(len(w) / HOP)))] for i, w in enumerate(windows)]


@ENCODERS.register("whisper")
class WhisperEncoder(LazyWhisperModel, Encoder):
    """The CTranslate2 Whisper encoder; pooled (D,) (2D for mean+std) and frames (T, D)."""

    modality = "audio"
    sample_rate = SR

    def __init__(
        self,
        model: str = "whisper-base",
        pooling: str = "mean",
        max_frames: int | None = 300,
        compute_type: str = "int8",
        batch_size: int = 4,
        cpu_threads: int = 0,
    ) -> None:
        check_choice("pooling", pooling, POOLINGS_AUDIO)
        check_choice("compute_type", compute_type, ("int8", "float32"))
        check_positive("max_frames", max_frames)
        check_positive("batch_size", batch_size, allow_none=False)
        self.model_name = str(model)
        self.model_dir = resolve_whisper_dir(self.model_name)
        self.pooling, self.max_frames, self.compute_type = pooling, max_frames, compute_type
        self.batch_size, self.cpu_threads = int(batch_size), int(cpu_threads)
        self._fp = model_fingerprint(self.model_dir)
        self._model = None

    def identity(self) -> dict[str, Any]:
        return {
            "name": "whisper",
            "package": f"ctranslate2=={package_version('ctranslate2')}",
            "model": self.model_name,
            **self._fp,
            "layer": "last",
            "pooling": self.pooling,
            "max_frames": self.max_frames,
            "compute_type": self.compute_type,
            "window_s": WINDOW / SR,
            "sample_rate": SR,
        }

    def encode_batch(self, inputs: list[Any]) -> list[Encoded]:
        waves = []
        for i, w in enumerate(inputs):
            arr = np.asarray(w, dtype=np.float32)
            if arr.ndim != 1 or arr.size == 0:
                raise DataError(f"whisper: expected a non-empty mono waveform for input {i}, got shape {arr.shape}")
            if not np.isfinite(arr).all():
                raise DataError(f"whisper: input {i} holds NaN or infinite samples")
            waves.append(arr)
        spans = [sample_windows(len(w), WINDOW, WINDOW, WINDOW) for w in waves]
        pieces = [(i, w[a:b]) for i, (w, sp) in enumerate(zip(waves, spans)) for a, b in sp]
        frames: list[list[np.ndarray]] = [[] for _ in waves]
        for s in range(0, len(pieces), self.batch_size):
            part = pieces[s : s + self.batch_size]
            for (i, _), seq in zip(part, encode_windows(self.model, [p for _, p in part])):
                frames[i].append(seq)
        out = []
        for parts in frames:
            seq = np.concatenate(parts)
            out.append(
                Encoded(pool_frames(seq, self.pooling).astype(np.float32), shrink_sequence(seq, self.max_frames))
            )
        return out
