"""Tiny deterministic encoders for the cache/pipeline tests (registered under test-only names).

Each counts the inputs it encodes in a file given by ``counter`` (one line per input), so tests can
see what was recomputed, also across processes. ``fail_after`` raises after that many inputs
(process-wide) and ``sleep`` slows each batch down, to interrupt runs.
"""

from __future__ import annotations

import os
import time
import zlib
from typing import Any

import numpy as np

from scorecast.data.audio import crop_or_pad, pad_batch
from scorecast.encoders.base import ENCODERS, Encoded, Encoder
from scorecast.errors import DataError

CONSTRUCTED = {"toy-audio": 0, "toy-text": 0}
_ENCODED_IN_PROCESS = {"n": 0}


class InjectedFailure(RuntimeError):
    pass


class _Counting(Encoder):
    def __init__(self, counter: str | None = None, fail_after: int | None = None, sleep: float = 0.0) -> None:
        self.counter, self.fail_after, self.sleep = counter, fail_after, sleep

    def _count(self, n: int) -> None:
        if self.sleep:
            time.sleep(self.sleep)
        if self.fail_after is not None and _ENCODED_IN_PROCESS["n"] + n > self.fail_after:
            raise InjectedFailure(f"injected failure after {_ENCODED_IN_PROCESS['n']} inputs")
        _ENCODED_IN_PROCESS["n"] += n
        if self.counter:
            with open(self.counter, "a") as fh:
                fh.write(f"{os.getpid()}\n" * n)


class ToyAudioEncoder(_Counting):
    """Spectral stats of a waveform: masked mean/std/rms/zcr over the whole clip, plus the band
    energies of a fixed-length crop (``crop_or_pad`` to ``crop`` samples, centre); sequence = frame rms."""

    modality = "audio"
    parallel_safe = True

    def __init__(self, crop: int = 4000, sample_rate: int = 16000, **kw: Any) -> None:
        super().__init__(**kw)
        self.crop = crop
        self.sample_rate = sample_rate
        CONSTRUCTED["toy-audio"] += 1

    def identity(self) -> dict[str, Any]:
        return {"name": "toy-audio", "crop": self.crop, "sample_rate": self.sample_rate, "version": 1}

    def encode_batch(self, inputs: list[Any]) -> list[Encoded]:
        for x in inputs:
            if np.asarray(x).size < 10:
                raise DataError(f"toy-audio: expected at least 10 samples, got {np.asarray(x).size}")
        self._count(len(inputs))
        batch, mask = pad_batch([np.asarray(x, np.float32) for x in inputs])
        stats = []
        for row, m in zip(batch, mask):
            real = row[m]  # the mask cuts the padding off again: a row's stats never see it
            signs = np.signbit(real)
            zcr = np.count_nonzero(signs[1:] != signs[:-1]) / max(real.size - 1, 1)
            stats.append([real.mean(), real.std(), np.sqrt(np.mean(real**2)), zcr])
        out = []
        for i, x in enumerate(inputs):
            crop = crop_or_pad(np.asarray(x, np.float32), self.crop, "center")
            spec = np.abs(np.fft.rfft(crop))
            bands = np.array([b.mean() for b in np.array_split(spec, 4)], dtype=np.float32)
            pooled = np.concatenate([stats[i], np.log1p(bands)]).astype(np.float32)
            frames = np.asarray(x, np.float32)[: len(x) // 160 * 160].reshape(-1, 160)
            seq = np.stack([np.sqrt((frames**2).mean(1)), frames.mean(1)], 1) if len(frames) else np.zeros((1, 2))
            seq = np.pad(seq.astype(np.float32), ((0, 0), (0, pooled.size - 2)))
            out.append(Encoded(pooled, seq))
        return out


class ToyTextEncoder(_Counting):
    """Hashed character-trigram counts (dim 32); sequence = one row per word. Knows its identity
    without being built (``identity_for``), so a fully cached run never constructs it."""

    modality = "text"

    def __init__(self, dim: int = 32, **kw: Any) -> None:
        super().__init__(**kw)
        self.dim = dim
        CONSTRUCTED["toy-text"] += 1

    @classmethod
    def identity_for(cls, dim: int = 32, **_: Any) -> dict[str, Any]:
        return {"name": "toy-text", "dim": dim}

    def identity(self) -> dict[str, Any]:
        return {"name": "toy-text", "dim": self.dim}

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, np.float32)
        padded = f"  {text} "
        for i in range(len(padded) - 2):
            v[zlib.crc32(padded[i : i + 3].encode()) % self.dim] += 1.0
        return v / max(1.0, float(np.linalg.norm(v)))

    def encode_batch(self, inputs: list[Any]) -> list[Encoded]:
        self._count(len(inputs))
        out = []
        for text in inputs:
            words = text.split() or [""]
            seq = np.stack([self._vec(w) for w in words])
            out.append(Encoded(self._vec(text), seq))
        return out


TOYS = {"toy-audio": ToyAudioEncoder, "toy-text": ToyTextEncoder}


def register_toys() -> None:
    for name, cls in TOYS.items():
        if name not in ENCODERS:
            ENCODERS.register(name)(cls)


def unregister_toys() -> None:
    for name, cls in TOYS.items():
        if ENCODERS._entries.get(name) is cls:  # never another test module's encoder of the same name
            ENCODERS._entries.pop(name, None)


def pids(counter_path) -> set[int]:
    with open(counter_path) as fh:
        return {int(line) for line in fh}


def count(counter_path) -> int:
    try:
        with open(counter_path) as fh:
            return sum(1 for _ in fh)
    except FileNotFoundError:
        return 0


def write_tone(path, freq: float, seconds: float = 0.5, sr: int = 16000, fmt: str | None = None) -> str:
    import soundfile as sf

    t = np.arange(int(seconds * sr)) / sr
    wave = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * np.cos(2 * np.pi * 3 * freq * t)
    sf.write(str(path), wave.astype(np.float32), sr, format=fmt)
    return str(path)
