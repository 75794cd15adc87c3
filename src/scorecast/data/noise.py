"""Additive noise at an exact signal-to-noise ratio: the one noise primitive of scorecast, used by
training augmentation (``scorecast.training.augment``) and the demo's impairments
(``scorecast.demo.impairments``)."""

from __future__ import annotations

import numpy as np

from scorecast.errors import ConfigError, DataError

NOISE_COLORS: tuple[str, ...] = ("white", "pink")


def as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A generator as given, or a new one seeded with ``rng``."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def colored_noise(num_samples: int, color: str, rng: np.random.Generator | int | None = 0) -> np.ndarray:
    """(T,) float64 noise with unit RMS: ``white`` (flat spectrum) or ``pink`` (power ~ 1/f, no DC)."""
    if color not in NOISE_COLORS:
        raise ConfigError(f"noise color: expected one of {', '.join(NOISE_COLORS)}, got '{color}'")
    white = as_rng(rng).standard_normal(num_samples)
    if color == "pink" and num_samples > 1:
        spectrum = np.fft.rfft(white)
        freqs = np.fft.rfftfreq(num_samples)
        scale = np.zeros_like(freqs)
        scale[1:] = 1.0 / np.sqrt(freqs[1:])  # amplitude ~ f^-1/2, so power ~ 1/f; no DC
        noise = np.fft.irfft(spectrum * scale, n=num_samples)
    else:
        noise = white
    rms = float(np.sqrt(np.mean(noise**2))) if num_samples else 0.0
    return noise / rms if rms > 0 else noise


def add_noise(
    wave: np.ndarray, snr_db: float, rng: np.random.Generator | int | None = 0, color: str = "white"
) -> np.ndarray:
    """``wave`` (T,) plus noise scaled so that 10 log10(P_signal / P_noise) equals ``snr_db`` exactly
    (powers are means over the whole clip); float32 out.

    A silent clip (zero power) stays silent: no noise level gives a finite SNR against it.
    """
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise DataError(f"add_noise: expected a mono waveform of shape (T,), got shape {wave.shape}")
    noise = colored_noise(len(wave), color, rng)
    signal_power = float(np.mean(wave.astype(np.float64) ** 2)) if len(wave) else 0.0
    noise_rms = np.sqrt(signal_power / (10.0 ** (snr_db / 10.0)))
    return (wave + noise_rms * noise).astype(np.float32)
