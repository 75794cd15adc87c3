"""Training data: standardisation statistics, padding with masks, rating histograms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scorecast.config import TargetSpec
from scorecast.data.features import FeatureSet
from scorecast.data.items import Item, ItemSet, Ratings
from scorecast.errors import DataError
from scorecast.models.datasets import FeatureScaler, ScoreDataset, collate, target_distributions


def _features():
    rng = np.random.default_rng(0)
    pooled = {"a": rng.normal(3.0, 2.0, size=(6, 4)).astype(np.float32)}
    seqs = {"a": [rng.normal(size=(k + 1, 4)).astype(np.float32) for k in range(6)]}
    return FeatureSet([f"i{k}" for k in range(6)], pooled, seqs)


def test_scaler_standardises_with_training_statistics_and_round_trips():
    fs = _features()
    scaler = FeatureScaler.fit(fs)
    out = scaler.transform(fs)
    np.testing.assert_allclose(out.pooled["a"].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(out.pooled["a"].std(0), 1, atol=1e-4)
    frames = np.concatenate(out.sequences["a"])
    np.testing.assert_allclose(frames.mean(0), 0, atol=1e-5)
    again = FeatureScaler.from_tensors(scaler.to_tensors()).transform(fs)
    np.testing.assert_array_equal(again.pooled["a"], out.pooled["a"])
    bad = FeatureSet(fs.ids, {"a": np.zeros((6, 3), np.float32)})
    with pytest.raises(DataError, match="expected dimension 4"):
        scaler.transform(bad)


def test_collate_pads_sequences_and_masks():
    fs = _features()
    y = np.arange(6, dtype=float)[:, None]
    y[2, 0] = np.nan
    ds = ScoreDataset(fs, y, weights=np.linspace(0.5, 1.5, 6))
    batch = collate([ds[i] for i in (0, 2, 5)])
    assert batch["pooled"]["a"].shape == (3, 4)
    assert batch["sequences"]["a"].shape == (3, 6, 4)
    assert batch["masks"]["a"].sum(1).tolist() == [1, 3, 6]
    assert torch.equal(batch["sequences"]["a"][1, :3], torch.from_numpy(fs.sequences["a"][2]))
    assert torch.all(batch["sequences"]["a"][0, 1:] == 0)
    assert torch.isnan(batch["target"][1, 0]) and batch["target"][2, 0] == 5
    assert batch["index"].tolist() == [0, 2, 5]
    assert batch["weight"].shape == (3,) and batch["target_dist"] is None


def test_dataset_checks_lengths():
    fs = _features()
    with pytest.raises(DataError, match="expected 6 target rows"):
        ScoreDataset(fs, np.zeros((5, 1)))


def test_target_distributions_from_ratings():
    t = TargetSpec(name="mos", low=1, high=5, step=1)
    u = TargetSpec(name="ta", low=1, high=3, step=1)
    items = [
        Item(
            id="x",
            targets={"mos": 2.0, "ta": 1.0},
            ratings={"mos": Ratings(np.array([1.0, 3.0, 3.0, 5.0])), "ta": Ratings(np.array([1.0]))},
        ),
        Item(
            id="y",
            targets={"mos": 4.0, "ta": 3.0},
            ratings={"mos": Ratings(np.array([4.0, 4.0])), "ta": Ratings(np.array([3.0, 2.0]))},
        ),
    ]
    dist = target_distributions(ItemSet(items), [t, u])
    assert dist.shape == (2, 2, 5)
    np.testing.assert_allclose(dist[0, 0], [0.25, 0, 0.5, 0, 0.25])
    np.testing.assert_allclose(dist[1, 1], [0, 0.5, 0.5, 0, 0])  # 'ta' has 3 levels; bins 4-5 stay 0
    items[1].ratings.pop("ta")
    dist = target_distributions(ItemSet(items), [t, u])
    assert np.isnan(dist[1, 1]).all() and np.isfinite(dist[0]).all()  # no ratings: the loss smooths the score
    for item in items:
        item.ratings.clear()
    assert target_distributions(ItemSet(items), [t, u]) is None
