"""Waveform augmentation, re-encoded through the embedding cache.

Each augmentation is a plain function of a mono waveform and explicit parameters (so a test can
check it exactly); :func:`augment_waveform` draws the parameters from a recipe's
:class:`~scorecast.config.Augment` ranges with a seeded generator; :func:`augment_items` writes
augmented copies of each clip as WAV files and returns new items (ids ``<id>#aug<k>``, same
targets, ratings and group) that go through the normal cached encoding pipeline.

The same seed gives byte-identical files under the same names, so a rerun finds them on disk and
their embeddings in the cache. Augmented copies belong in training folds only: the cross-validation
(``scorecast.runs.cv``) adds the copies of a fold's training items, never those of its validation items.

Layout used by :func:`augment_items`: for ``N`` source items and ``C`` copies the augmented list is
item-major, so copy ``k`` of item ``i`` sits at ``i * C + k``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from scorecast.config import Augment
from scorecast.data.items import Item
from scorecast.data.noise import NOISE_COLORS, add_noise
from scorecast.errors import ConfigError, DataError

log = logging.getLogger(__name__)

SHIFT_MODES: tuple[str, ...] = ("circular", "zero")


# --------------------------------------------------------------------------------------- primitives
def _check_wave(wave: np.ndarray) -> np.ndarray:
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise DataError(f"augmentation: expected a mono waveform of shape (T,), got shape {wave.shape}")
    return wave


def apply_gain(wave: np.ndarray, gain_db: float) -> np.ndarray:
    """``wave`` times 10^(gain_db / 20). Samples may leave [-1, 1]; files are written as float."""
    wave = _check_wave(wave)
    return (wave.astype(np.float64) * 10.0 ** (gain_db / 20.0)).astype(np.float32)


def time_shift(wave: np.ndarray, shift_samples: int, mode: str = "circular") -> np.ndarray:
    """Delay by ``shift_samples`` (advance when negative); ``circular`` wraps the end round,
    ``zero`` fills the gap with silence. Length is unchanged."""
    wave = _check_wave(wave)
    if mode not in SHIFT_MODES:
        raise ConfigError(f"time shift mode: expected one of {', '.join(SHIFT_MODES)}, got '{mode}'")
    n = len(wave)
    shift = int(shift_samples)
    if mode == "circular":
        return np.roll(wave, shift) if n else wave.copy()
    out = np.zeros_like(wave)
    if abs(shift) >= n:
        return out
    if shift >= 0:
        out[shift:] = wave[: n - shift]
    else:
        out[: n + shift] = wave[-shift:]
    return out


def change_speed(wave: np.ndarray, factor: float, sample_rate: int) -> np.ndarray:
    """Play ``factor`` times faster (pitch moves with it): resample with soxr from ``sample_rate``
    to ``sample_rate / factor`` and read the result at ``sample_rate``. Duration becomes T / factor."""
    import soxr

    wave = _check_wave(wave)
    if factor <= 0:
        raise ConfigError(f"speed factor: expected > 0, got {factor}")
    if factor == 1.0 or len(wave) == 0:
        return wave.copy()
    return np.asarray(soxr.resample(wave, sample_rate, sample_rate / factor, quality="HQ"), dtype=np.float32)


# ------------------------------------------------------------------------------- drawing parameters
def check_augment(cfg: Augment) -> None:
    """Raise a ConfigError when ``cfg`` asks for copies but sets no augmentation, or a bad range."""
    if cfg.copies < 0:
        raise ConfigError(f"training.augment.copies: expected >= 0, got {cfg.copies}")
    for name in ("noise_snr_db", "gain_db", "speed"):
        value = getattr(cfg, name)
        if value is not None and value[0] > value[1]:
            raise ConfigError(f"training.augment.{name}: expected [low, high] with low <= high, got {list(value)}")
    if cfg.speed is not None and cfg.speed[0] <= 0:
        raise ConfigError(f"training.augment.speed: expected factors > 0, got {list(cfg.speed)}")
    if cfg.shift_s is not None and cfg.shift_s < 0:
        raise ConfigError(f"training.augment.shift_s: expected >= 0 seconds, got {cfg.shift_s}")
    if cfg.copies > 0 and not is_active(cfg):
        raise ConfigError(
            f"training.augment.copies is {cfg.copies} but no augmentation is set: "
            "expected at least one of noise_snr_db, gain_db, shift_s, speed"
        )


def is_active(cfg: Augment) -> bool:
    """True when ``cfg`` sets at least one augmentation (whatever ``copies`` says)."""
    return any(v is not None for v in (cfg.noise_snr_db, cfg.gain_db, cfg.shift_s, cfg.speed))


def draw_params(cfg: Augment, rng: np.random.Generator, noise_colors: Sequence[str] = NOISE_COLORS) -> dict[str, Any]:
    """One copy's parameters, drawn uniformly from the ranges ``cfg`` sets (only those it sets)."""
    params: dict[str, Any] = {}
    if cfg.speed is not None:
        params["speed"] = float(rng.uniform(*cfg.speed))
    if cfg.shift_s is not None:
        params["shift_s"] = float(rng.uniform(-cfg.shift_s, cfg.shift_s))
    if cfg.gain_db is not None:
        params["gain_db"] = float(rng.uniform(*cfg.gain_db))
    if cfg.noise_snr_db is not None:
        params["snr_db"] = float(rng.uniform(*cfg.noise_snr_db))
        params["noise"] = str(noise_colors[int(rng.integers(len(noise_colors)))])
    return params


def apply_params(
    wave: np.ndarray, sample_rate: int, params: dict[str, Any], rng: np.random.Generator, shift_mode: str = "circular"
) -> np.ndarray:
    """Apply drawn parameters in a fixed order: speed, shift, gain, noise (noise uses ``rng``)."""
    out = _check_wave(wave)
    if "speed" in params:
        out = change_speed(out, params["speed"], sample_rate)
    if "shift_s" in params:
        out = time_shift(out, int(round(params["shift_s"] * sample_rate)), shift_mode)
    if "gain_db" in params:
        out = apply_gain(out, params["gain_db"])
    if "snr_db" in params:
        out = add_noise(out, params["snr_db"], rng, params.get("noise", "white"))
    return out


def augment_waveform(
    wave: np.ndarray,
    sample_rate: int,
    cfg: Augment,
    rng: np.random.Generator,
    shift_mode: str = "circular",
    noise_colors: Sequence[str] = NOISE_COLORS,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Draw parameters from ``cfg`` and apply them. Returns (augmented (T',), parameters)."""
    params = draw_params(cfg, rng, noise_colors)
    return apply_params(wave, sample_rate, params, rng, shift_mode), params


def item_rng(seed: int, item_id: str, copy: int) -> np.random.Generator:
    """The generator for copy ``copy`` of item ``item_id``: depends on nothing else, so adding or
    removing other items never changes this item's augmented audio."""
    id_hash = int.from_bytes(hashlib.sha256(item_id.encode()).digest()[:8], "little")
    return np.random.default_rng(np.random.SeedSequence([int(seed), id_hash, int(copy)]))


# ------------------------------------------------------------------------------------------- items
def augment_items(
    items: Sequence[Item],
    augment_cfg: Augment,
    out_dir: str | Path,
    seed: int = 0,
    *,
    shift_mode: str = "circular",
    noise_colors: Sequence[str] = NOISE_COLORS,
) -> list[Item]:
    """Write ``augment_cfg.copies`` augmented WAV copies of each item's audio under ``out_dir``.

    Returns ``len(items) * copies`` new items, item-major (copy ``k`` of item ``i`` at
    ``i * copies + k``), with ids ``<id>#aug<k>``, the source's texts, vectors, targets, ratings
    and group, and ``meta["augmented_from"]`` / ``meta["augment"]`` (the drawn parameters). File
    names hash the source file's bytes, the parameters and the seed: a rerun with the same seed finds
    the files already there and reuses them untouched. Files are mono 32-bit float WAV at the
    source's sample rate (multi-channel sources are averaged to mono).
    """
    from scorecast.data.audio import audio_bytes_hash

    check_augment(augment_cfg)
    if shift_mode not in SHIFT_MODES:
        raise ConfigError(f"time shift mode: expected one of {', '.join(SHIFT_MODES)}, got '{shift_mode}'")
    bad = [c for c in noise_colors if c not in NOISE_COLORS]
    if bad or not noise_colors:
        raise ConfigError(
            f"noise colors: expected a non-empty subset of {list(NOISE_COLORS)}, got {list(noise_colors)}"
        )
    copies = augment_cfg.copies
    if copies == 0:
        return []
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result: list[Item] = []
    for item in items:
        if not item.audio:
            raise DataError(f"item '{item.id}': augmentation needs audio, got none", field="audio")
        source = Path(item.audio)
        if not source.is_file():
            raise DataError(f"item '{item.id}': audio file not found: {source}", file=source, field="audio")
        source_hash = audio_bytes_hash(source)
        wave: np.ndarray | None = None
        sample_rate = 0
        for k in range(copies):
            rng = item_rng(seed, item.id, k)
            params = draw_params(augment_cfg, rng, noise_colors)
            key = json.dumps(
                {"source": source_hash, "params": params, "seed": seed, "copy": k, "shift_mode": shift_mode},
                sort_keys=True,
            )
            digest = hashlib.sha256(key.encode()).hexdigest()[:16]
            path = out / f"{_safe_name(item.id)}.aug{k}.{digest}.wav"
            if not path.is_file():
                if wave is None:
                    wave, sample_rate = _read_mono(source, item.id)
                augmented = apply_params(wave, sample_rate, params, rng, shift_mode)
                tmp = path.with_suffix(".tmp.wav")
                write_float_wav(tmp, augmented, sample_rate)
                tmp.replace(path)
            meta = dict(item.meta)
            meta.update({"augmented_from": item.id, "augment": params})
            result.append(
                replace(
                    item,
                    id=f"{item.id}#aug{k}",
                    audio=str(path.resolve()),
                    texts=dict(item.texts),
                    vectors=dict(item.vectors),
                    targets=dict(item.targets),
                    ratings=dict(item.ratings),
                    meta=meta,
                )
            )
    return result


def augmented_features(
    recipe: Any, items: Sequence[Item], cache: Any, work_dir: str | Path, **encode_kwargs: Any
) -> Any:
    """The recipe's features of augmented copies of ``items`` (all of them; training code keeps the
    copies of training items only), encoded through ``cache``, or None when no copies are asked.

    Copies are written under ``work_dir`` with seed ``recipe.training.seed``; the returned FeatureSet
    is item-major (``len(items) * copies`` rows, ids ``<id>#aug<k>``), as ``run_cv(augmented=...)``
    expects. Text and vector encoders see the sources' inputs, so their rows come from the cache.
    ``encode_kwargs`` go to :func:`scorecast.encoders.pipeline.build_features`.
    """
    from scorecast.encoders.pipeline import build_features

    cfg: Augment = recipe.training.augment
    check_augment(cfg)
    if cfg.copies == 0:
        if is_active(cfg):
            log.warning("training.augment sets augmentations but copies is 0: no augmented copies are made")
        return None
    if not any(spec.input == "audio" for spec in recipe.encoders):
        raise ConfigError(
            f"training.augment.copies is {cfg.copies}, but no encoder reads audio "
            f"(inputs: {', '.join(s.input for s in recipe.encoders) or 'none'}); waveform augmentation needs one"
        )
    copies = augment_items(list(items), cfg, work_dir, seed=recipe.training.seed)
    features = build_features(copies, recipe.encoders, cache, **encode_kwargs)
    if list(features.ids) != [c.id for c in copies]:
        lost = sorted(set(c.id for c in copies) - set(features.ids))
        raise DataError(
            f"augmented copies: expected all {len(copies)} to be encoded, got {len(features)} "
            f"(first missing: {lost[0] if lost else '?'})"
        )
    return features


def write_float_wav(path: str | Path, wave: np.ndarray, sample_rate: int) -> None:
    """Write mono 32-bit IEEE-float WAV whose bytes depend only on the samples and the rate.

    (libsndfile adds a PEAK chunk with a timestamp to float WAV files, so the same audio written
    twice would get two content hashes and miss the embedding cache.)
    """
    import struct

    data = np.ascontiguousarray(wave, dtype="<f4").tobytes()
    n = len(data) // 4
    fmt = struct.pack("<HHIIHHH", 3, 1, int(sample_rate), int(sample_rate) * 4, 4, 32, 0)  # IEEE float, cbSize 0
    fact = struct.pack("<I", n)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"fact" + struct.pack("<I", 4) + fact
    body += b"data" + struct.pack("<I", len(data)) + data
    Path(path).write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def _read_mono(path: Path, item_id: str) -> tuple[np.ndarray, int]:
    """The source clip, mono at its own rate (the encoder resamples the copy as it would the source)."""
    import soundfile as sf

    from scorecast.data.audio import load_audio

    try:
        sample_rate = int(sf.info(str(path)).samplerate)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise DataError(
            f"item '{item_id}': cannot read audio for augmentation: {exc}", file=path, field="audio"
        ) from exc
    return load_audio(path, sample_rate=None, mono=True), sample_rate


def _safe_name(item_id: str) -> str:
    name = re.sub(r"[^\w.\-]+", "_", item_id).strip("._") or "item"
    return name[:80]
