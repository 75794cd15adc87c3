"""Flags for inputs unlike the training data, so that no score is given confidently for an input the
scorer has never seen the like of.

* **Feature distance** (needs the bundle's ``input_profile``, written at training time): each pooled
  feature of an item is standardised by the training features' per-dimension mean and std, and its
  distance is the root mean square of those z-scores. The profile keeps the training items' held-out
  distances (each item's distance from the moments of the other folds, 5-fold, so that they are what
  a new item like the training ones gets); an item farther than :data:`DISTANCE_FACTOR` x the 99.5th
  percentile of them (and farther than every one) is flagged ``unlike the training data``.
* **Audio** (any bundle with an audio input): ``silence`` (peak below :data:`SILENCE_PEAK`, about
  -60 dBFS) and ``clipping`` (at least :data:`CLIP_FRACTION` of the samples at full scale).

Flagged items keep their score, but the spread reported for them is widened to at least the spread
of a uniform guess over the target's range (where the scorer reports a spread), and callers warn.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from scorecast.data.features import FeatureSet

DISTANCE_FACTOR = 1.5
PROFILE_FOLDS = 5
SILENCE_PEAK = 1e-3
CLIP_LEVEL = 0.999
CLIP_FRACTION = 1e-3
_EPS = 1e-6


def _distances(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    z = (np.asarray(x, dtype=np.float64) - mean) / std
    return np.sqrt(np.mean(z * z, axis=1))


def _moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std per dimension; a dimension constant in training gets a floor relative to the others,
    so that a tiny deviation there counts as a small step, not as millions of standard units."""
    raw = x.std(axis=0)
    return x.mean(axis=0), np.maximum(raw, max(_EPS, 0.01 * float(np.median(raw))))


def held_out_distances(x: np.ndarray, folds: int = PROFILE_FOLDS) -> np.ndarray:
    """Each training item's distance from the moments of the other folds (items i, i + folds, ... form a
    fold): how far a new item like the training ones lies, which in-sample distances underestimate."""
    n = len(x)
    k = min(folds, n)
    d = np.empty(n)
    for f in range(k):
        test = np.arange(f, n, k)
        train = np.setdiff1d(np.arange(n), test)
        mean, std = _moments(x[train])
        d[test] = _distances(x[test], mean, std)
    return d


def input_profile(features: FeatureSet) -> dict[str, Any]:
    """{feature: {mean, std (per dimension, of all training items), q995, max (of their held-out
    distances: :func:`held_out_distances`), n}}."""
    profile: dict[str, Any] = {}
    for name, arr in features.pooled.items():
        x = np.asarray(arr, dtype=np.float64)
        if x.ndim != 2 or len(x) < 3:
            continue
        mean, std = _moments(x)
        d = held_out_distances(x)
        profile[name] = {
            "mean": mean.tolist(),
            "std": std.tolist(),
            "q995": float(np.quantile(d, 0.995)),
            "max": float(d.max()),
            "n": len(x),
        }
    return profile


def feature_flags(profile: dict[str, Any] | None, features: FeatureSet) -> list[list[str]]:
    """One list of flags per item of ``features`` from the bundle's profile (empty lists without one)."""
    flags: list[list[str]] = [[] for _ in range(len(features))]
    for name, entry in (profile or {}).items():
        if name not in features.pooled:
            continue
        mean, std = np.asarray(entry["mean"]), np.asarray(entry["std"])
        x = features.pooled[name]
        if x.shape[1] != len(mean):
            continue
        d = _distances(x, mean, std)
        limit = max(DISTANCE_FACTOR * float(entry["q995"]), float(entry["max"]))
        for i in np.flatnonzero(~np.isfinite(d) | (d > limit)):
            flags[i].append(
                f"unlike the training data: feature '{name}' lies {d[i]:.1f} standard units from the training "
                f"mean (training items held out: at most {float(entry['max']):.1f})"
            )
    return flags


def audio_flags(wave: np.ndarray) -> list[str]:
    """``silence`` / ``clipping`` flags of a mono or (C, T) waveform in [-1, 1]."""
    x = np.abs(np.asarray(wave, dtype=np.float32)).reshape(-1)
    if x.size == 0:
        return []
    out = []
    peak = float(x.max())
    if peak < SILENCE_PEAK:
        level = 20 * math.log10(peak) if peak > 0 else -math.inf
        out.append(f"silence: the audio peaks at {level:.0f} dBFS")
    clipped = int((x >= CLIP_LEVEL).sum())
    if clipped >= max(10, CLIP_FRACTION * x.size):
        out.append(f"clipping: {100 * clipped / x.size:.2f}% of the samples are at full scale")
    return out


def widen_std(std: np.ndarray | None, flagged: np.ndarray, targets) -> np.ndarray | None:
    """The spread with flagged rows raised to at least a uniform guess over each target's range."""
    if std is None or not flagged.any():
        return std
    floor = np.array([(t.high - t.low) / math.sqrt(12.0) for t in targets])
    out = np.array(std, dtype=np.float64, copy=True)
    out[flagged] = np.maximum(out[flagged], floor)
    return out


def item_audio_flags(audio: Any) -> list[str]:
    """:func:`audio_flags` of an item's audio: an in-memory ``(wave, rate)`` pair, or a file read in blocks."""
    if audio is None:
        return []
    if isinstance(audio, tuple):
        return audio_flags(np.asarray(audio[0]))
    from pathlib import Path

    import soundfile as sf

    from scorecast.data.audio import sniff_audio_format, truncated_frames

    peak, clipped, total, frames, rate = 0.0, 0, 0, 0, 0
    try:
        with sf.SoundFile(str(audio)) as f:
            rate = int(f.samplerate)
            for block in f.blocks(blocksize=1 << 16, dtype="float32", always_2d=True):
                a = np.abs(block)
                peak = max(peak, float(a.max()) if a.size else 0.0)
                clipped += int((a >= CLIP_LEVEL).sum())
                total += a.size
                frames += block.shape[0]
        with open(audio, "rb") as fh:
            missing = truncated_frames(Path(audio), sniff_audio_format(fh.read(16)), frames, rate)
    except (sf.LibsndfileError, RuntimeError, ValueError, OSError):
        return []  # unreadable audio is the encoders' error to report
    if total == 0:
        return []
    out = []
    if peak < SILENCE_PEAK:
        level = 20 * math.log10(peak) if peak > 0 else -math.inf
        out.append(f"silence: the audio peaks at {level:.0f} dBFS")
    if clipped >= max(10, CLIP_FRACTION * total):
        out.append(f"clipping: {100 * clipped / total:.2f}% of the samples are at full scale")
    if missing:
        out.append(f"truncated: the header declares {missing[0]} samples, the file holds {missing[1]}")
    return out
