"""Waveform augmentation: exact primitives, deterministic files, no leak into validation, cache reuse."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import soundfile as sf

from scorecast.config import Augment
from scorecast.data.items import Item
from scorecast.data.noise import add_noise, colored_noise
from scorecast.errors import ConfigError, DataError
from scorecast.training.augment import apply_gain, augment_items, change_speed, time_shift

SR = 16000


def _tone(freq: float = 440.0, seconds: float = 1.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.1 * np.sin(2 * np.pi * 3.1 * freq * t)).astype(np.float32)


def _snr(clean: np.ndarray, noisy: np.ndarray) -> float:
    clean = clean.astype(np.float64)
    noise = noisy.astype(np.float64) - clean
    return 10 * np.log10(np.sum(clean**2) / np.sum(noise**2))


def _peak_hz(wave: np.ndarray, sr: int = SR) -> float:
    spec = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / sr)[np.argmax(spec)])


@pytest.fixture()
def clips(tmp_path):
    items = []
    rng = np.random.default_rng(1)
    for i, freq in enumerate([220.0, 330.0, 440.0, 550.0]):
        path = tmp_path / "src" / f"clip{i}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, _tone(freq, 0.5) + 0.01 * rng.standard_normal(SR // 2).astype(np.float32), SR, subtype="FLOAT")
        items.append(
            Item(id=f"c{i}", audio=str(path), texts={"t": f"text {i}"}, targets={"score": float(i)}, group=f"g{i % 2}")
        )
    return items


@pytest.mark.parametrize("color", ["white", "pink"])
@pytest.mark.parametrize("snr_db", [0.0, 10.0, 25.0])
def test_add_noise_reaches_the_requested_snr(color, snr_db):
    clean = _tone()
    noisy = add_noise(clean, snr_db, np.random.default_rng(0), color)
    assert noisy.shape == clean.shape
    assert abs(_snr(clean, noisy) - snr_db) < 0.01


def test_pink_noise_power_falls_as_one_over_f():
    noise = colored_noise(2**16, "pink", np.random.default_rng(0))
    freqs = np.fft.rfftfreq(len(noise))
    power = np.abs(np.fft.rfft(noise)) ** 2
    band = (freqs > 1e-3) & (freqs < 0.4)
    slope = np.polyfit(np.log(freqs[band]), np.log(power[band]), 1)[0]
    assert -1.15 < slope < -0.85
    white = colored_noise(2**16, "white", np.random.default_rng(0))
    w_slope = np.polyfit(np.log(freqs[band]), np.log(np.abs(np.fft.rfft(white))[band] ** 2), 1)[0]
    assert abs(w_slope) < 0.1
    assert np.sqrt(np.mean(noise**2)) == pytest.approx(1.0)


def test_gain_is_exact():
    wave = _tone()
    np.testing.assert_allclose(apply_gain(wave, 6.0), wave * 10 ** (6.0 / 20), rtol=1e-6)
    np.testing.assert_allclose(apply_gain(wave, -20.0), wave * 0.1, rtol=1e-6)


def test_time_shift_circular_and_zero_padded():
    wave = np.arange(1, 11, dtype=np.float32)
    np.testing.assert_array_equal(time_shift(wave, 3, "circular"), np.roll(wave, 3))
    np.testing.assert_array_equal(time_shift(wave, 3, "zero"), [0, 0, 0, 1, 2, 3, 4, 5, 6, 7])
    np.testing.assert_array_equal(time_shift(wave, -2, "zero"), [3, 4, 5, 6, 7, 8, 9, 10, 0, 0])
    np.testing.assert_array_equal(time_shift(wave, 12, "zero"), np.zeros(10))
    with pytest.raises(ConfigError, match="expected one of circular, zero, got 'wrap'"):
        time_shift(wave, 1, "wrap")


@pytest.mark.parametrize("factor", [0.8, 1.25])
def test_speed_changes_duration_and_pitch(factor):
    wave = _tone(440.0, 1.0)
    fast = change_speed(wave, factor, SR)
    assert abs(len(fast) - len(wave) / factor) <= 1
    assert _peak_hz(fast) == pytest.approx(440.0 * factor, abs=3.0)


def test_augment_items_is_deterministic_and_keeps_labels(clips, tmp_path):
    cfg = Augment(copies=2, noise_snr_db=(5.0, 20.0), gain_db=(-6.0, 6.0), shift_s=0.1, speed=(0.9, 1.1))
    first = augment_items(clips, cfg, tmp_path / "a", seed=7)
    time.sleep(1.1)  # a writer that stamps the time into the file (libsndfile's PEAK chunk) would differ now
    again = augment_items(clips, cfg, tmp_path / "b", seed=7)
    other = augment_items(clips, cfg, tmp_path / "c", seed=8)
    assert [it.id for it in first] == [
        "c0#aug0",
        "c0#aug1",
        "c1#aug0",
        "c1#aug1",
        "c2#aug0",
        "c2#aug1",
        "c3#aug0",
        "c3#aug1",
    ]
    for a, b, c, i in zip(first, again, other, [i for i in range(4) for _ in range(2)]):
        src = clips[i]
        assert (a.targets, a.group, a.texts, a.meta["augmented_from"]) == (src.targets, src.group, src.texts, src.id)
        assert a.audio != src.audio
        with open(a.audio, "rb") as fa, open(b.audio, "rb") as fb, open(c.audio, "rb") as fc:
            da, db, dc = fa.read(), fb.read(), fc.read()
        assert da == db  # same seed: identical bytes
        assert da != dc  # another seed: other audio
        assert a.meta["augment"] == b.meta["augment"]
        wave, sr = sf.read(a.audio, dtype="float32")
        assert sr == SR
        assert abs(len(wave) - SR // 2 / a.meta["augment"]["speed"]) <= 1
    # two copies of one clip differ
    assert sf.read(first[0].audio)[0].tolist() != sf.read(first[1].audio)[0][: len(sf.read(first[0].audio)[0])].tolist()
    # the source items are untouched (their dicts are not shared with the copies)
    first[0].targets["score"] = 99.0
    assert clips[0].targets["score"] == 0.0


def test_augmented_files_have_the_drawn_gain_and_snr(clips, tmp_path):
    gain_only = augment_items(clips, Augment(copies=1, gain_db=(-10.0, 10.0)), tmp_path / "g", seed=0)
    for src, aug in zip(clips, gain_only):
        clean = sf.read(src.audio, dtype="float32")[0]
        gain = aug.meta["augment"]["gain_db"]
        assert -10.0 <= gain <= 10.0
        np.testing.assert_allclose(sf.read(aug.audio, dtype="float32")[0], clean * 10 ** (gain / 20), rtol=1e-6)
    noise_only = augment_items(clips, Augment(copies=2, noise_snr_db=(3.0, 12.0)), tmp_path / "n", seed=0)
    colors = set()
    for i, aug in enumerate(noise_only):
        clean = sf.read(clips[i // 2].audio, dtype="float32")[0]
        snr = aug.meta["augment"]["snr_db"]
        colors.add(aug.meta["augment"]["noise"])
        assert 3.0 <= snr <= 12.0
        assert abs(_snr(clean, sf.read(aug.audio, dtype="float32")[0]) - snr) < 0.05
    assert colors == {"white", "pink"}  # both colours drawn (fixed seed)


def test_rerun_reuses_the_files(clips, tmp_path):
    cfg = Augment(copies=1, noise_snr_db=(10.0, 10.0))
    first = augment_items(clips, cfg, tmp_path / "aug", seed=3)
    stamps = [(it.audio, os.stat(it.audio).st_mtime_ns) for it in first]
    second = augment_items(clips, cfg, tmp_path / "aug", seed=3)
    assert [(it.audio, os.stat(it.audio).st_mtime_ns) for it in second] == stamps
    assert len(list((tmp_path / "aug").iterdir())) == len(clips)


def test_copies_of_validation_items_never_reach_training():
    from sklearn.model_selection import KFold

    from scorecast.data.features import FeatureSet
    from scorecast.runs.cv import _augmented_part

    n, copies = 23, 3
    ids = [f"i{j}" for j in range(n)]
    aug_ids = [f"{ids[j]}#aug{k}" for j in range(n) for k in range(copies)]
    augmented = FeatureSet(aug_ids, {"f": np.arange(n * copies, dtype=np.float32)[:, None]}, {})
    targets = np.arange(n, dtype=float)[:, None]
    for train_idx, val_idx in KFold(5, shuffle=True, random_state=0).split(np.arange(n)):
        part, part_y = _augmented_part(augmented, n, train_idx, targets)
        assert len(part) == len(train_idx) * copies
        sources = {i.split("#")[0] for i in part.ids}
        assert sources == {ids[j] for j in train_idx}
        assert sources.isdisjoint({ids[j] for j in val_idx})
        # every copy of every training item is there, with its source's target
        assert set(part.ids) == {f"{ids[j]}#aug{k}" for j in train_idx for k in range(copies)}
        np.testing.assert_array_equal(part_y[:, 0], [float(i.split("#")[0][1:]) for i in part.ids])
    assert _augmented_part(None, n, np.arange(3), targets) is None
    with pytest.raises(DataError, match="expected a multiple of 23 rows"):
        _augmented_part(augmented.subset(np.arange(5)), n, np.arange(3), targets)


def test_bad_config_and_items_raise(clips, tmp_path):
    with pytest.raises(ConfigError, match="copies is 2 but no augmentation is set"):
        augment_items(clips, Augment(copies=2), tmp_path)
    with pytest.raises(ConfigError, match=r"gain_db: expected \[low, high\] with low <= high, got \[3.0, -3.0\]"):
        augment_items(clips, Augment(copies=1, gain_db=(3.0, -3.0)), tmp_path)
    with pytest.raises(ConfigError, match="speed: expected factors > 0"):
        augment_items(clips, Augment(copies=1, speed=(0.0, 1.0)), tmp_path)
    with pytest.raises(DataError, match="item 'x': augmentation needs audio, got none"):
        augment_items([Item(id="x", texts={"t": "a"})], Augment(copies=1, gain_db=(0, 1)), tmp_path)
    with pytest.raises(DataError, match="audio file not found"):
        augment_items([Item(id="y", audio=str(tmp_path / "nope.wav"))], Augment(copies=1, gain_db=(0, 1)), tmp_path)
    assert augment_items(clips, Augment(copies=0, gain_db=(0, 1)), tmp_path / "none") == []


def _register_counting_encoder():
    from scorecast.encoders.base import ENCODERS, Encoded, Encoder

    if "test-augment-rms" in ENCODERS:
        return ENCODERS.get("test-augment-rms")

    @ENCODERS.register("test-augment-rms")
    class RmsEncoder(Encoder):
        modality = "audio"
        sample_rate = SR
        encoded = 0

        def identity(self):
            return {"name": "test-augment-rms", "version": 1}

        def encode_batch(self, inputs):
            type(self).encoded += len(inputs)
            return [Encoded(np.array([np.sqrt(np.mean(w**2)), len(w) / SR], np.float32)) for w in inputs]

    return RmsEncoder


def test_augmented_features_are_cached_on_rerun(clips, tmp_path):
    from scorecast.cache.store import EmbeddingCache
    from scorecast.config import load_recipe
    from scorecast.training.augment import augmented_features

    enc = _register_counting_encoder()
    recipe = load_recipe(
        {
            "encoders": [{"name": "test-augment-rms", "input": "audio"}],
            "training": {"seed": 5, "augment": {"copies": 2, "gain_db": [-12, -3], "speed": [0.8, 1.2]}},
        }
    )
    cache = EmbeddingCache(tmp_path / "cache")
    before = enc.encoded
    first = augmented_features(recipe, clips, cache, tmp_path / "run1", progress=False)
    assert enc.encoded - before == 2 * len(clips)  # every copy encoded once
    assert first.ids == [f"c{i}#aug{k}" for i in range(4) for k in range(2)]
    # a second run (fresh folder, same seed) writes the same bytes: every row comes from the cache
    second = augmented_features(recipe, clips, cache, tmp_path / "run2", progress=False)
    assert enc.encoded - before == 2 * len(clips)
    np.testing.assert_array_equal(first.pooled["test-augment-rms:audio"], second.pooled["test-augment-rms:audio"])
    # the copies' features are not the sources' (gain lowers the RMS, speed changes the length)
    pooled = first.pooled["test-augment-rms:audio"]
    for i, src in enumerate(clips):
        wave = sf.read(src.audio, dtype="float32")[0]
        for k in range(2):
            row = pooled[i * 2 + k]
            assert row[0] < np.sqrt(np.mean(wave**2))
            params = augment_items([src], recipe.training.augment, tmp_path / "run1", seed=5)[k].meta["augment"]
            assert row[1] == pytest.approx(len(wave) / SR / params["speed"], abs=2 / SR)
    recipe_text = load_recipe(
        {
            "encoders": [{"name": "sentence", "input": "text.t"}],
            "training": {"augment": {"copies": 1, "gain_db": [0, 1]}},
        }
    )
    with pytest.raises(ConfigError, match="no encoder reads audio"):
        augmented_features(recipe_text, clips, cache, tmp_path / "run3")
    assert augmented_features(load_recipe({"encoders": [{"name": "test-augment-rms"}]}), clips, cache, tmp_path) is None
