"""``faster-whisper`` ASR backend: Whisper in CTranslate2 format, on CPU with int8 weights.

Params::

    model: whisper-base | whisper-tiny.en (packaged, see encoders/model_store.py) | a local
           CTranslate2 Whisper folder (default whisper-base)
    language: en (null: detect)     beam_size: 5        vad: true (silero VAD skips silences)
    word_timestamps: true (gives the timing that the ``fluency`` encoder reads)
    compute_type: int8              cpu_threads: 0 (CTranslate2's default)
    temperature: null (faster-whisper's fallback: resample at 0.2, 0.4 ... when a decode looks
                 degenerate, so a transcript can differ between runs) | 0.0 (greedy/beam only, reproducible)

With ``word_timestamps`` the ASR step also fills ``<field>_timing``: a JSON text
``{"duration": seconds, "words": [[start, end, word], ...]}`` (see :func:`timing_text`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from scorecast.encoders._hf_common import check_positive, model_fingerprint, package_version, resolve_model_dir
from scorecast.encoders.asr import ASR_BACKENDS, SR, ASRBackend
from scorecast.encoders.model_store import PACKAGED_MODELS, packaged_model_dir
from scorecast.errors import ConfigError

COMPUTE_TYPES = ("int8", "int8_float32", "float32", "float16", "int8_float16", "default")


def resolve_whisper_dir(model: str) -> Path:
    """A packaged model name (``whisper-base``, ``whisper-tiny.en``) or a local CTranslate2 folder."""
    folder = packaged_model_dir(model) if model in PACKAGED_MODELS else resolve_model_dir(model)
    if not (folder / "model.bin").is_file():
        raise ConfigError(
            f"faster-whisper model '{model}': expected a CTranslate2 Whisper folder with model.bin at {folder}, "
            f"found none (packaged names: {', '.join(n for n in PACKAGED_MODELS.names() if n.startswith('whisper'))})"
        )
    return folder


def load_whisper(folder: Path, compute_type: str, cpu_threads: int):
    from faster_whisper import WhisperModel

    return WhisperModel(
        str(folder), device="cpu", compute_type=compute_type, cpu_threads=cpu_threads, local_files_only=True
    )


class LazyWhisperModel:
    """The CTranslate2 Whisper model of ``model_dir``, loaded on first use and never pickled (a worker
    process loads its own). Used by the ASR backend and the ``whisper`` encoder."""

    _model: Any = None
    model_dir: Path
    compute_type: str
    cpu_threads: int

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_model": None}

    @property
    def model(self):
        if self._model is None:
            self._model = load_whisper(self.model_dir, self.compute_type, self.cpu_threads)
        return self._model


def timing_text(duration: float, words: list[tuple[float, float, str]]) -> str:
    """The ``<field>_timing`` text: duration in seconds and each word's start, end and text."""
    rows = [[round(float(s), 3), round(float(e), 3), str(w).strip()] for s, e, w in words]
    return json.dumps({"duration": round(float(duration), 3), "words": rows}, ensure_ascii=False)


@ASR_BACKENDS.register("faster-whisper")
class FasterWhisperASR(LazyWhisperModel, ASRBackend):
    def __init__(
        self,
        model: str = "whisper-base",
        language: str | None = "en",
        beam_size: int = 5,
        vad: bool = True,
        word_timestamps: bool = True,
        compute_type: str = "int8",
        cpu_threads: int = 0,
        temperature: float | None = None,
    ) -> None:
        if temperature is not None and (isinstance(temperature, bool) or not isinstance(temperature, (int, float))):
            raise ConfigError(f"faster-whisper temperature: expected null or a number >= 0, got {temperature!r}")
        check_positive("beam_size", beam_size, allow_none=False)
        if compute_type not in COMPUTE_TYPES:
            raise ConfigError(
                f"faster-whisper compute_type: expected one of {', '.join(COMPUTE_TYPES)}, got {compute_type!r}"
            )
        if not isinstance(cpu_threads, int) or cpu_threads < 0:
            raise ConfigError(f"faster-whisper cpu_threads: expected an integer >= 0, got {cpu_threads!r}")
        self.model_name = str(model)
        self.model_dir = resolve_whisper_dir(self.model_name)
        self.language, self.beam_size, self.vad = language, int(beam_size), bool(vad)
        self.word_timestamps, self.compute_type, self.cpu_threads = bool(word_timestamps), compute_type, cpu_threads
        self.temperature = None if temperature is None else float(temperature)
        self._fp = model_fingerprint(self.model_dir)
        self._model = None

    @property
    def timed(self) -> bool:
        return self.word_timestamps

    def identity(self) -> dict[str, Any]:
        return {
            "backend": "faster-whisper",
            "package": f"faster-whisper=={package_version('faster-whisper')}",
            "model": self.model_name,
            **self._fp,
            "language": self.language,
            "beam_size": self.beam_size,
            "vad": self.vad,
            "word_timestamps": self.word_timestamps,
            "compute_type": self.compute_type,
        } | ({"temperature": self.temperature} if self.temperature is not None else {})

    def transcribe_one(self, wave: np.ndarray) -> tuple[str, str | None]:
        segments, _ = self.model.transcribe(
            wave.astype(np.float32),
            language=self.language,
            beam_size=self.beam_size,
            vad_filter=self.vad,
            word_timestamps=self.word_timestamps,
            **({"temperature": self.temperature} if self.temperature is not None else {}),
        )
        texts, words = [], []
        for seg in segments:
            texts.append(seg.text.strip())
            words += [(w.start, w.end, w.word) for w in (seg.words or [])]
        text = " ".join(t for t in texts if t)
        return text, timing_text(len(wave) / SR, words) if self.word_timestamps else None

    def transcribe_timed(self, waves: list[np.ndarray]) -> list[tuple[str, str | None]]:
        return [self.transcribe_one(w) for w in waves]

    def transcribe(self, waves: list[np.ndarray]) -> list[str]:
        return [text for text, _ in self.transcribe_timed(waves)]
