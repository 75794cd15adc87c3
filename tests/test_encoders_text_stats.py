"""``text-stats``: each statistic against a hand count, edge cases, and the encoder through the pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from scorecast.cache.store import EmbeddingCache
from scorecast.config import EncoderSpec
from scorecast.data.items import Item, ItemSet
from scorecast.encoders import ENCODERS
from scorecast.encoders.pipeline import build_features
from scorecast.encoders.text_stats import FEATURES, text_statistics
from scorecast.errors import DataError


def stats(text: str) -> dict[str, float]:
    return dict(zip(FEATURES, text_statistics(text).tolist()))


def test_each_statistic_matches_a_hand_count():
    # words: um i i think that's wonderful really (7); distinct 6; letters 2+1+1+5+6+9+6 = 30
    got = stats("Um, I I think that's wonderful. Really!")
    want = {
        "words": 7,
        "log_words": np.log1p(7),
        "unique": 6,
        "log_unique": np.log1p(6),
        "type_token": 6 / 7,
        "word_length": 30 / 7,
        "long_words": 1 / 7,
        "sentences": 2,
        "sentence_length": 3.5,
        "fillers": 1 / 7,
        "repeats": 1 / 7,
    }
    assert list(got) == list(FEATURES)
    for name, value in want.items():
        assert got[name] == pytest.approx(value, rel=1e-6), name


@pytest.mark.parametrize(
    "text, words, sentences",
    [
        ("", 0, 0),
        ("   ... 42 !!", 0, 0),  # digits and punctuation are not words
        ("no final stop here", 4, 1),  # a sentence without its full stop still counts
        ("Ça va très bien. Überall!", 5, 2),  # letters of any script
        ("don't stop-believing", 3, 1),  # inner apostrophes join, hyphens split
    ],
)
def test_words_and_sentences(text, words, sentences):
    got = stats(text)
    assert (got["words"], got["sentences"]) == (words, sentences)
    if words == 0:
        assert not np.any(text_statistics(text))  # all zero, no division by zero


def test_the_encoder_is_batch_invariant_and_checks_its_input():
    enc = ENCODERS.build("text-stats")
    texts = ["a b c.", "Hello there, hello there!", ""]
    batch = enc.encode_batch(texts)
    for text, encoded in zip(texts, batch):
        np.testing.assert_array_equal(encoded.pooled, enc.encode_batch([text])[0].pooled)
        assert encoded.pooled.dtype == np.float32 and encoded.sequence is None
    assert enc.identity()["features"] == list(FEATURES)
    with pytest.raises(DataError, match="text-stats: expected a string for input 1 of the batch, got int"):
        enc.encode_batch(["fine", 3])


def test_through_the_pipeline_and_the_cache(tmp_path):
    items = ItemSet(
        [
            Item(id=f"i{k}", texts={"transcript": t})
            for k, t in enumerate(
                ["I like it. I like it a lot.", "Um um well", "Everything is extraordinarily complicated."]
            )
        ]
    )
    spec = EncoderSpec(name="text-stats", input="text.transcript", alias="stats")
    cache = EmbeddingCache(tmp_path / "cache")
    fs = build_features(items, [spec], cache, progress=False)
    assert fs.ids == items.ids and fs.pooled["stats"].shape == (3, len(FEATURES))
    np.testing.assert_array_equal(fs.pooled["stats"][1], text_statistics("Um um well"))
    again = build_features(items, [spec], cache, progress=False)  # from the cache: identical
    np.testing.assert_array_equal(again.pooled["stats"], fs.pooled["stats"])
