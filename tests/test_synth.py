"""Synthetic speech and impairments: determinism, each impairment does what it says, labels follow severity."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from scorecast.demo import impairments
from scorecast.demo.impairments import (
    IMPAIRMENTS,
    add_noise,
    add_reverb,
    band_limit,
    drop_frames,
    hard_clip,
    impair,
    quality_score,
    quantise,
    stoi_to_score,
)
from scorecast.demo.synth import SAMPLE_RATE, make_voices, synth_speech
from scorecast.errors import ConfigError

SR = SAMPLE_RATE


@pytest.fixture(scope="module")
def voices():
    return make_voices(4, seed=0)


@pytest.fixture(scope="module")
def clean(voices):
    return synth_speech(voices[1], duration_s=3.0, seed=5)


def test_same_seed_same_audio_and_different_seed_different(voices):
    a = synth_speech(voices[0], 2.5, seed=11)
    b = synth_speech(voices[0], 2.5, seed=11)
    c = synth_speech(voices[0], 2.5, seed=12)
    assert a.dtype == np.float32 and a.shape == (int(2.5 * SR),)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert make_voices(4, seed=0) == voices


def test_clip_is_speech_like(clean, voices):
    # level: about -20 dBFS over active samples, never clipping
    active = np.abs(clean) > 1e-4
    assert 0.05 < np.sqrt(np.mean(clean[active] ** 2)) < 0.2
    assert np.max(np.abs(clean)) <= 0.95 + 1e-6
    # pauses: some 20-ms frames are silent, most are not
    frames = clean[: len(clean) // 320 * 320].reshape(-1, 320)
    silent = np.mean(np.sqrt(np.mean(frames**2, axis=1)) < 1e-4)
    assert 0.05 < silent < 0.6
    # pitch: the autocorrelation peak of the loudest (voiced) 40-ms frames sits near the voice's f0
    long = clean[: len(clean) // 640 * 640].reshape(-1, 640)
    loudest = long[np.argsort(-np.mean(long**2, axis=1))[:10]]
    lo, hi = SR // 400, SR // 60  # lags of 400 Hz .. 60 Hz
    f0s = [SR / (lo + np.argmax(np.correlate(f, f, "full")[639:][lo:hi])) for f in loudest]
    assert abs(np.median(f0s) / voices[1].f0_hz - 1) < 0.35


def test_make_voices_rejects_zero():
    with pytest.raises(ConfigError, match="expected n >= 1"):
        make_voices(0)


def test_synth_rejects_bad_duration(voices):
    with pytest.raises(ConfigError, match="expected a duration of 0.5-30 s, got 0.1"):
        synth_speech(voices[0], 0.1)


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 12.5, 30.0])
@pytest.mark.parametrize("color", ["white", "pink"])
def test_add_noise_achieves_the_snr(clean, snr_db, color):
    noisy = add_noise(clean, snr_db, rng=3, color=color)
    noise = noisy.astype(float) - clean.astype(float)
    measured = 10 * np.log10(np.mean(clean.astype(float) ** 2) / np.mean(noise**2))
    assert measured == pytest.approx(snr_db, abs=0.01)


def test_pink_noise_falls_3_db_per_octave(clean):
    noise = add_noise(np.zeros(SR * 4, dtype=np.float32) + 1e-3, 0.0, rng=1, color="pink") - 1e-3
    f, psd = signal.welch(noise, SR, nperseg=4096)
    band = lambda lo, hi: np.mean(psd[(f >= lo) & (f < hi)])  # noqa: E731
    assert 10 * np.log10(band(500, 1000) / band(1000, 2000)) == pytest.approx(3.0, abs=0.5)


def test_add_noise_rejects_unknown_color(clean):
    with pytest.raises(ConfigError, match="noise color: expected one of white, pink, got 'blue'"):
        add_noise(clean, 10, color="blue")


@pytest.mark.parametrize("cutoff", [500.0, 2000.0, 4000.0])
def test_band_limit_removes_energy_above_the_cutoff(cutoff):
    x = np.random.default_rng(0).standard_normal(SR * 2).astype(np.float32)  # flat spectrum
    y = band_limit(x, cutoff)
    f, px = signal.welch(x, SR, nperseg=2048)
    _, py = signal.welch(y, SR, nperseg=2048)
    above = f > cutoff * 1.5
    below = f < cutoff * 0.7
    assert 10 * np.log10(py[above].sum() / px[above].sum()) < -50  # gone above 1.5 x cut-off
    assert 10 * np.log10(py[below].sum() / px[below].sum()) == pytest.approx(0.0, abs=0.5)  # kept below


def test_band_limit_rejects_cutoff_above_nyquist(clean):
    with pytest.raises(ConfigError, match="expected 0 < cutoff_hz < 8000, got 9000"):
        band_limit(clean, 9000)


@pytest.mark.parametrize("threshold", [0.01, 0.1, 0.5])
def test_hard_clip_bounds_and_saturates(clean, threshold):
    y = hard_clip(clean, threshold)
    peak = np.max(np.abs(clean))
    assert np.max(np.abs(y)) <= peak * (1 + 1e-5)
    over = np.abs(clean) >= threshold * peak
    np.testing.assert_allclose(np.abs(y[over]), peak, rtol=1e-5)  # every sample over the threshold sits at the bound
    np.testing.assert_allclose(y[~over], clean[~over] / threshold, rtol=1e-5)  # the rest only gets the make-up gain


def test_hard_clip_rejects_threshold_outside_0_1(clean):
    with pytest.raises(ConfigError, match=r"expected 0 < threshold <= 1 \(a fraction of the peak\), got 1.5"):
        hard_clip(clean, 1.5)


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.3, 0.6])
def test_drop_frames_zeroes_frames_at_the_rate(rate):
    x = np.random.default_rng(1).uniform(0.1, 1.0, SR * 20).astype(np.float32)  # never zero by itself
    y = drop_frames(x, rate, seed=4)
    frames = y.reshape(-1, 320)  # 20 ms
    zero = np.all(frames == 0, axis=1)
    kept = np.all(frames == x.reshape(-1, 320), axis=1)
    assert np.all(zero | kept)  # whole frames dropped, others untouched
    n = len(zero)
    assert abs(zero.mean() - rate) <= 4 * np.sqrt(rate * (1 - rate) / n) + 1e-9


def test_drop_frames_rejects_rate_above_one(clean):
    with pytest.raises(ConfigError, match="expected 0 <= rate <= 1, got 1.2"):
        drop_frames(clean, 1.2)


@pytest.mark.parametrize("rt60", [0.3, 1.0])
def test_reverb_decays_at_the_rt60(rt60):
    impulse = np.zeros(int(SR * rt60 * 1.5), dtype=np.float32)
    impulse[0] = 1.0
    ir = add_reverb(impulse, rt60, seed=2).astype(float)
    # Schroeder backward integration; fit the -5..-25 dB part, extrapolate to -60 dB (T20 x 3)
    edc = np.cumsum(ir[::-1] ** 2)[::-1]
    edc_db = 10 * np.log10(edc / edc[0])
    t = np.arange(len(ir)) / SR
    part = (edc_db <= -5) & (edc_db >= -25)
    slope = np.polyfit(t[part], edc_db[part], 1)[0]
    assert -60 / slope == pytest.approx(rt60, rel=0.15)


def test_reverb_keeps_the_level(clean):
    y = add_reverb(clean, 0.8, seed=1)
    assert np.sqrt(np.mean(y.astype(float) ** 2)) == pytest.approx(np.sqrt(np.mean(clean.astype(float) ** 2)), rel=1e-3)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_quantise_uses_at_most_2_to_the_bits_levels(clean, bits):
    y = quantise(clean, bits)
    assert len(np.unique(np.round(y, 7))) <= 2**bits
    err = [np.mean((quantise(clean, b) - clean) ** 2) for b in (bits, bits + 2)]
    assert err[1] < err[0]  # more bits, less error


def test_quantise_rejects_zero_bits(clean):
    with pytest.raises(ConfigError, match="expected 1 <= bits <= 16, got 0"):
        quantise(clean, 0)


def test_impair_draws_within_range_and_is_seeded(clean):
    y1, p1 = impair(clean, "lowpass", None, seed=7)
    y2, p2 = impair(clean, "lowpass", None, seed=7)
    assert p1 == p2 and 300 <= p1["cutoff_hz"] <= 4000
    np.testing.assert_array_equal(y1, y2)
    y3, p3 = impair(clean, "noise", {"snr_db": 10.0}, seed=0)
    assert p3 == {"snr_db": 10.0}
    assert set(IMPAIRMENTS) == {"clean", "noise", "lowpass", "clip", "dropout", "reverb", "quantise", "mixed"}


def test_impair_unknown_condition_lists_the_known_ones(clean):
    with pytest.raises(ConfigError, match="unknown impairment 'hiss'; expected one of: clean, noise"):
        impair(clean, "hiss")


def test_stoi_to_score_mapping():
    floor = impairments.STOI_FLOOR
    assert stoi_to_score(1.0) == 5.0
    assert stoi_to_score(floor) == 1.0
    assert stoi_to_score(0.1) == 1.0  # clipped below
    assert stoi_to_score((1 + floor) / 2) == pytest.approx(3.0)
    np.testing.assert_allclose(stoi_to_score(np.array([floor, 1.0])), [1.0, 5.0])


def test_quality_score_of_the_clean_clip_is_top(clean):
    score, stoi = quality_score(clean, clean)
    assert stoi == pytest.approx(1.0, abs=1e-6) and score == pytest.approx(5.0, abs=1e-4)


def test_quality_score_rejects_length_mismatch(clean):
    with pytest.raises(ConfigError, match="expected equal lengths, got 48000 and 47999"):
        quality_score(clean, clean[:-1])


@pytest.mark.parametrize(
    "condition,levels",
    [
        ("noise", [{"snr_db": s} for s in (-5.0, 5.0, 15.0, 25.0)]),
        ("lowpass", [{"cutoff_hz": c} for c in (400.0, 1000.0, 2500.0)]),
        ("dropout", [{"rate": r} for r in (0.5, 0.25, 0.05)]),
        ("clip", [{"threshold": t} for t in (0.005, 0.05, 0.5)]),
    ],
)
def test_scores_rise_as_the_impairment_eases(voices, condition, levels):
    """Averaged over three clips, STOI-based scores go up as the impairment gets milder."""
    clips = [synth_speech(voices[i], 2.5, seed=100 + i) for i in range(3)]
    means = []
    for params in levels:
        means.append(
            np.mean([quality_score(x, impair(x, condition, params, seed=i)[0])[0] for i, x in enumerate(clips)])
        )
    assert all(b > a for a, b in zip(means, means[1:])), means
    assert means[-1] - means[0] > 0.8, means
