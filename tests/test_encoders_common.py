"""Encoder helpers: windows, layers, model resolution (local folder and the offline HF cache),
fingerprints, and that `import scorecast.encoders` registers everything while staying light."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from scorecast.encoders import ENCODERS
from scorecast.encoders._hf_common import (
    check_layer,
    dedup_token_sequence,
    model_fingerprint,
    pool_frames,
    resolve_model_dir,
    sample_windows,
    shrink_sequence,
    token_windows,
)
from scorecast.errors import ConfigError


def test_every_encoder_is_registered_and_the_import_is_light():
    assert set(ENCODERS.names()) >= {
        "hf-audio",
        "hf-text",
        "sentence",
        "egemaps",
        "compare",
        "dnsmos",
        "distillmos",
        "speaker",
        "music",
        "lookup",
        "asr",
        "text-stats",
    }
    heavy = ["torch", "transformers", "sentence_transformers", "opensmile", "essentia", "onnxruntime", "librosa"]
    code = f"import sys, scorecast.encoders; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_sample_windows():
    assert sample_windows(100, None, None) == [(0, 100)]
    assert sample_windows(100, 100, None) == [(0, 100)]
    assert sample_windows(250, 100, None) == [(0, 100), (100, 200), (200, 250)]
    assert sample_windows(240, 100, None) == [(0, 100), (100, 240)]  # a 40-sample tail joins the window before
    assert sample_windows(240, 100, None, max_len=100) == [(0, 100), (100, 200), (200, 240)]  # unless too long
    assert sample_windows(200, 100, 50) == [(0, 100), (50, 150), (100, 200)]


def test_token_windows_cover_every_token_and_dedup():
    for n, size, step in [(0, 5, 2), (5, 5, 2), (23, 6, 4), (30, 10, 10), (31, 10, 3)]:
        spans = token_windows(n, size, step)
        assert spans[0][0] == 0 and spans[-1][1] == n
        assert all(b - a <= size for a, b in spans)
        assert all(s2[0] <= s1[1] for s1, s2 in zip(spans, spans[1:]))  # no gap
        states = np.arange(n, dtype=np.float32)[:, None]
        parts = [(a, b, states[a:b]) for a, b in spans]
        if n:
            np.testing.assert_array_equal(dedup_token_sequence(parts), states)


def test_layers_pooling_and_shrinking():
    assert check_layer(-1, 12) == 12 and check_layer(0, 12) == 0 and check_layer("mean", 12) == "mean"
    assert check_layer([-1, 3, 3], 12) == [3, 12]
    with pytest.raises(ConfigError, match=r"layer: expected an index in \[-13, 12\] \(12 layers\), got 13"):
        check_layer(13, 12)
    with pytest.raises(ConfigError, match="expected an int, 'mean' or a list of ints, got 'last'"):
        check_layer("last", 12)
    seq = np.arange(12, dtype=np.float32).reshape(6, 2)
    np.testing.assert_array_equal(pool_frames(seq, "max"), [10, 11])
    with pytest.raises(ConfigError, match="pooling: expected one of mean, max, mean\\+std, got 'median'"):
        pool_frames(seq, "median")
    np.testing.assert_array_equal(shrink_sequence(seq, 3), [[1, 2], [5, 6], [9, 10]])
    assert shrink_sequence(seq, 10) is seq


def test_model_resolution_offline_cache_and_fingerprint(tmp_path, monkeypatch):
    import huggingface_hub.constants as hub_constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--someone--tiny-model"
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    (snap / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (snap / "model.safetensors").write_bytes(b"\0" * 100)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    resolved = resolve_model_dir("someone/tiny-model")
    assert resolved == snap.resolve()
    fp = model_fingerprint(resolved)
    assert fp["revision"] == commit
    (snap / "model.safetensors").write_bytes(b"\1" * 100)  # retrained weights: a new fingerprint
    assert model_fingerprint(resolved)["fingerprint"] != fp["fingerprint"]
    with pytest.raises(ConfigError, match="not in the local Hugging Face cache"):
        resolve_model_dir("someone/other-model")
    with pytest.raises(ConfigError, match="expected a folder holding a saved model, got a file"):
        resolve_model_dir(str(snap / "config.json"))
