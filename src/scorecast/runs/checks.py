"""What every ``cv`` / ``train`` run checks beside its own figures (``metrics.json``):

- ``baselines``: the mean, ridge and zero-shot baselines on exactly the model's fits
  (:mod:`scorecast.runs.baselines`), with the paired bootstrap of the model's difference;
- ``ensemble.members``: each member's validation metric, weight and why;
- ``folds[i].flags``: folds whose validation correlation is negative or undefined;
- ``warnings``: all of the above that a user should read, plus correlations whose interval includes zero.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scorecast.config import Recipe
from scorecast.data.features import FeatureSet
from scorecast.runs.baselines import Split, baseline_frame, baseline_predictions, baselines_for, compare_baselines
from scorecast.runs.guards import flag_folds, interval_warnings, member_weights, report_warnings


def run_checks(
    recipe: Recipe,
    features: FeatureSet,
    targets: np.ndarray,
    groups: list,
    model_mean: np.ndarray,
    splits: list[Split],
    member_tags: list[dict[str, Any]],
    scores: list[float],
    weights: np.ndarray,
    metrics: dict[str, Any],
    fold: np.ndarray,
    clip,
):
    """Fill ``metrics`` (baselines, ensemble.members, fold flags, warnings) in place; returns the
    baselines.csv frame of the scored items. ``model_mean`` (N, T): the run's (clipped) predictions,
    NaN for items it did not score; ``fold`` (N,): each item's fold label (-1: not scored)."""
    scored = np.flatnonzero(np.isfinite(model_mean).any(axis=1))
    baselines = baselines_for(recipe, features)
    preds = baseline_predictions(baselines, features, targets, splits)
    sub_groups = [groups[i] for i in scored]
    metrics["baselines"] = compare_baselines(
        recipe,
        model_mean[scored],
        targets[scored],
        sub_groups,
        {k: v[scored] for k, v in preds.items()},
        baselines,
        clip,
    )
    kind = metrics["ensemble"]["kind"]
    metrics["ensemble"]["members"] = member_weights(member_tags, scores, weights, kind, recipe.cv.weight_metric)
    names = [t.name for t in recipe.targets]
    found = flag_folds(metrics.get("folds") or [], names)
    found += interval_warnings(metrics)
    if metrics.get("test"):
        found += interval_warnings(metrics["test"], "test: ")
    metrics["warnings"] = report_warnings(found) + list(metrics["baselines"]["warnings"])
    ids = [features.ids[i] for i in scored]
    return baseline_frame(
        ids, np.asarray(fold)[scored], names, targets[scored], {k: v[scored] for k, v in preds.items()}
    )
