"""Early stopping counted in optimizer steps: patience raised to a minimum number of steps, and a
warm-up before any stop, so a small set's fold can recover from a bad first epoch."""

from __future__ import annotations

import numpy as np
import pytest

from ddp_script import base_recipe, make_dataset
from scorecast.config import load_recipe
from scorecast.errors import ConfigError
from scorecast.training.trainer import fit_member, stopping_schedule


def test_schedule_counts_patience_and_warmup_in_optimizer_steps():
    d = base_recipe(max_epochs=40)
    d["training"]["early_stopping"] = {
        "monitor": "val_lcc",
        "patience": 3,
        "min_patience_steps": 50,
        "warmup_steps": 100,
    }
    cfg = load_recipe(d).training
    small = stopping_schedule(cfg, batches_per_epoch=2)  # 80 pairs in batches of 64
    assert small == {"steps_per_epoch": 2, "patience_epochs": 25, "min_steps": 80}  # warm-up capped at 40 x 2 steps
    large = stopping_schedule(cfg, batches_per_epoch=90)
    assert large == {"steps_per_epoch": 90, "patience_epochs": 3, "min_steps": 100}
    cfg.accumulate_grad_batches = 4
    assert stopping_schedule(cfg, batches_per_epoch=90)["steps_per_epoch"] == 23


def test_a_small_fit_trains_through_the_warmup_whatever_the_patience(tmp_path):
    items, fs = make_dataset(40, seed=2)
    d = base_recipe(max_epochs=30, batch_size=16, lr=1e-4)
    d["training"]["early_stopping"] = {
        "monitor": "val_lcc",
        "patience": 1,
        "min_patience_steps": 10,
        "warmup_steps": 24,
    }
    recipe = load_recipe(d)
    y = items.targets("score")[:, None]
    member = fit_member(recipe, fs, y, np.arange(30), np.arange(30, 40), seed=0, log_dir=tmp_path)
    info = member.fit_info
    assert info["steps_per_epoch"] == 2 and info["patience_epochs"] == 5
    assert info["steps"] >= 24 and info["epochs"] >= 12


def test_negative_step_counts_are_refused():
    d = base_recipe()
    d["training"]["early_stopping"] = {"monitor": "val_lcc", "warmup_steps": -1}
    with pytest.raises(ConfigError, match="warmup_steps"):
        load_recipe(d)
