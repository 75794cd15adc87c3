"""The ``speaker`` encoder (Resemblyzer's GE2E d-vector, weights in the resemblyzer wheel) against the
package's own API, through the pipeline and its cache on named audio fields, on bad input, and with
weights whose sha256 differs."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
import soundfile as sf

from scorecast.cache.store import EmbeddingCache
from scorecast.config import EncoderSpec
from scorecast.data.items import Item
from scorecast.demo.synth import make_voices, synth_speech
from scorecast.encoders import ENCODERS, speaker
from scorecast.encoders.model_store import RESEMBLYZER_SHA256, PackagedModel, Part
from scorecast.encoders.pipeline import encode_items
from scorecast.errors import ConfigError, DataError

SR = 16000


@pytest.fixture(scope="module")
def waves() -> dict[str, np.ndarray]:
    a, b = make_voices(2, seed=3)
    return {
        "a1": synth_speech(a, duration_s=3.0, seed=1),
        "a2": synth_speech(a, duration_s=3.0, seed=2),
        "b1": synth_speech(b, duration_s=3.0, seed=1),
        "short": synth_speech(b, duration_s=0.8, seed=4),  # one zero-padded 1.6 s partial
    }


@pytest.fixture(scope="module")
def encoder():
    return ENCODERS.build("speaker")


def package_embedding(encoder, wav, sr=SR):
    """What resemblyzer's README does: preprocess_wav, then VoiceEncoder.embed_utterance."""
    rz = speaker.import_resemblyzer()
    return encoder.model.embed_utterance(rz.preprocess_wav(wav, source_sr=sr))


def test_matches_the_package_api_and_tells_voices_apart(encoder, waves):
    out = encoder.encode_batch(list(waves.values()))
    vecs = np.stack([o.pooled for o in out])
    assert vecs.shape == (4, 256) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    for vec, wav in zip(vecs, waves.values()):
        np.testing.assert_allclose(vec, package_embedding(encoder, wav), atol=1e-4)
    a1, a2, b1 = vecs[:3]
    assert a1 @ a2 > a1 @ b1 + 0.02  # the same synthetic voice is closer than another one
    assert encoder.identity()["package"] == "resemblyzer==0.1.4"
    assert encoder.identity()["weights"].endswith(RESEMBLYZER_SHA256[:16])


def test_the_weights_load_completely(encoder):
    import torch

    # VoiceEncoder loads with strict=False; every parameter must come from the checkpoint, which also
    # holds the two scalars of GE2E's training loss
    state = torch.load(speaker.WEIGHTS.folder() / "pretrained.pt", map_location="cpu")["model_state"]
    own = encoder.model.state_dict()
    assert set(state) - set(own) == {"similarity_weight", "similarity_bias"}
    for name, value in own.items():
        torch.testing.assert_close(value, state[name])


def test_named_audio_fields_through_the_cache_and_resampled_files(encoder, waves, tmp_path):
    import soxr

    files = {}
    for name, wav in waves.items():
        files[name] = str(tmp_path / f"{name}.wav")
        sf.write(files[name], wav, SR)
    files["a1_22k"] = str(tmp_path / "a1_22k.wav")  # the pipeline resamples it to 16 kHz
    sf.write(files["a1_22k"], soxr.resample(waves["a1"], SR, 22050, quality="HQ"), 22050)
    pairs = [("a2", "a1"), ("b1", "a1"), ("short", "a1_22k")]
    items = [Item(id=f"p{i}", audios={"generated": files[g], "reference": files[r]}) for i, (g, r) in enumerate(pairs)]
    cache = EmbeddingCache(tmp_path / "cache")
    for side, names in (("generated", [g for g, _ in pairs]), ("reference", [r for _, r in pairs])):
        spec = EncoderSpec(name="speaker", input=f"audio.{side}")
        first = encode_items(items, spec, cache, progress=False)
        again = encode_items(items, spec, cache, progress=False)
        assert first.encoded == len(set(names)) and again.encoded == 0 and again.cached == 3
        np.testing.assert_array_equal(first.pooled, again.pooled)
        # the package's own loading (librosa, resampled with soxr_hq) gives the same vectors
        expected = [encoder.model.embed_utterance(speaker.import_resemblyzer().preprocess_wav(files[n])) for n in names]
        np.testing.assert_allclose(first.pooled, np.stack(expected), atol=1e-4)


@pytest.mark.filterwarnings("ignore:speaker. the VAD found no speech")  # the constant clip before the short one
def test_silence_and_too_short_audio_are_refused_naming_the_file(encoder, tmp_path):
    with pytest.raises(DataError, match=r"input 0 is all zeros \(digital silence"):
        encoder.encode_batch([np.zeros(SR, np.float32)])
    with pytest.raises(DataError, match=r"input 1 is too short: expected at least 480 samples .*, got 200"):
        encoder.encode_batch([np.ones(SR, np.float32) * 0.1, np.ones(200, np.float32) * 0.1])
    with pytest.raises(DataError, match=r"expected a non-empty mono waveform for input 0, got shape \(2, 800\)"):
        encoder.encode_batch([np.ones((2, 800), np.float32)])
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(SR, np.float32), SR)
    item = Item(id="x", audios={"generated": str(silent), "reference": str(silent)})
    spec = EncoderSpec(name="speaker", input="audio.generated")
    with pytest.raises(DataError, match=r"file .*silent\.wav, field 'audio\.generated': item 'x': speaker: input 0"):
        encode_items([item], spec, EmbeddingCache(tmp_path / "cache"), progress=False)


def test_no_speech_found_by_the_vad_is_embedded_untrimmed_or_refused(encoder):
    hum = (1e-3 * np.sin(2 * np.pi * 50 * np.arange(SR) / SR)).astype(np.float32)  # no voice for webrtcvad
    rz = speaker.import_resemblyzer()
    assert rz.audio.trim_long_silences(rz.audio.normalize_volume(hum, -30, increase_only=True)).size == 0
    with pytest.warns(UserWarning, match=r"the VAD found no speech in input 0 \(1.00 s\); embedding it untrimmed"):
        out = encoder.encode_batch([hum])[0].pooled
    expected = encoder.model.embed_utterance(rz.audio.normalize_volume(hum, -30, increase_only=True))
    np.testing.assert_allclose(out, expected, atol=1e-6)
    strict = ENCODERS.build("speaker", no_speech="error")
    with pytest.raises(DataError, match=r"speaker: the VAD found no speech in input 0 \(1.00 s\)"):
        strict.encode_batch([hum])
    untrimmed = ENCODERS.build("speaker", trim_silence=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing trimmed, nothing to warn about
        np.testing.assert_allclose(untrimmed.encode_batch([hum])[0].pooled, expected, atol=1e-6)


def test_weights_with_another_sha256_are_refused(monkeypatch, tmp_path, waves):
    tampered = tmp_path / "pretrained.pt"
    shutil.copyfile(speaker.WEIGHTS.folder() / "pretrained.pt", tampered)
    with tampered.open("r+b") as fh:
        fh.seek(-1, 2)
        last = fh.read(1)
        fh.seek(-1, 2)
        fh.write(bytes([last[0] ^ 0xFF]))
    fake = PackagedModel(
        name="resemblyzer-ge2e",
        install="pip install --no-deps resemblyzer==0.1.4",
        in_place=Part(str(tampered), RESEMBLYZER_SHA256),
        files_sha256={"pretrained.pt": RESEMBLYZER_SHA256},
    )
    monkeypatch.setattr(speaker, "WEIGHTS", fake)
    with pytest.raises(ConfigError, match=rf"pretrained\.pt: expected sha256 {RESEMBLYZER_SHA256}, got [0-9a-f]{{64}}"):
        ENCODERS.build("speaker").encode_batch([waves["a1"]])


def test_parameters_are_checked():
    with pytest.raises(ConfigError, match=r"rate: expected partial utterances per second in \[0.625, 100\], got 0.5"):
        ENCODERS.build("speaker", rate=0.5)
    with pytest.raises(ConfigError, match=r"min_coverage: expected a number in \(0, 1\], got 0"):
        ENCODERS.build("speaker", min_coverage=0)
    with pytest.raises(ConfigError, match="no_speech: expected one of untrimmed, error, got 'zeros'"):
        ENCODERS.build("speaker", no_speech="zeros")
