"""torch threads chosen for the work when ``training.threads`` is not set, and recorded in history."""

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
