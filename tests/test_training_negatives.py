"""Synthetic negatives: one feature swapped for another item's (other group where possible), low score."""

from __future__ import annotations

import numpy as np
import pytest

from scorecast.config import Negatives, TargetSpec
from scorecast.data.features import FeatureSet
from scorecast.errors import ConfigError
from scorecast.training.negatives import make_negatives

TARGETS = [TargetSpec(name="score", low=0, high=10, step=1)]


def _features(n=20):
    rng = np.random.default_rng(0)
    ids = [f"i{k}" for k in range(n)]
    text = rng.normal(size=(n, 5)).astype(np.float32)
    metric = np.arange(n, dtype=np.float32)[:, None].repeat(3, axis=1)  # row k holds k: easy to trace
    seqs = [np.full((k % 3 + 1, 3), k, dtype=np.float32) for k in range(n)]
    return FeatureSet(ids, {"text": text, "metric": metric}, {"metric": seqs})


def test_negatives_swap_last_feature_and_score_low():
    fs = _features()
    groups = [f"g{k % 4}" for k in range(20)]
    neg = make_negatives(fs, Negatives(ratio=0.5), TARGETS, groups=groups, rng=np.random.default_rng(1))
    assert len(neg.features) == 10 and neg.targets.shape == (10, 1)
    np.testing.assert_array_equal(neg.targets, 0.0)  # the target's low end
    for k, (src, partner) in enumerate(zip(neg.source, neg.partner)):
        assert partner != src and groups[partner] != groups[src]
        np.testing.assert_array_equal(neg.features.pooled["text"][k], fs.pooled["text"][src])  # kept
        np.testing.assert_array_equal(neg.features.pooled["metric"][k], fs.pooled["metric"][partner])  # swapped
        np.testing.assert_array_equal(neg.features.sequences["metric"][k], fs.sequences["metric"][partner])
        assert neg.features.ids[k] == f"{fs.ids[src]}~neg{k}"


def test_negatives_named_feature_and_score():
    fs = _features()
    neg = make_negatives(fs, Negatives(ratio=0.25, swap="text", score=2.5), TARGETS, rng=np.random.default_rng(0))
    assert len(neg.features) == 5
    np.testing.assert_array_equal(neg.targets, 2.5)
    np.testing.assert_array_equal(neg.features.pooled["metric"], fs.pooled["metric"][neg.source])
    np.testing.assert_array_equal(neg.features.pooled["text"], fs.pooled["text"][neg.partner])


def test_negatives_same_group_only_falls_back_to_other_items():
    fs = _features(6)
    neg = make_negatives(fs, Negatives(ratio=1.0), TARGETS, groups=["g"] * 6, rng=np.random.default_rng(0))
    assert all(p != s for s, p in zip(neg.source, neg.partner))


def test_negatives_off_and_errors():
    fs = _features()
    assert make_negatives(fs, Negatives(ratio=0.0), TARGETS) is None
    with pytest.raises(ConfigError, match="expected one of the features"):
        make_negatives(fs, Negatives(ratio=0.5, swap="nope"), TARGETS)
    single = FeatureSet(fs.ids, {"text": fs.pooled["text"]})
    with pytest.raises(ConfigError, match="at least two features"):
        make_negatives(single, Negatives(ratio=0.5), TARGETS)
