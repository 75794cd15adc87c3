"""eGeMAPS low-level-descriptor frames as the sequence (for temporal / cross-attention fusions)."""

from __future__ import annotations

import numpy as np

from scorecast.config import EncoderSpec
from scorecast.encoders.pipeline import build_encoder


def _tone(seconds: float, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(0)
    return (0.3 * np.sin(2 * np.pi * 180 * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def test_sequence_is_lld_frames_averaged_over_the_hop():
    enc = build_encoder(EncoderSpec(name="egemaps", sequence=True, params={"frame_hop_s": 0.1}))
    out = enc.encode_batch([_tone(3.0)])[0]
    assert out.pooled.shape == (88,)
    assert out.sequence is not None and out.sequence.shape[1] == 25
    assert 25 <= out.sequence.shape[0] <= 31  # ~10 ms frames, 10 per 100 ms hop
    assert np.isfinite(out.sequence).all()
    # the frames' mean loudness tracks the functionals' loudness mean (first LLD is loudness)
    names = enc.feature_names()
    loud = out.pooled[names.index("loudness_sma3_amean")]
    assert abs(out.sequence[:, 0].mean() - loud) < 0.15 * max(abs(loud), 1e-3)


def test_max_frames_caps_the_sequence_and_identity_records_it():
    capped = build_encoder(EncoderSpec(name="egemaps", sequence=True, params={"max_frames": 8}))
    assert capped.encode_batch([_tone(3.0)])[0].sequence.shape[0] == 8
    plain = build_encoder(EncoderSpec(name="egemaps"))
    assert plain.encode_batch([_tone(1.0)])[0].sequence is None
    assert plain.identity() != capped.identity() and "sequence" in capped.identity()
