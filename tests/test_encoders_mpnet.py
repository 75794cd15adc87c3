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
