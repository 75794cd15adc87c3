"""Training speed: torch threads chosen for the work when ``training.threads`` is not set (recorded in
history), batches built by indexing tensors already in memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ddp_script import base_recipe, make_dataset
from scorecast.config import load_recipe
from scorecast.training import trainer


def test_auto_threads_picks_one_for_small_heads_and_the_default_for_big_work():
    cfg = load_recipe(base_recipe()).training
    assert trainer.auto_threads(cfg, n_params=30_000, batch_size=32, has_sequences=False) == 1
    assert trainer.auto_threads(cfg, n_params=30_000, batch_size=32, has_sequences=True) is None
    assert trainer.auto_threads(cfg, n_params=2_000_000, batch_size=64, has_sequences=False) is None
    pinned = load_recipe(base_recipe(threads=3)).training
    assert trainer.auto_threads(pinned, n_params=30_000, batch_size=32, has_sequences=False) == 3


@pytest.mark.parametrize(("threads", "used"), [(None, 1), (2, 2)])
def test_fit_runs_on_the_chosen_threads_records_them_and_restores_torch(threads, used, tmp_path):
    items, fs = make_dataset(40)
    torch.set_num_threads(2)
    try:
        recipe = load_recipe(base_recipe(max_epochs=2, threads=threads))
        member = trainer.fit_member(
            recipe, fs, items.targets("score"), np.arange(30), np.arange(30, 40), log_dir=tmp_path
        )
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
    assert [row["threads"] for row in member.history] == [used] * len(member.history) and member.history


def test_a_batch_built_by_indexing_equals_the_per_item_collate():
    from torch.utils.data import DataLoader

    from scorecast.data.features import FeatureSet
    from scorecast.models.datasets import ScoreDataset, collate

    rng = np.random.default_rng(0)
    fs = FeatureSet([f"i{i}" for i in range(10)], {"a": rng.normal(size=(10, 4)), "b": rng.normal(size=(10, 3))})
    ds = ScoreDataset(fs, rng.normal(size=(10, 2)), rng.uniform(size=10), rng.uniform(size=(10, 2, 5)))
    (batch,) = list(DataLoader(ds, batch_size=10, shuffle=False, collate_fn=collate))
    reference = collate([ds[i] for i in range(10)])
    assert batch["sequences"] is None and batch["masks"] is None
    for key in ("index", "target", "weight", "target_dist"):
        assert torch.equal(batch[key], reference[key]), key
    for name in ("a", "b"):
        assert torch.equal(batch["pooled"][name], reference["pooled"][name])
    with_seq = ScoreDataset(FeatureSet(["x", "y"], {"a": np.zeros((2, 2))}, {"a": [np.ones((3, 2)), np.ones((1, 2))]}))
    (padded,) = list(DataLoader(with_seq, batch_size=2, collate_fn=collate))
    assert padded["sequences"]["a"].shape == (2, 3, 2) and padded["masks"]["a"].sum().item() == 4
