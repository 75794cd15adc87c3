"""The pipeline's speed choices: one sort by length across the extraction, sequences cached only
for specs that ask for them, one shared encoder per configuration, defaults for batches and workers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import pipeline_toys
from pipeline_toys import register_toys, unregister_toys
from scorecast.cache.store import EmbeddingCache
from scorecast.config import EncoderSpec
from scorecast.data.items import Item
from scorecast.encoders import sharing
from scorecast.encoders.base import ENCODERS, Encoded, Encoder
from scorecast.encoders.pipeline import build_encoder, clear_shared_encoders, encode_items

BATCHES: list[list[str]] = []


class RecordingTextEncoder(Encoder):
    """Pooled = (length, first char code); remembers every batch it was handed."""

    modality = "text"

    def __init__(self, batch_size: int = 3) -> None:
        self.batch_size = batch_size

    def identity(self) -> dict[str, Any]:
        return {"name": "toy-recording"}

    def encode_batch(self, inputs: list[Any]) -> list[Encoded]:
        BATCHES.append(list(inputs))
        return [Encoded(np.array([len(t), ord(t[0])], np.float32), np.ones((len(t), 2), np.float32)) for t in inputs]


@pytest.fixture(autouse=True)
def toys():
    register_toys()
    ENCODERS.register("toy-recording")(RecordingTextEncoder)
    BATCHES.clear()
    clear_shared_encoders()
    yield
    clear_shared_encoders()
    ENCODERS._entries.pop("toy-recording", None)
    unregister_toys()


def text_items(texts: list[str]) -> list[Item]:
    return [Item(id=f"t{i}", texts={"t": t}) for i, t in enumerate(texts)]


def test_inputs_are_sorted_longest_first_across_the_whole_extraction(tmp_path):
    texts = ["bb", "a" * 9, "ccc", "d" * 7, "e", "f" * 5, "gggg", "h" * 8]
    spec = EncoderSpec(name="toy-recording", input="text.t")
    res = encode_items(text_items(texts), spec, EmbeddingCache(tmp_path / "c"), progress=False)
    assert [len(b) for b in BATCHES] == [3, 3, 2]  # the encoder's own batch_size (3) when none is given
    lengths = [len(t) for b in BATCHES for t in b]
    assert lengths == sorted(lengths, reverse=True) == [9, 8, 7, 5, 4, 3, 2, 1]
    assert res.ids == [f"t{i}" for i in range(8)]  # rows still in input order
    np.testing.assert_array_equal(res.pooled[:, 0], [len(t) for t in texts])
    BATCHES.clear()
    encode_items(text_items(texts), spec, EmbeddingCache(tmp_path / "d"), batch_size=8, progress=False)
    assert [len(b) for b in BATCHES] == [8]


def test_sequences_are_cached_only_for_specs_that_ask_for_them(tmp_path):
    cache = EmbeddingCache(tmp_path / "c")
    items = text_items(["one two", "three", "four five six"])
    pooled_only = EncoderSpec(name="toy-recording", input="text.t")
    first = encode_items(items, pooled_only, cache, progress=False)
    assert first.sequences is None
    for key in cache.iter_keys(first.identity_hash):
        assert cache.get(first.identity_hash, key, sequence=True).sequence is None  # pooled only on disk
    with_seq = EncoderSpec(name="toy-recording", input="text.t", sequence=True)
    second = encode_items(items, with_seq, cache, progress=False)
    assert (second.encoded, second.cached) == (3, 0)  # entries without a sequence do not serve this spec
    assert [s.shape for s in second.sequences] == [(7, 2), (5, 2), (13, 2)]
    np.testing.assert_array_equal(first.pooled, second.pooled)
    third = encode_items(items, with_seq, cache, progress=False)
    assert (third.encoded, third.cached) == (0, 3)
    again = encode_items(items, pooled_only, cache, progress=False)  # a sequence entry serves pooled specs
    assert (again.encoded, again.cached) == (0, 3)


def test_one_encoder_instance_per_configuration(tmp_path):
    s1 = EncoderSpec(name="toy-text", input="text.s1")
    s2 = EncoderSpec(name="toy-text", input="text.s2")
    other = EncoderSpec(name="toy-text", input="text.s1", params={"dim": 16})
    assert build_encoder(s1) is build_encoder(s2)
    assert build_encoder(other) is not build_encoder(s1) and build_encoder(other).dim == 16
    assert build_encoder(s1, shared=False) is not build_encoder(s1)
    before = pipeline_toys.CONSTRUCTED["toy-text"]
    items = [Item(id=str(i), texts={"s1": f"a {i}", "s2": f"b {i}"}) for i in range(4)]
    cache = EmbeddingCache(tmp_path / "c")
    encode_items(items, s1, cache, progress=False)
    encode_items(items, s2, cache, progress=False)
    assert pipeline_toys.CONSTRUCTED["toy-text"] == before  # both specs used the instance built above
    for dim in range(1, sharing.SHARED_ENCODERS_MAX + 3):
        build_encoder(EncoderSpec(name="toy-text", input="text.s1", params={"dim": dim}))
    assert sharing.shared_count() == sharing.SHARED_ENCODERS_MAX  # bounded: old configurations dropped


def test_default_workers_and_batch_size(monkeypatch):
    audio, text = ENCODERS.get("toy-audio"), ENCODERS.get("toy-text")
    monkeypatch.setattr(sharing, "usable_cores", lambda: 4)
    assert sharing.default_workers(audio, 10) == 4 and sharing.default_workers(audio, 3) == 3
    assert sharing.default_workers(audio, 1) == 0  # one clip: no pool to start
    assert sharing.default_workers(text, 10) == 0  # not parallel_safe
    monkeypatch.setattr(sharing, "usable_cores", lambda: 1)
    assert sharing.default_workers(audio, 10) == 0
    assert sharing.default_batch_size(RecordingTextEncoder, {}) == 3
    assert sharing.default_batch_size(RecordingTextEncoder, {"batch_size": 5}) == 5
    assert sharing.default_batch_size(text, {}) == 16  # no batch_size of its own


def test_per_clip_encoders_use_worker_processes_by_default(tmp_path, monkeypatch):
    import os

    monkeypatch.setattr(sharing, "usable_cores", lambda: 2)
    items = [
        Item(id=f"a{i}", audio=pipeline_toys.write_tone(tmp_path / f"a{i}.wav", 200 + 30 * i, seconds=0.1))
        for i in range(6)
    ]
    counter = tmp_path / "calls"
    spec = EncoderSpec(name="toy-audio", input="audio", params={"counter": str(counter)})
    res = encode_items(items, spec, EmbeddingCache(tmp_path / "c"), progress=False)
    assert res.encoded == 6 and os.getpid() not in pipeline_toys.pids(counter)
    inline = encode_items(items, spec, EmbeddingCache(tmp_path / "d"), workers=0, progress=False)
    assert pipeline_toys.pids(counter) & {os.getpid()}
    np.testing.assert_array_equal(res.pooled, inline.pooled)
