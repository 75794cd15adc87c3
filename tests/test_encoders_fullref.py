"""The ``fullref`` encoder (two audio inputs: a stimulus and its reference field): STOI/ESTOI and PESQ
against pystoi's and pesq's own API on the same inputs, bandwidth / log-spectral distance / segmental
SNR / MCD against hand computations on synthetic signals, alignment, sample rates, the pipeline's
cache (keyed by both clips' content), and every refusal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from scorecast.cache.store import EmbeddingCache
from scorecast.config import EncoderSpec
from scorecast.data.items import Item
from scorecast.demo.synth import make_voices, synth_speech
from scorecast.encoders import _signal_measures as sm
from scorecast.encoders.base import ENCODERS
from scorecast.encoders.pipeline import encode_items
from scorecast.errors import ConfigError, DataError

pesq_lib = pytest.importorskip("pesq", reason="the pesq package (pip install pesq==0.0.4) is not installed")
from pystoi import stoi as pystoi_stoi  # noqa: E402

SR = 16000


def speech(seed: int = 0, seconds: float = 3.0, sr: int = SR) -> np.ndarray:
    return synth_speech(make_voices(1, seed)[0], seconds, seed=seed, sr=sr).astype(np.float64)


def degraded(x: np.ndarray, snr_db: float = 10.0, seed: int = 1) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(x.size)
    return x + noise * np.sqrt(np.mean(x**2) / 10 ** (snr_db / 10))


def build(**params):
    return ENCODERS.build("fullref", reference="reference", **params)


def values(enc, stim, ref) -> dict[str, float]:
    return dict(zip(enc.feature_names(), enc.measure(stim, ref).tolist()))


def test_stoi_estoi_and_pesq_equal_the_libraries_on_the_same_inputs():
    ref = speech(0)
    stim = degraded(ref, 5.0)
    enc = build(sample_rate=SR, measures=["stoi", "estoi", "pesq"], align="none")
    got = values(enc, stim, ref)
    assert enc.feature_names() == ["stoi", "estoi", "pesq_wb"]
    assert got["stoi"] == pytest.approx(pystoi_stoi(ref, stim, SR), abs=1e-4)
    assert got["estoi"] == pytest.approx(pystoi_stoi(ref, stim, SR, extended=True), abs=1e-4)
    assert got["pesq_wb"] == pytest.approx(pesq_lib.pesq(SR, ref, stim, "wb"), abs=1e-4)
    assert 1.0 < got["pesq_wb"] < 4.0 and 0.3 < got["stoi"] < 1.0  # a real degradation, not a constant


def test_a_delayed_and_longer_stimulus_is_aligned_before_measuring():
    ref = speech(2)
    pad = np.zeros(123)
    stim = np.concatenate([pad, degraded(ref, 15.0), np.zeros(400)])  # 123 samples late, 523 longer
    a, b, delay = sm.align(stim, ref, SR, 0.25, "waveform")
    assert delay == 123 and a.size == b.size == ref.size
    _, _, env_delay = sm.align(stim, ref, SR, 0.25, "envelope")
    assert abs(env_delay - 123) <= 16  # the envelope's 1 ms step at 16 kHz
    _, _, early = sm.align(ref, np.concatenate([pad, ref]), SR, 0.25, "waveform")
    assert early == -123
    enc = build(sample_rate=SR, measures=["stoi", "estoi"], align="waveform")
    got = values(enc, stim, ref)
    aligned = stim[123 : 123 + ref.size]
    assert got["stoi"] == pytest.approx(pystoi_stoi(ref, aligned, SR), abs=1e-4)
    assert got["estoi"] == pytest.approx(pystoi_stoi(ref, aligned, SR, extended=True), abs=1e-4)


def test_bandwidth_of_a_bin_centred_sine_and_of_low_passed_noise():
    n = sm.frame_length(SR)  # 512 samples: bins of 31.25 Hz
    t = np.arange(2 * SR) / SR
    sine = np.sin(2 * np.pi * 1000.0 * t)  # bin 32 exactly: the periodic Hann leaks into bins 31 and 33 only
    power = sm.power_spectra(sm.frames(sine, SR))
    assert sm.bandwidth_hz(power, SR, 60.0) == pytest.approx(33 * SR / n)
    noise = np.random.default_rng(0).standard_normal(2 * SR)
    spectrum = np.fft.rfft(noise)
    spectrum[np.fft.rfftfreq(noise.size, 1 / SR) > 4000] = 0  # brick-wall low pass at 4 kHz
    low = np.fft.irfft(spectrum, noise.size)
    bw = sm.bandwidth_hz(sm.power_spectra(sm.frames(low, SR)), SR, 60.0)
    # the edge is at 4 kHz; the window's side lobes (-31 dB, then -18 dB per octave) reach -60 dB within 8 bins
    assert 4000 <= bw <= 4000 + 8 * SR / n
    assert sm.bandwidth_hz(sm.power_spectra(sm.frames(noise, SR)), SR, 60.0) == SR / 2


def test_a_gain_of_one_half_gives_6_dB_everywhere_and_no_cepstral_distance():
    ref = np.random.default_rng(3).standard_normal(SR)
    enc = build(sample_rate=SR, bands_hz=[0, 2000, 4000, 8000], measures=["lsd", "segsnr", "mcd", "level"])
    got = values(enc, 0.5 * ref, ref)
    six = 20 * np.log10(2.0)  # power ratio 4 in every bin and every frame
    assert enc.feature_names() == ["lsd_0_2k", "lsd_2_4k", "lsd_4_8k", "segsnr_db", "mcd_db", "level_db"]
    for band in ("lsd_0_2k", "lsd_2_4k", "lsd_4_8k"):
        assert got[band] == pytest.approx(six, abs=1e-6)
    assert got["segsnr_db"] == pytest.approx(six, abs=1e-6)  # noise = ref - ref / 2 = ref / 2
    assert got["level_db"] == pytest.approx(-six, abs=1e-6)
    assert got["mcd_db"] == pytest.approx(0.0, abs=1e-6)  # a constant log offset moves c0 only, left out


def test_a_band_empty_in_both_clips_has_distance_zero_and_an_emptied_band_a_large_one():
    sr = 24000
    rng = np.random.default_rng(4)
    spectrum = np.fft.rfft(rng.standard_normal(2 * sr))
    freqs = np.fft.rfftfreq(2 * sr, 1 / sr)
    full = np.fft.irfft(spectrum, 2 * sr)
    spectrum[freqs > 8000] = 0
    narrow = np.fft.irfft(spectrum, 2 * sr)
    enc = build(sample_rate=sr, bands_hz=[0, 4000, 8000, 12000], measures=["bandwidth", "lsd"])
    same = values(enc, narrow, narrow)
    assert same["lsd_8_12k"] == 0.0 and same["lsd_0_4k"] == 0.0
    cut = values(enc, narrow, full)
    assert cut["lsd_0_4k"] < 0.5 and cut["lsd_8_12k"] > 40  # floored 80 dB below the reference's mean power
    assert cut["bandwidth_ref_khz"] == 12.0 and 8.0 <= cut["bandwidth_khz"] <= 8.35
    assert cut["bandwidth_ratio"] == pytest.approx(cut["bandwidth_khz"] / 12.0)


def write(path: Path, wave: np.ndarray, sr: int = SR) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave.astype(np.float32), sr, subtype="FLOAT")
    return str(path)


def test_through_the_pipeline_and_cache_with_files_at_different_rates(tmp_path):
    ref24 = degraded(speech(5, sr=24000), 30.0)  # white noise 30 dB down: full band up to 12 kHz
    ref_path = write(tmp_path / "ref.wav", ref24, 24000)
    stim16 = degraded(speech(5, sr=SR), 12.0)  # the same sentence, recorded at 16 kHz
    items = [Item(id="a", audio=write(tmp_path / "a.wav", stim16), audios={"reference": ref_path})]
    items.append(Item(id="b", audio=ref_path, audios={"reference": ref_path}))
    spec = EncoderSpec(
        name="fullref",
        input="audio",
        params={"reference": "reference", "sample_rate": 24000, "bands_hz": [0, 4000, 8000, 12000]},
    )
    cache = EmbeddingCache(tmp_path / "cache")
    first = encode_items(items, spec, cache, progress=False, workers=0)
    assert first.encoded == 2 and first.pooled.shape == (2, 12)
    enc = build(sample_rate=24000, bands_hz=[0, 4000, 8000, 12000])
    names = enc.feature_names()
    a = dict(zip(names, first.pooled[0]))
    assert 7.5 <= a["bandwidth_khz"] <= 8.0 and a["bandwidth_ref_khz"] > 11.5  # soxr brought the 16 kHz file to 24 kHz
    b = dict(zip(names, first.pooled[1]))
    assert b["stoi"] == pytest.approx(1.0, abs=1e-5) and b["lsd_0_4k"] == 0.0 and b["segsnr_db"] == 35.0
    again = encode_items(items, spec, cache, progress=False, workers=0)
    assert again.encoded == 0 and again.cached == 2
    np.testing.assert_array_equal(again.pooled, first.pooled)
    write(tmp_path / "ref.wav", 0.5 * ref24, 24000)  # the reference's content changed: a new key
    changed = encode_items(items, spec, cache, progress=False, workers=2)  # pairs travel to worker processes too
    assert changed.encoded == 2 and changed.pooled[0, names.index("level_db")] > a["level_db"] + 5


def test_refusals_name_the_item_and_both_files(tmp_path):
    ref = write(tmp_path / "ref.wav", speech(6))
    silent = write(tmp_path / "silent.wav", np.zeros(SR))
    spec = EncoderSpec(
        name="fullref", input="audio", params={"reference": "reference", "sample_rate": SR, "bands_hz": [0, 8000]}
    )
    cache = EmbeddingCache(tmp_path / "cache")
    with pytest.raises(DataError, match=r"item 'q'.*\(reference 'reference': .*ref.wav\).*the stimulus is silent"):
        encode_items([Item(id="q", audio=silent, audios={"reference": ref})], spec, cache, progress=False, workers=0)
    with pytest.raises(DataError, match=r"the reference is silent"):
        encode_items([Item(id="r", audio=ref, audios={"reference": silent})], spec, cache, progress=False, workers=0)
    short = write(tmp_path / "short.wav", speech(6)[: SR // 5])
    with pytest.raises(DataError, match=r"expected at least 0.5 s of overlap .* got 0.200 s"):
        encode_items([Item(id="s", audio=short, audios={"reference": ref})], spec, cache, progress=False, workers=0)
    with pytest.raises(DataError, match=r"item 't' has no audio field 'reference' \(it has: none\)"):
        encode_items([Item(id="t", audio=ref)], spec, cache, progress=False, workers=0)
    skipped = encode_items(
        [Item(id="q", audio=silent, audios={"reference": ref})], spec, cache, progress=False, workers=0, on_error="skip"
    )
    assert "silent" in skipped.skipped["q"]


def test_too_little_speech_for_stoi_and_pesq_refusals_are_data_errors():
    ref = np.zeros(SR)
    ref[1000:1400] = np.sin(np.arange(400) / 3)  # 25 ms of sound in a second of silence
    with pytest.raises(DataError, match=r"too little speech for STOI"):
        build(sample_rate=SR, measures=["stoi"], align="none", min_seconds=0.1).measure(ref, ref)
    with pytest.raises(DataError, match=r"PESQ refused the pair"):
        build(sample_rate=SR, measures=["pesq"], align="none").measure(ref[:8000] + 1e-3, ref[:8000] + 1e-3)


@pytest.mark.parametrize(
    "params, match",
    [
        (
            {"measures": ["stoi", "visqol"]},
            r"measures: expected distinct names among stoi, estoi, .*got \['stoi', 'visqol'\]",
        ),
        (
            {"sample_rate": 16000, "bands_hz": [0, 4000, 24000]},
            r"the edge 24000 Hz lies above the Nyquist frequency 8000 Hz of sample_rate 16000",
        ),
        ({"bands_hz": [0, 4000, 4000]}, r"bands_hz: expected >= 2 increasing edges"),
        ({"bands_hz": [0, 10, 20, 30], "sample_rate": 16000}, r"band\(s\) 10-20, 20-30 Hz hold no bin"),
        ({"align": "phase"}, r"align: expected one of envelope, waveform, none, got 'phase'"),
        ({"n_mfcc": 40}, r"expected 1 <= n_mfcc < n_mels, got n_mfcc=40, n_mels=40"),
    ],
)
def test_bad_params_are_config_errors(params, match):
    with pytest.raises(ConfigError, match=match):
        build(**params)


def test_the_reference_param_must_name_an_audio_field_other_than_the_input(tmp_path):
    from scorecast.inference.predictor import InputSpec

    item = Item(id="x", audio=write(tmp_path / "x.wav", speech(7)), audios={"reference": str(tmp_path / "x.wav")})
    cache = EmbeddingCache(tmp_path / "cache")
    with pytest.raises(ConfigError, match=r"missing a required argument: 'reference'"):
        encode_items([item], EncoderSpec(name="fullref", input="audio"), cache, progress=False)
    odd = EncoderSpec(name="fullref", input="audio", params={"reference": "ref erence"})
    with pytest.raises(
        ConfigError, match=r"param 'reference' must name the reference's audio field .*got 'ref erence'"
    ):
        encode_items([item], odd, cache, progress=False)
    same = EncoderSpec(name="fullref", input="audio.reference", params={"reference": "reference"})
    with pytest.raises(ConfigError, match=r"other than its reference 'audio.reference', got input 'audio.reference'"):
        encode_items([item], same, cache, progress=False)
    spec = EncoderSpec(name="fullref", input="audio", params={"reference": "reference"})
    assert InputSpec.from_specs([spec]).audios == ("reference",)  # a predictor asks new items for it
