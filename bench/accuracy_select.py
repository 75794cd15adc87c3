"""Nested cross-validation of a choice among recipe variants (``bench/run_accuracy.py``).

The reported CV figure of each variant must not pick the default: picking the best of several
reported figures overstates it. Here the choice itself is cross-validated: for every outer fold
(the recipe's own folds and seeds, as ``scorecast cv`` makes them) each candidate is scored by an
inner CV on the outer fold's training items only (fold seed ``INNER_SEED``, not a reported one);
the winner is trained on those training items and predicts the outer fold. The out-of-fold
predictions of the chosen candidates (averaged over the seeds, clipped) are the honest figure of
"choose by inner CV", and the choice on all items (the same inner CV on every item) is the default
the recipe should carry. Candidates are estimator heads (ridge, SVR): cheap enough for K x 5 x 5 fits.
The winner is fit on ALL of the outer fold's training items, while ``scorecast cv`` (the per-variant
rows) holds out the recipe's early-stopping part of each training fold even for an estimator head,
so a nested row can beat the row of the very candidate it chose every time.
"""

from __future__ import annotations

import tempfile
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

INNER_SEED = 7


def inner_score(recipe, items, features, work: Path) -> float:
    """Pearson of ``recipe``'s inner CV (fold seed INNER_SEED) on these items."""
    from scorecast.metrics.functional import lcc
    from scorecast.runs.cv import run_cv

    inner = recipe.model_copy(update={"cv": recipe.cv.model_copy(update={"seeds": [INNER_SEED]})})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        oof = run_cv(inner, items, features, work).oof
    target = recipe.targets[0].name
    return float(lcc(oof[f"pred.{target}"].to_numpy(), oof[target].to_numpy()))


def choose(prepared: dict[str, tuple], idx: np.ndarray, work: Path) -> tuple[str, dict[str, float]]:
    """The candidate with the best inner-CV Pearson on the items ``idx``; and every candidate's score."""
    scores = {}
    for name, (recipe, items, features) in prepared.items():
        with tempfile.TemporaryDirectory(dir=work) as run:
            scores[name] = inner_score(recipe, items.subset(idx.tolist()), features.subset(idx), Path(run))
    return max(scores, key=scores.get), scores


def nested_selection(prepared: dict[str, tuple], work: Path, log=print) -> dict[str, Any]:
    """``prepared``: {candidate label: (recipe, items, features)}, the same items in the same order.

    Returns {"pred" (N,), "target" (N,), "choices" Counter over outer folds, "default" (the choice on
    all items), "default_scores" {label: inner Pearson on all items}}."""
    from scorecast.runs.cv import clip_to_targets, training_targets
    from scorecast.training.splits import make_folds
    from scorecast.training.trainer import fit_member

    first_recipe, items, _ = next(iter(prepared.values()))
    ids = list(items.ids)
    for label, (_, other, _) in prepared.items():
        if list(other.ids) != ids:
            raise SystemExit(f"nested selection: candidate {label} has other items than the first")
    y = training_targets(first_recipe, items)
    columns, choices = [], Counter()
    for seed in first_recipe.cv.seeds:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            folds = make_folds(first_recipe.cv, items, y, seed=seed * 1000)
        pred = np.full(len(ids), np.nan)
        for fold in folds:
            if fold.repeat:
                continue
            best, scores = choose(prepared, np.asarray(fold.train), work)
            choices[best] += 1
            recipe, _, features = prepared[best]
            member = fit_member(recipe, features, y, fold.train, fold.val, seed=seed + fold.fold)
            pred[fold.val] = member.predict(features.subset(fold.val)).mean[:, 0]
            log(
                f"  nested: seed {seed} fold {fold.fold}: {best} ({', '.join(f'{k} {v:.3f}' for k, v in scores.items())})"
            )
        columns.append(pred)
    mean = clip_to_targets(first_recipe, np.mean(columns, axis=0)[:, None])[:, 0]
    default, default_scores = choose(prepared, np.arange(len(ids)), work)
    return {
        "pred": mean,
        "target": y[:, 0],
        "choices": dict(choices),
        "default": default,
        "default_scores": default_scores,
    }
