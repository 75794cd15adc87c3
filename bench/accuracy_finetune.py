"""The fine-tuned row of run_accuracy.py's ``stsb-mpnet`` set: recipes/stsb.yaml [mpnet-finetune]
(one shared all-mpnet-base-v2 on both sentences, its top blocks trained end to end with the siamese
cosine head: ``scorecast.adapt.finetune.fit_finetune``) on the train split, the best epoch chosen on
dev, then test scored once; with its paired test-Spearman differences against the set's other rows
(the same test pairs)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

import accuracy_lib as lib

VARIANT = "mpnet-finetune"


def finetune_row(
    s: Any, root: Path, splits: dict[str, Any], truth: dict[str, np.ndarray], others: dict[str, np.ndarray]
) -> dict[str, Any]:
    """``splits``: {train, dev, test} item sets; ``others``: {row name: its test predictions} to compare with."""
    from scorecast.adapt.finetune import fit_finetune
    from scorecast.runs.cv import clip_to_targets

    recipe = lib.load("stsb.yaml", root, VARIANT, overrides=s.overrides())
    train, dev, test = (list(splits[k]) for k in ("train", "dev", "test"))
    start = time.perf_counter()
    result = fit_finetune(
        recipe,
        train + dev,
        s.work / "stsb-mpnet-finetune",
        train_idx=np.arange(len(train)),
        val_idx=np.arange(len(train), len(train) + len(dev)),
        seed=0,
    )
    fit_s = time.perf_counter() - start
    preds = {
        "dev": clip_to_targets(recipe, result.val_predictions)[:, 0],
        "test": clip_to_targets(recipe, result.predict(test, batch_size=32))[:, 0],
    }
    seconds = time.perf_counter() - start
    metrics = {k: lib.scores(preds[k], truth[k], ["srcc", "lcc", "rmse"], s.bootstrap)["utterance"] for k in preds}
    paired = {
        name: lib.paired_difference("srcc", preds["test"], other, truth["test"], s.bootstrap)
        for name, other in others.items()
    }
    tuned = recipe.encoders[0].params
    epochs = [
        f"{row.get('val_srcc', float('nan')):.4f}" for row in result.history if isinstance(row.get("val_srcc"), float)
    ]
    description = (
        f"one shared all-mpnet-base-v2 on s1 and s2, top {tuned['finetune_top_k']} blocks trained "
        f"(lr {tuned['finetune_lr']:g}, layer decay {tuned['layer_decay']:g}), siamese cosine -> calibrated "
        f"regression head; {recipe.training.max_epochs} epoch(s) of batches of {recipe.training.batch_size} pairs, "
        f"best epoch on dev (dev Spearman per epoch: {', '.join(epochs) or '–'}); fit {fit_s:.0f} s, test "
        f"prediction {seconds - fit_s:.0f} s. Paired test Spearman difference (this row minus): "
        + "; ".join(f"{name} {lib.fmt_entry(d, 4)}" for name, d in paired.items())
    )
    s.log(
        f"stsb-mpnet: {VARIANT}: dev srcc {metrics['dev']['srcc']['value']:.4f}, test {metrics['test']['srcc']['value']:.4f}"
    )
    return lib.row(
        f"stsb [{VARIANT}]",
        "scorecast",
        metrics,
        seconds=seconds,
        seeds=[0],
        description=description,
        paired_srcc=paired,
    )
