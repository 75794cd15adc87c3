"""Generated training data for the training tests, and the DDP training script.

As a script (run in a subprocess by tests/test_training_ddp.py, never inside pytest's process, since
Lightning's ``ddp`` re-launches the command line)::

    python tests/ddp_script.py OUT.json --devices 2 --strategy ddp

trains one member on generated features (y = sin(2 x1) + x2^2 + noise) with early stopping and writes
{"lcc", "rmse", "world_size", "epochs", "best_val_lcc", "val_lcc_per_rank"} to OUT.json (rank 0).
"""

from __future__ import annotations

import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from scorecast.data.features import FeatureSet  # noqa: E402
from scorecast.data.items import Item, ItemSet  # noqa: E402

# sin(2 x1) + x2^2 has a long upper tail: the few scores above 6 are kept on purpose (clipped predictions)
TARGET = {"name": "score", "low": -3.0, "high": 6.0, "step": 0.5, "allow_out_of_range": True}


def known_function(x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    return np.sin(2.0 * x1) + x2**2


def make_dataset(n: int = 240, seed: int = 0, noise: float = 0.1, n_groups: int = 12) -> tuple[ItemSet, FeatureSet]:
    """Items with target ``score`` = sin(2 x1) + x2^2 + noise and groups ``g0..``; features ``a`` (4-d,
    x1 in column 0) and ``b`` (3-d, x2 in column 1), the other columns noise."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, 4)).astype(np.float32)
    b = rng.normal(size=(n, 3)).astype(np.float32)
    y = known_function(a[:, 0], b[:, 1]) + noise * rng.normal(size=n)
    ids = [f"item{i:04d}" for i in range(n)]
    items = [Item(id=ids[i], targets={"score": float(y[i])}, group=f"g{i % n_groups}") for i in range(n)]
    return ItemSet(items, source="generated", target_names=["score"]), FeatureSet(ids, {"a": a, "b": b})


def base_recipe(**training) -> dict:
    """A small neural recipe dict over the generated features (fast on CPU)."""
    return {
        "name": "generated",
        "targets": [TARGET],
        "model": {
            "fusion": {"name": "concat", "params": {"hidden": [64], "dropout": 0.0}},
            "head": {"name": "regression"},
        },
        "losses": [{"name": "mse"}],
        "training": {
            "max_epochs": 60,
            "batch_size": 32,
            "lr": 3e-3,
            "scheduler": "none",
            "gradient_clip_val": 1.0,
            "early_stopping": {"monitor": "val_lcc", "patience": 15},
            "val_fraction": 0.15,
            **training,
        },
        "cv": {"folds": 3, "seeds": [0]},
        "evaluate": {"bootstrap": 20},
    }


def run(devices: int = 1, strategy: str = "auto", log_dir: str | None = None) -> dict | None:
    """Train one member on 400 generated items (early stopping on 80 of them), score 80 held-out
    items; returns the figures on rank 0 (None on other ranks)."""
    import torch.distributed as dist

    from scorecast.config import load_recipe
    from scorecast.metrics.functional import lcc, rmse
    from scorecast.runs.folder import is_global_zero
    from scorecast.training.splits import holdout_split
    from scorecast.training.trainer import fit_member

    items, features = make_dataset(n=480, seed=1)
    train_items, test_items = np.arange(400), np.arange(400, 480)
    recipe = load_recipe(
        base_recipe(accelerator="cpu", devices=devices, strategy=strategy, batch_size=32, max_epochs=20)
    )
    y = items.target_matrix(["score"])
    tr, va = holdout_split(len(train_items), 0.2, 0)
    member = fit_member(recipe, features, y, train_items[tr], train_items[va], seed=0, log_dir=log_dir, name="ddp")
    pred = member.predict(features.subset(test_items)).mean[:, 0]
    truth = y[test_items, 0]
    history = member.history
    last_val = history[-1].get("val_lcc", float("nan")) if history else float("nan")
    distributed = dist.is_available() and dist.is_initialized()
    per_rank = [last_val]
    if distributed:
        per_rank = [None] * dist.get_world_size()
        dist.all_gather_object(per_rank, last_val)
    if not is_global_zero():
        return None
    return {
        "lcc": float(lcc(pred, truth)),
        "rmse": float(rmse(pred, truth)),
        "world_size": dist.get_world_size() if distributed else 1,
        "epochs": len(history),
        "best_val_lcc": max((row.get("val_lcc", float("nan")) for row in history), default=float("nan")),
        "val_lcc_per_rank": per_rank,
    }


def main() -> None:
    import argparse
    import json

    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--strategy", default="ddp")
    parser.add_argument("--log-dir", default=None)
    args = parser.parse_args()
    from scorecast.runs.folder import close_distributed

    try:
        result = run(args.devices, args.strategy, args.log_dir)
        if result is not None:
            with open(args.out, "w") as f:
                json.dump(result, f)
    finally:
        close_distributed()


if __name__ == "__main__":
    main()
