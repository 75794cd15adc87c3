"""The ``sentence`` encoder's packaged all-mpnet-base-v2 (scorecast[models]) against
sentence-transformers' own ``encode`` on the same texts. Skips where the parts are not installed."""

from __future__ import annotations

import numpy as np
import pytest

from scorecast.encoders import ENCODERS
from scorecast.encoders.model_store import PACKAGED_MODELS

MPNET = PACKAGED_MODELS.get("all-mpnet-base-v2")
pytestmark = pytest.mark.skipif(
    not MPNET.installed(), reason=f"all-mpnet-base-v2 parts not installed ({MPNET.install})"
)


def test_packaged_mpnet_matches_sentence_transformers_encode():
    from sentence_transformers import SentenceTransformer

    texts = ["A man is playing a guitar.", "Someone plays an instrument.", "The stock market fell sharply today."]
    encoder = ENCODERS.build("sentence", model="all-mpnet-base-v2")
    got = np.stack([e.pooled for e in encoder.encode_batch(texts)])
    ref = SentenceTransformer(str(encoder.model_dir), device="cpu", local_files_only=True).encode(texts)
    assert got.shape == (3, 768)
    np.testing.assert_allclose(got, ref, atol=1e-4)
    assert encoder.identity()["model"] == "all-mpnet-base-v2"


@pytest.mark.parametrize("cache_frozen", [False, True])
def test_tuned_mpnet_starts_at_the_frozen_embedding(cache_frozen):
    """Fine-tuning starts exactly from the zero-shot embedding: mean pooling + normalisation as in
    the model's modules.json, on the same tokens (and through the precomputed frozen blocks' states)."""
    import torch

    from scorecast.adapt.common import FinetuneSettings
    from scorecast.adapt.tunable import TunableEncoder
    from scorecast.config import EncoderSpec

    texts = ["A plane is taking off.", "An air plane is taking off.", "A man is spreading shredded cheese on a pizza."]
    spec = EncoderSpec(name="sentence", input="text.s", params={"model": "all-mpnet-base-v2"})
    tuned = TunableEncoder(spec, FinetuneSettings(top_k=2, cache_frozen=cache_frozen)).eval()
    assert (tuned.pooling, tuned.normalize, tuned.trained) == ("mean", True, [10, 11])
    with torch.no_grad():
        pooled = tuned(tuned.prepare(tuned.precompute(texts) if cache_frozen else texts))[0].numpy()
    frozen = ENCODERS.build("sentence", model="all-mpnet-base-v2").encode_batch(texts)
    np.testing.assert_allclose(pooled, np.stack([e.pooled for e in frozen]), atol=1e-4)
