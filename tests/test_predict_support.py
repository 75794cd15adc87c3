"""Shared builders for the predict / API / serve tests: toy encoders and small bundles trained in-test.

Bundles are trained once per test session (cached here by name) and reused read-only.

* ``text_bundle``: a toy text encoder on ``text.caption`` (registered below as ``toy-caption``), two
  targets ``MI`` (1-5) and ``TA`` (0-10), a heteroscedastic neural head, two seeds (so a std).
* ``audio_bundle``: the real ``egemaps`` encoder on audio, a ridge head, target ``score`` (1-5). It
  needs nothing registered in-test, so a ``scorecast serve`` subprocess can load it.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf

from scorecast.data.items import Item, ItemSet
from scorecast.encoders.base import ENCODERS, Encoded, Encoder

WORDS = "the a cat dog bird sat sang on under mat tree quickly slowly loud soft red blue green".split()
_BUILT: dict = {}

if "toy-caption" not in ENCODERS:

    @ENCODERS.register("toy-caption")
    class ToyTextEncoder(Encoder):
        """Bag of byte positions: a cheap deterministic text vector (dim ``dim``)."""

        modality = "text"

        def __init__(self, dim: int = 12) -> None:
            self.dim = int(dim)

        def identity(self) -> dict:
            return {"name": "toy-caption", "dim": self.dim, "version": 1}

        def encode_batch(self, inputs: list) -> list[Encoded]:
            out = []
            for text in inputs:
                v = np.zeros(self.dim, np.float32)
                for i, ch in enumerate(text.encode()):
                    v[(ch * 7 + i) % self.dim] += 1.0
                v[0] = len(text) / 8.0
                out.append(Encoded(v / max(1.0, float(np.linalg.norm(v)))))
            return out


def sentence(rng: np.random.Generator) -> str:
    return " ".join(rng.choice(WORDS, size=int(rng.integers(2, 9))))


def text_items(n: int = 40, seed: int = 0) -> ItemSet:
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        text = sentence(rng)
        mi = 1.0 + 4.0 * (len(text) % 17) / 16.0
        ta = float(np.clip(10.0 * text.count("a") / max(1, len(text.split())), 0, 10))
        items.append(Item(id=f"t{i:03d}", texts={"caption": text}, targets={"MI": mi, "TA": ta}))
    return ItemSet(items, target_names=["MI", "TA"])


TEXT_RECIPE = {
    "name": "toy-caption",
    "targets": [{"name": "MI", "low": 1, "high": 5, "step": 0.5}, {"name": "TA", "low": 0, "high": 10, "step": 1}],
    "encoders": [{"name": "toy-caption", "input": "text.caption"}],
    "model": {"head": {"name": "heteroscedastic"}},
    "losses": [{"name": "gaussian-nll"}],
    "training": {"max_epochs": 3, "batch_size": 8, "early_stopping": None, "val_fraction": 0.0},
    "cv": {"seeds": [0, 1], "ensemble": "mean"},
}


def tone(seconds: float, freq: float, sr: int = 16000, noise: float = 0.02, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(seed)
    wave = 0.3 * np.sin(2 * np.pi * freq * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t)) + noise * rng.standard_normal(
        t.size
    )
    return wave.astype(np.float32)


def wav_bytes(wave: np.ndarray, sr: int = 16000, fmt: str = "WAV") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wave, sr, format=fmt)
    return buf.getvalue()


def audio_items(folder: Path, n: int = 12, seconds: float = 1.0) -> ItemSet:
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for i in range(n):
        noise = 0.01 + 0.04 * i
        path = folder / f"a{i:02d}.wav"
        sf.write(path, tone(seconds, 150 + 25 * i, noise=noise, seed=i), 16000)
        items.append(Item(id=path.name, audio=str(path), targets={"score": float(np.clip(5 - 8 * noise, 1, 5))}))
    return ItemSet(items, target_names=["score"])


AUDIO_RECIPE = {
    "name": "toy-audio",
    "targets": [{"name": "score", "low": 1, "high": 5}],
    "encoders": [{"name": "egemaps", "input": "audio"}],
    "model": {"head": {"name": "ridge", "params": {"alpha": 10.0}}},
    "training": {"early_stopping": None, "val_fraction": 0.0},
    "cv": {"seeds": [0]},
}


def train_scorer(name: str, recipe: dict, items: ItemSet, root: Path):
    """Train ``recipe`` on ``items`` once per session through the Python API; returns the fitted Scorer
    (its bundle folder is ``scorer.bundle_.path``). Callers must not modify it."""
    if name in _BUILT and (Path(_BUILT[name].bundle_.path) / "scorecast.json").is_file():
        return _BUILT[name]
    from scorecast.api import Scorer

    _BUILT[name] = Scorer(recipe, cache_dir=root / "cache").fit(items, out_dir=root / f"run-{name}")
    return _BUILT[name]


def text_scorer(tmp_path_factory):
    return train_scorer("text", TEXT_RECIPE, text_items(), tmp_path_factory.mktemp("text-bundle"))


def text_bundle(tmp_path_factory) -> Path:
    return Path(text_scorer(tmp_path_factory).bundle_.path)


def audio_bundle(tmp_path_factory) -> Path:
    if "audio" not in _BUILT:
        root = tmp_path_factory.mktemp("audio-bundle")
        train_scorer("audio", AUDIO_RECIPE, audio_items(root / "clips"), root)
    return Path(_BUILT["audio"].bundle_.path)


def test_toy_text_encoder_is_deterministic_and_batch_independent():
    enc = ENCODERS.build("toy-caption")
    alone = [enc.encode_batch([t])[0].pooled for t in ["a cat", "the dog sat"]]
    together = [e.pooled for e in enc.encode_batch(["a cat", "the dog sat"])]
    np.testing.assert_array_equal(np.stack(alone), np.stack(together))
    assert not np.allclose(alone[0], alone[1])
