"""Controlled impairments of a waveform, and STOI-based quality labels (used by the demo corpus).

Impairments (each a plain function of a waveform and one severity parameter; :data:`IMPAIRMENTS`
names them and the ranges :func:`scorecast.demo.make_corpus` draws from):

============  =====================================  ==============================================
condition     function                               parameter (range drawn by the demo corpus)
============  =====================================  ==============================================
``noise``     :func:`add_noise` (white or pink)      SNR in dB (-5 .. 25, uniform)
``lowpass``   :func:`band_limit`                     cut-off in Hz (300 .. 4000, log-uniform)
``clip``      :func:`hard_clip`                      threshold, a fraction of the peak (0.005 .. 0.5, log)
``dropout``   :func:`drop_frames`                    rate of zeroed 20-ms frames (0.02 .. 0.5, uniform)
``reverb``    :func:`add_reverb`                     RT60 in s (0.1 .. 3.0, log-uniform)
``quantise``  :func:`quantise`                       mu-law bits (2 .. 7, integers)
``mixed``     noise, then low-pass                   SNR (0 .. 25 dB) and cut-off (500 .. 4000 Hz)
``clean``     none                                   -
============  =====================================  ==============================================

Labels: :func:`quality_score` maps STOI (Taal et al. 2011, from ``pystoi``) of the impaired clip
against its clean original to a 1-5 MOS-like scale (see :data:`STOI_FLOOR`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import signal

from scorecast.data.noise import add_noise, as_rng
from scorecast.demo.synth import SAMPLE_RATE
from scorecast.errors import ConfigError


def band_limit(x: np.ndarray, cutoff_hz: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Low-pass at ``cutoff_hz`` (8th-order Butterworth, zero phase: -96 dB/octave beyond it)."""
    if not 0.0 < cutoff_hz < sr / 2:
        raise ConfigError(f"band_limit: expected 0 < cutoff_hz < {sr / 2:g}, got {cutoff_hz}")
    sos = signal.butter(8, cutoff_hz, btype="lowpass", fs=sr, output="sos")
    return signal.sosfiltfilt(sos, np.asarray(x, dtype=float)).astype(np.float32)


def hard_clip(x: np.ndarray, threshold: float) -> np.ndarray:
    """Clip samples to +-``threshold`` x peak amplitude (``threshold`` in (0, 1]), then restore the
    peak (as an overdriven input stage followed by make-up gain)."""
    if not 0.0 < threshold <= 1.0:
        raise ConfigError(f"hard_clip: expected 0 < threshold <= 1 (a fraction of the peak), got {threshold}")
    peak = float(np.max(np.abs(x))) or 1.0
    return (np.clip(x, -threshold * peak, threshold * peak) / threshold).astype(np.float32)


def drop_frames(
    x: np.ndarray,
    rate: float,
    seed: int | np.random.Generator | None = 0,
    frame_ms: float = 20.0,
    sr: int = SAMPLE_RATE,
) -> np.ndarray:
    """Packet loss: each ``frame_ms`` frame is zeroed independently with probability ``rate``."""
    if not 0.0 <= rate <= 1.0:
        raise ConfigError(f"drop_frames: expected 0 <= rate <= 1, got {rate}")
    hop = int(round(frame_ms * sr / 1000.0))
    lost = as_rng(seed).random(int(np.ceil(len(x) / hop))) < rate
    mask = np.repeat(~lost, hop)[: len(x)]
    return (x * mask).astype(np.float32)


def add_reverb(
    x: np.ndarray, rt60_s: float, seed: int | np.random.Generator | None = 0, sr: int = SAMPLE_RATE
) -> np.ndarray:
    """Convolve with a synthetic room response: a direct path plus exponentially decaying noise that
    reaches -60 dB after ``rt60_s``. The tail's energy is ``rt60_s / 0.5`` times the direct path's
    (direct-to-reverberant ratio +10 dB at 0.05 s, 0 dB at 0.5 s, -3 dB at 1 s, as rooms grow
    livelier). The output keeps the input's RMS."""
    if not rt60_s > 0:
        raise ConfigError(f"add_reverb: expected rt60_s > 0, got {rt60_s}")
    rng = as_rng(seed)
    length = max(int(rt60_s * sr), 2)
    t = np.arange(length) / sr
    tail = rng.standard_normal(length) * 10.0 ** (-3.0 * t / rt60_s)
    tail[: int(0.002 * sr) + 1] = 0.0  # first reflections arrive after 2 ms
    tail *= np.sqrt((rt60_s / 0.5) / (np.sum(tail**2) + 1e-20))
    ir = tail
    ir[0] = 1.0
    xf = np.asarray(x, dtype=float)
    y = signal.fftconvolve(xf, ir)[: len(x)]
    y *= np.sqrt(np.mean(xf**2) / (np.mean(y**2) + 1e-20))
    return y.astype(np.float32)


def quantise(x: np.ndarray, bits: int, mu: float = 255.0) -> np.ndarray:
    """Codec-like coarse quantisation: mu-law companding to ``2**bits`` levels over the peak and back."""
    if not 1 <= int(bits) <= 16:
        raise ConfigError(f"quantise: expected 1 <= bits <= 16, got {bits}")
    peak = float(np.max(np.abs(x))) or 1.0
    v = np.asarray(x, dtype=float) / peak
    c = np.sign(v) * np.log1p(mu * np.abs(v)) / np.log1p(mu)
    levels = 2 ** int(bits) - 1
    c = np.round((c + 1.0) / 2.0 * levels) / levels * 2.0 - 1.0
    y = np.sign(c) * np.expm1(np.abs(c) * np.log1p(mu)) / mu
    return (y * peak).astype(np.float32)


# ----------------------------------------------------------------------------- conditions


@dataclass(frozen=True)
class Impairment:
    """One condition of the demo corpus: how to draw its severity and how to apply it.

    ``draw(rng) -> {param: value}``; ``apply(x, params, rng) -> impaired x``. ``level`` names the
    parameter reported as the condition's level (None for ``clean``).
    """

    name: str
    level: str | None
    draw: Callable[[np.random.Generator], dict[str, float]]
    apply: Callable[[np.ndarray, dict[str, float], np.random.Generator], np.ndarray]


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _noise(x: np.ndarray, p: dict[str, float], rng: np.random.Generator) -> np.ndarray:
    return add_noise(x, p["snr_db"], rng, color="pink" if p.get("pink", 0.0) else "white")


IMPAIRMENTS: dict[str, Impairment] = {
    imp.name: imp
    for imp in (
        Impairment("clean", None, lambda rng: {}, lambda x, p, rng: np.asarray(x, dtype=np.float32)),
        Impairment(
            "noise",
            "snr_db",
            lambda rng: {"snr_db": float(rng.uniform(-5.0, 25.0)), "pink": float(rng.random() < 0.5)},
            _noise,
        ),
        Impairment(
            "lowpass",
            "cutoff_hz",
            lambda rng: {"cutoff_hz": _log_uniform(rng, 300.0, 4000.0)},
            lambda x, p, rng: band_limit(x, p["cutoff_hz"]),
        ),
        Impairment(
            "clip",
            "threshold",
            lambda rng: {"threshold": _log_uniform(rng, 0.005, 0.5)},
            lambda x, p, rng: hard_clip(x, p["threshold"]),
        ),
        Impairment(
            "dropout",
            "rate",
            lambda rng: {"rate": float(rng.uniform(0.02, 0.5))},
            lambda x, p, rng: drop_frames(x, p["rate"], rng),
        ),
        Impairment(
            "reverb",
            "rt60_s",
            lambda rng: {"rt60_s": _log_uniform(rng, 0.1, 3.0)},
            lambda x, p, rng: add_reverb(x, p["rt60_s"], rng),
        ),
        Impairment(
            "quantise",
            "bits",
            lambda rng: {"bits": float(rng.integers(2, 8))},
            lambda x, p, rng: quantise(x, int(p["bits"])),
        ),
        Impairment(
            "mixed",
            "snr_db",
            lambda rng: {"snr_db": float(rng.uniform(0.0, 25.0)), "cutoff_hz": _log_uniform(rng, 500.0, 4000.0)},
            lambda x, p, rng: band_limit(add_noise(x, p["snr_db"], rng), p["cutoff_hz"]),
        ),
    )
}


def impair(
    x: np.ndarray,
    condition: str,
    params: dict[str, float] | None = None,
    seed: int | np.random.Generator | None = 0,
) -> tuple[np.ndarray, dict[str, float]]:
    """Apply ``condition`` to ``x`` at ``params`` (drawn from the condition's range when None).
    Returns (impaired waveform, the parameters used)."""
    if condition not in IMPAIRMENTS:
        raise ConfigError(f"unknown impairment '{condition}'; expected one of: {', '.join(IMPAIRMENTS)}")
    imp = IMPAIRMENTS[condition]
    rng = as_rng(seed)
    params = dict(imp.draw(rng) if params is None else params)
    return imp.apply(x, params, rng), params


# ----------------------------------------------------------------------------- labels

STOI_FLOOR = 0.55
"""STOI at or below this maps to score 1; the scale is linear from there up to STOI 1 -> score 5."""


def stoi_to_score(stoi: float | np.ndarray) -> float | np.ndarray:
    """The label mapping: ``score = 1 + 4 * clip((stoi - STOI_FLOOR) / (1 - STOI_FLOOR), 0, 1)``.

    STOI of a clean clip against itself is 1 (score 5); STOI of 0.55 or less (score 1) is what
    -5 dB SNR white noise, a 300 Hz low-pass or clipping at 1 % of the peak do to these clips: speech
    that is hard to follow. The floor spreads the demo corpus over the whole 1-5 scale. The mapping is monotone, so ranking by score is ranking by STOI.
    """
    s = np.clip((np.asarray(stoi, dtype=float) - STOI_FLOOR) / (1.0 - STOI_FLOOR), 0.0, 1.0)
    out = 1.0 + 4.0 * s
    return float(out) if out.ndim == 0 else out


def quality_score(clean: np.ndarray, impaired: np.ndarray, sr: int = SAMPLE_RATE) -> tuple[float, float]:
    """(score 1-5, STOI) of ``impaired`` against its ``clean`` original."""
    from pystoi import stoi

    if len(clean) != len(impaired):
        raise ConfigError(f"quality_score: expected equal lengths, got {len(clean)} and {len(impaired)}")
    value = float(stoi(np.asarray(clean, dtype=float), np.asarray(impaired, dtype=float), sr))
    return float(stoi_to_score(value)), value
