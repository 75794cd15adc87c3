"""hf-audio, hf-text and sentence encoders on tiny random models saved to folders and loaded
through the same code path as a user's local checkpoint (HF_HUB_OFFLINE=1 via conftest)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import tiny_models  # noqa: E402
from scorecast.encoders import ENCODERS  # noqa: E402
from scorecast.errors import ConfigError, DataError  # noqa: E402

ATOL = 1e-4


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    return {
        "wavlm": tiny_models.make_tiny_wavlm(root / "wavlm"),
        "wavlm_masked": tiny_models.make_tiny_wavlm(root / "wavlm_masked", attention_mask=True),
        "whisper": tiny_models.make_tiny_whisper(root / "whisper"),
        "bert": tiny_models.make_tiny_bert(root / "bert", max_position=64),
        "st": tiny_models.make_tiny_sentence_transformer(root / "st", max_seq_length=16),
    }


def waves(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(24000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return [tone[:16000], (0.1 * rng.standard_normal(9000)).astype(np.float32), tone + 0.01, tone[:5000]]


def assert_same(a, b) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.pooled, y.pooled, atol=ATOL)
        assert x.sequence.shape == y.sequence.shape
        np.testing.assert_allclose(x.sequence, y.sequence, atol=ATOL)


# ------------------------------------------------------------------------------------ hf-audio


@pytest.mark.parametrize("which", ["wavlm", "wavlm_masked", "whisper"])
def test_hf_audio_shapes_and_batched_equals_alone(models, which):
    enc = ENCODERS.build("hf-audio", model=str(models[which]), layer=1)
    xs = waves()
    batched = enc.encode_batch(xs)
    alone = [enc.encode_batch([x])[0] for x in xs]
    assert_same(batched, alone)
    for x, out in zip(xs, batched):
        assert out.pooled.shape == (32,) and out.pooled.dtype == np.float32
        assert np.isfinite(out.pooled).all() and np.isfinite(out.sequence).all()
        # frames: tiny WavLM's convs stride 5*4*4 = 80 samples; Whisper 2 mel hops = 320 (padding cut off)
        hop = 320 if which == "whisper" else 80
        assert abs(out.sequence.shape[0] - len(x) / hop) <= 2
    # the model given a batch with padding really used a mask (the masked model batches at all)
    if which == "wavlm_masked":
        assert enc.backend.can_batch
    if which == "wavlm":
        assert not enc.backend.can_batch


def test_hf_audio_pooling_matches_the_frames(models):
    xs = waves()[:2]
    mean = ENCODERS.build("hf-audio", model=str(models["wavlm"]), pooling="mean").encode_batch(xs)
    both = ENCODERS.build("hf-audio", model=str(models["wavlm"]), pooling="mean+std").encode_batch(xs)
    top = ENCODERS.build("hf-audio", model=str(models["wavlm"]), pooling="max").encode_batch(xs)
    for m, b, t in zip(mean, both, top):
        np.testing.assert_allclose(m.pooled, m.sequence.mean(0), atol=1e-5)
        np.testing.assert_allclose(b.pooled, np.concatenate([m.sequence.mean(0), m.sequence.std(0)]), atol=1e-5)
        np.testing.assert_allclose(t.pooled, m.sequence.max(0), atol=1e-5)


def test_hf_audio_layer_mean_is_the_average_of_layers(models):
    x = waves()[:1]
    per_layer = [
        ENCODERS.build("hf-audio", model=str(models["wavlm"]), layer=i).encode_batch(x)[0].pooled for i in range(3)
    ]
    mean = ENCODERS.build("hf-audio", model=str(models["wavlm"]), layer="mean").encode_batch(x)[0].pooled
    listed = ENCODERS.build("hf-audio", model=str(models["wavlm"]), layer=[0, 2]).encode_batch(x)[0].pooled
    np.testing.assert_allclose(mean, np.mean(per_layer, axis=0), atol=1e-5)
    np.testing.assert_allclose(listed, (per_layer[0] + per_layer[2]) / 2, atol=1e-5)
    assert not np.allclose(per_layer[1], per_layer[2])


def test_hf_audio_identity_stable_and_sensitive(models):
    path = str(models["wavlm"])
    a = ENCODERS.build("hf-audio", model=path, layer=-1)
    b = ENCODERS.build("hf-audio", model=path, layer=2)  # -1 is layer 2 of 2: the same encoder
    assert a.identity() == b.identity() and a.identity_hash == b.identity_hash
    assert a.identity()["fingerprint"] and a.identity()["sample_rate"] == 16000
    hashes = {
        a.identity_hash,
        ENCODERS.build("hf-audio", model=path, layer=1).identity_hash,
        ENCODERS.build("hf-audio", model=path, pooling="max").identity_hash,
        ENCODERS.build("hf-audio", model=path, window_s=1.0).identity_hash,
        ENCODERS.build("hf-audio", model=str(models["wavlm_masked"])).identity_hash,
    }
    assert len(hashes) == 5


def test_hf_audio_long_audio_windows(models):
    """Windows are encoded alone; frames concatenated; mean = window means weighted by length."""
    enc = ENCODERS.build("hf-audio", model=str(models["wavlm"]), window_s=1.0)
    x = np.concatenate(waves())[:40000]  # 2.5 s -> windows [0,1), [1,2), [2,2.5)
    out = enc.encode_batch([x])[0]
    parts = [enc.encode_batch([x[a:b]])[0] for a, b in [(0, 16000), (16000, 32000), (32000, 40000)]]
    np.testing.assert_allclose(out.sequence, np.concatenate([p.sequence for p in parts]), atol=ATOL)
    expected = (parts[0].pooled * 16000 + parts[1].pooled * 16000 + parts[2].pooled * 8000) / 40000
    np.testing.assert_allclose(out.pooled, expected, atol=ATOL)
    # a tail shorter than half a window joins the window before it
    y = x[:36000]  # [0,1), [1, 2.25)
    merged = enc.encode_batch([y])[0]
    np.testing.assert_allclose(merged.sequence[-1], enc.encode_batch([y[16000:]])[0].sequence[-1], atol=ATOL)


def test_hf_audio_max_frames_and_errors(models, tmp_path):
    enc = ENCODERS.build("hf-audio", model=str(models["wavlm"]), max_frames=7)
    out = enc.encode_batch(waves()[:1])[0]
    assert out.sequence.shape == (7, 32)
    with pytest.raises(ConfigError, match="pooling: expected one of"):
        ENCODERS.build("hf-audio", model=str(models["wavlm"]), pooling="attentive")
    with pytest.raises(ConfigError, match=r"layer: expected an index in \[-3, 2\]"):
        ENCODERS.build("hf-audio", model=str(models["wavlm"]), layer=5)
    with pytest.raises(ConfigError, match="folder not found"):
        ENCODERS.build("hf-audio", model=str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="not in the local Hugging Face cache"):
        ENCODERS.build("hf-audio", model="nobody-here/not-a-model-xyz")
    with pytest.raises(ConfigError, match="at most 30.0 s per window"):
        ENCODERS.build("hf-audio", model=str(models["whisper"]), window_s=40)
    with pytest.raises(DataError, match="input 0 has zero samples"):
        enc.encode_batch([np.zeros(0, np.float32)])


def test_hf_audio_clap_projection_in_windows(tmp_path):
    enc = ENCODERS.build("hf-audio", model=str(tiny_models.make_tiny_clap(tmp_path / "clap")))
    assert enc.sample_rate == 48000 and enc.window_s == 10.0 and enc.identity()["layer"] == "projection"
    rng = np.random.default_rng(0)
    xs = [(0.1 * rng.standard_normal(48000 * n)).astype(np.float32) for n in (3, 12)]
    batched = enc.encode_batch(xs)
    assert_same(batched, [enc.encode_batch([x])[0] for x in xs])
    # 12 s: windows [0, 10) and [10, 12) (the 2 s tail is not merged: CLAP takes at most 10 s)
    assert batched[1].sequence.shape == (2, 16)
    parts = [enc.encode_batch([xs[1][:480000]])[0].pooled, enc.encode_batch([xs[1][480000:]])[0].pooled]
    np.testing.assert_allclose(batched[1].pooled, (parts[0] * 10 + parts[1] * 2) / 12, atol=ATOL)
    with pytest.raises(ConfigError, match="gives one projected vector"):
        ENCODERS.build("hf-audio", model=str(tmp_path / "clap"), layer=1)


# ------------------------------------------------------------------------------------- hf-text

TEXTS = [
    "the quick brown fox",
    "good grammar and clean speech",
    " ".join(["the quick brown fox jumps over the lazy dog"] * 5),
    "",
]


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_hf_text_batched_equals_alone(models, pooling):
    enc = ENCODERS.build("hf-text", model=str(models["bert"]), pooling=pooling, max_length=16, stride=6)
    batched = enc.encode_batch(TEXTS)
    alone = [enc.encode_batch([t])[0] for t in TEXTS]
    assert_same(batched, alone)
    n_tokens = len(enc.tokenizer(TEXTS[2], add_special_tokens=False)["input_ids"])
    assert batched[2].sequence.shape == (n_tokens, 32)  # every content token once
    assert all(o.pooled.shape == (32,) and np.isfinite(o.pooled).all() for o in batched)


def test_hf_text_long_text_is_length_weighted_mean_of_windows(models):
    """Reference: windows cut by hand, each run through transformers directly."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    enc = ENCODERS.build("hf-text", model=str(models["bert"]), pooling="mean", max_length=16, stride=6)
    tok = AutoTokenizer.from_pretrained(models["bert"])
    model = AutoModel.from_pretrained(models["bert"]).eval()
    ids = tok(TEXTS[2], add_special_tokens=False)["input_ids"]
    assert len(ids) > 14
    spans, start = [], 0
    while True:  # 14 content tokens per window, one every 6 tokens, until one reaches the end
        spans.append((start, min(start + 14, len(ids))))
        if start + 14 >= len(ids):
            break
        start += 6
    vecs, weights = [], []
    for a, b in spans:
        window = [tok.cls_token_id] + ids[a:b] + [tok.sep_token_id]
        with torch.no_grad():
            h = model(input_ids=torch.tensor([window])).last_hidden_state[0]
        vecs.append(h.mean(0).numpy())
        weights.append(b - a)
    expected = np.average(np.stack(vecs), axis=0, weights=weights)
    np.testing.assert_allclose(enc.encode_batch([TEXTS[2]])[0].pooled, expected, atol=1e-5)
    # a text that fits one window is just the model's output
    short = [tok.cls_token_id] + tok(TEXTS[0], add_special_tokens=False)["input_ids"] + [tok.sep_token_id]
    with torch.no_grad():
        cls = model(input_ids=torch.tensor([short])).last_hidden_state[0, 0].numpy()
    cls_enc = ENCODERS.build("hf-text", model=str(models["bert"]), pooling="cls", max_length=16, stride=6)
    np.testing.assert_allclose(cls_enc.encode_batch([TEXTS[0]])[0].pooled, cls, atol=1e-5)


def test_hf_text_defaults_identity_and_errors(models):
    enc = ENCODERS.build("hf-text", model=str(models["bert"]))
    assert enc.max_length == 64 and enc.stride == 32  # capped at the model's 64 positions
    other = ENCODERS.build("hf-text", model=str(models["bert"]), pooling="mean")
    assert enc.identity() == ENCODERS.build("hf-text", model=str(models["bert"])).identity()
    assert enc.identity_hash != other.identity_hash
    assert enc.identity_hash != ENCODERS.build("hf-text", model=str(models["bert"]), layer=1).identity_hash
    assert len(enc.tokenizer) > 100  # loaded with AutoTokenizer from the folder: the real vocabulary
    with pytest.raises(ConfigError, match="takes at most 64 tokens, got 512"):
        ENCODERS.build("hf-text", model=str(models["bert"]), max_length=512)
    with pytest.raises(DataError, match="expected a string for input 1"):
        enc.encode_batch(["fine", 3])
    with pytest.raises(ConfigError, match="stride: expected <= 14"):
        ENCODERS.build("hf-text", model=str(models["bert"]), max_length=16, stride=15).encode_batch(["x"])


# ------------------------------------------------------------------------------------ sentence


def test_sentence_tiny_matches_sentence_transformers_and_windows(models):
    from sentence_transformers import SentenceTransformer

    enc = ENCODERS.build("sentence", model=str(models["st"]))
    st = SentenceTransformer(str(models["st"]), device="cpu")
    short = TEXTS[:2]
    np.testing.assert_allclose(np.stack([o.pooled for o in enc.encode_batch(short)]), st.encode(short), atol=1e-5)
    batched = enc.encode_batch(TEXTS)
    assert_same(batched, [enc.encode_batch([t])[0] for t in TEXTS])
    long = batched[2].pooled
    assert np.isclose(np.linalg.norm(long), 1.0, atol=1e-5)
    assert not np.allclose(long, st.encode([TEXTS[2]])[0], atol=1e-3)  # not truncated: windows
    raw = ENCODERS.build("sentence", model=str(models["st"]), normalize=False)
    assert raw.identity_hash != enc.identity_hash
    with pytest.raises(ConfigError, match="no modules.json"):
        ENCODERS.build("sentence", model=str(models["bert"]))
