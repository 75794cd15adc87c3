"""Cross-validation and final training: ``run_cv`` and ``run_train`` write a run folder.

``run_cv``: for every seed in ``cv.seeds`` and every repeat, each fold trains one member on the other
folds (early stopping on ``training.val_fraction`` of them; on the fold itself when that is 0) and
predicts its own items. Out-of-fold predictions are averaged over seeds and repeats. The scorer is
the ensemble of all fold members, weighted by ``cv.ensemble`` (fold validation metric, mean, or a
ridge stacker fitted on the out-of-fold predictions of each seed x repeat).

``run_train``: each seed trains one member on all items but a ``val_fraction`` held out for early
stopping; the held-out predictions give the run's metrics. Given a validation split (the recipe's
``val_data``), every member trains on all items instead, early-stops on that split, and its
predictions there give the metrics.

Under DDP every rank runs the same loop (the fits synchronise); only rank 0 writes files.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from scorecast.config import Recipe
from scorecast.data.features import FeatureSet
from scorecast.data.items import ItemSet
from scorecast.errors import DataError
from scorecast.inference.ensemble import Stacker, combine, ensemble_weights
from scorecast.inference.frames import prediction_frame
from scorecast.inference.members import Prediction
from scorecast.inference.novelty import input_profile
from scorecast.models.datasets import target_distributions
from scorecast.runs.baselines import Split
from scorecast.runs.folder import (
    RunResult,
    evaluate_predictions,
    fold_metrics,
    history_frame,
    is_global_zero,
    mean_metric,
    write_run_folder,
)
from scorecast.training.splits import holdout_split, make_folds, stratify_labels

log = logging.getLogger(__name__)


def check_alignment(items: ItemSet, features: FeatureSet, what: str = "features") -> None:
    if list(features.ids) != list(items.ids):
        n_diff = sum(a != b for a, b in zip(features.ids, items.ids)) + abs(len(features) - len(items))
        raise DataError(
            f"{what}: expected one row per item in the items' order ({len(items)} items), got {len(features)} rows "
            f"with {n_diff} id(s) out of place"
        )


def training_targets(recipe: Recipe, items: ItemSet) -> np.ndarray:
    """(N, T) targets of the recipe's targets; a target no item has is an error."""
    y = np.stack([items.targets(t.name) for t in recipe.targets], axis=1)
    for j, spec in enumerate(recipe.targets):
        if not np.isfinite(y[:, j]).any():
            raise DataError(
                f"target '{spec.name}': no item has a value (the data holds targets {items.target_names})",
                file=items.source or None,
            )
    return y


def _augmented_part(augmented: FeatureSet | None, n_items: int, train_idx: np.ndarray, targets: np.ndarray):
    """(features, targets) of the augmented copies of the items in ``train_idx`` (item-major layout)."""
    if augmented is None or len(augmented) == 0:
        return None
    copies = len(augmented) // n_items
    if copies * n_items != len(augmented):
        raise DataError(
            f"augmented features: expected a multiple of {n_items} rows (copies per item), got {len(augmented)}"
        )
    idx = (train_idx[:, None] * copies + np.arange(copies)[None, :]).reshape(-1)
    return augmented.subset(idx), np.repeat(targets[train_idx], copies, axis=0)


class _Context:
    """What every fit of a run shares. ``n_train_items``: how many of the first items are training
    items, the ones augmented copies belong to (all of them unless a validation split follows)."""

    def __init__(
        self,
        recipe: Recipe,
        items: ItemSet,
        features: FeatureSet,
        out_dir: Path,
        augmented: FeatureSet | None,
        n_train_items: int | None = None,
    ):
        check_alignment(items, features)
        self.recipe, self.items, self.features, self.out_dir = recipe, items, features, Path(out_dir)
        self.n_train_items = len(items) if n_train_items is None else n_train_items
        self.targets = training_targets(recipe, items)
        self.groups = items.groups()
        self.target_dist = target_distributions(items, recipe.targets)
        self.ratings = [item.ratings.get(recipe.targets[0].name) for item in items]  # for training.listeners
        self.augmented = augmented
        self.history: list[dict[str, Any]] = []
        self.labels = stratify_labels(self.targets[:, 0], recipe.cv.stratify_bins)
        # what the run's checks (scorecast.runs.checks) need: every fit's items, each member's tags
        self.splits: list[Split] = []
        self.member_tags: list[dict[str, int]] = []
        self.selector = None
        if recipe.select is not None:
            from scorecast.runs.select import Selector

            self.selector = Selector(recipe, self.out_dir / "logs")

    def choose(self, train: np.ndarray, seed: int, tags: dict[str, int]) -> Recipe:
        """The recipe that trains on ``train``: the run's, or the candidate an inner CV on ``train`` alone picks."""
        if self.selector is None:
            return self.recipe
        sub = [self.groups[i] for i in train]
        return self.selector.choose(
            self.items.subset(train), self.features.subset(train), self.targets[train], sub, seed, tags
        )

    def fit(self, train_idx: np.ndarray, val_idx: np.ndarray, seed: int, name: str, tags: dict[str, int], recipe=None):
        """One member of ``recipe`` (default: the run's; a selected candidate sees only its own features)."""
        from scorecast.runs.select import own_features
        from scorecast.training.trainer import fit_member

        recipe = recipe or self.recipe
        member = fit_member(
            recipe,
            own_features(self.features, recipe),
            self.targets,
            train_idx,
            val_idx,
            groups=self.groups,
            target_dist=self.target_dist,
            seed=seed,
            log_dir=self.out_dir / "logs",
            name=name,
            augmented=_augmented_part(self.augmented, self.n_train_items, train_idx, self.targets),
            ratings=self.ratings,
        )
        self.history += [{**tags, **row} for row in member.history]
        return member

    def early_stopping_split(
        self, train: np.ndarray, val: np.ndarray, seed: int, recipe: Recipe | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Inner (train, early-stopping) indices of a fold's training part."""
        cfg = (recipe or self.recipe).training
        if cfg.early_stopping is None:
            return train, np.arange(0)
        if cfg.val_fraction <= 0:
            return train, val
        tr, va = holdout_split(len(train), cfg.val_fraction, seed, self.labels[train])
        return train[tr], train[va]


def run_cv(
    recipe: Recipe,
    items: ItemSet,
    features: FeatureSet,
    out_dir: str | Path,
    *,
    encoder_identities: dict[str, dict] | None = None,
    augmented: FeatureSet | None = None,
    test: tuple[ItemSet, FeatureSet] | None = None,
) -> RunResult:
    """Cross-validate ``recipe`` on ``items`` / ``features`` (aligned) and write the run folder."""
    if recipe.val_data is not None:
        log.info("cv: the recipe's val_data is not used; each fold validates on its own items (train uses val_data)")
    ctx = _Context(recipe, items, features, Path(out_dir), augmented)
    cv = recipe.cv
    n, n_t = ctx.targets.shape
    members, scores, columns = [], [], []
    column_oof: list[list[Prediction | None]] = []  # per column: per-item prediction rows
    folds_out, first_fold = [], np.full(n, -1)
    for seed in cv.seeds:
        folds = make_folds(cv, items, ctx.targets, seed=seed * 1000)
        for r in range(cv.repeats):
            col_mean = np.full((n, n_t), np.nan)
            col_std = np.full((n, n_t), np.nan)
            have_std = True
            column = []
            for fold in (f for f in folds if f.repeat == r):
                tags = {"fold": fold.fold, "seed": seed, "repeat": r}
                chosen = ctx.choose(fold.train, seed + fold.fold, tags)
                tr, va = ctx.early_stopping_split(fold.train, fold.val, seed + fold.fold, chosen)
                member = ctx.fit(tr, va, seed + fold.fold, f"seed{seed}-rep{r}-fold{fold.fold}", tags, chosen)
                ctx.splits.append(Split(len(columns), fold.train, fold.val))
                ctx.member_tags.append(tags)
                pred = member.predict(features.subset(fold.val))
                col_mean[fold.val] = pred.mean
                if pred.std is None:
                    have_std = False
                else:
                    col_std[fold.val] = pred.std
                per_target = fold_metrics(recipe, pred.mean, ctx.targets[fold.val])
                folds_out.append({**tags, "n": int(len(fold.val)), **per_target, **member.fit_info})
                scores.append(mean_metric(per_target, cv.weight_metric))
                column.append(len(members))
                members.append(member)
                if seed == cv.seeds[0] and r == 0:
                    first_fold[fold.val] = fold.fold
            columns.append(column)
            column_oof.append(Prediction(col_mean, col_std if have_std else None))
    oof = combine(column_oof, np.full(len(column_oof), 1.0 / len(column_oof)))
    weights = ensemble_weights(cv.ensemble, scores, cv.weight_metric)
    stacker = None
    if cv.ensemble == "stack":
        stacker = Stacker.fit(columns, np.stack([c.mean for c in column_oof], axis=1), ctx.targets)
    oof.mean = clip_to_targets(recipe, oof.mean)
    metrics = evaluate_predictions(recipe, oof.mean, ctx.targets, ctx.groups)
    add_ceiling(metrics, recipe, items)
    metrics["folds"] = folds_out
    metrics["ensemble"] = {
        "kind": cv.ensemble,
        "metric": cv.weight_metric,
        "weights": weights.tolist(),
        "stacker": stacker.to_json() if stacker else None,
    }
    oof_frame = prediction_frame(
        items.ids,
        [t.name for t in recipe.targets],
        oof.mean,
        oof.std,
        truth=ctx.targets,
        groups=ctx.groups,
        fold=first_fold,
    )
    return _finish(
        ctx, members, weights, stacker, metrics, oof_frame, encoder_identities, test, (oof.mean, first_fold, scores)
    )


def run_train(
    recipe: Recipe,
    items: ItemSet,
    features: FeatureSet,
    out_dir: str | Path,
    *,
    encoder_identities: dict[str, dict] | None = None,
    augmented: FeatureSet | None = None,
    test: tuple[ItemSet, FeatureSet] | None = None,
    val: tuple[ItemSet, FeatureSet] | None = None,
) -> RunResult:
    """Train the final scorer per seed: on all items but a ``val_fraction`` held out for early
    stopping, or, given ``val`` (items, features) of a separate validation split, on all items with
    early stopping and the reported metrics on ``val``."""
    n_train = len(items)
    if val is not None:
        items, features = _with_validation_split(recipe, items, features, val)
    ctx = _Context(recipe, items, features, Path(out_dir), augmented, n_train_items=n_train)
    cfg = recipe.training
    n, n_t = ctx.targets.shape
    members, scores, folds_out = [], [], []
    held_mean = np.zeros((n, n_t))
    held_count = np.zeros(n)
    for seed in recipe.cv.seeds:
        if val is not None:
            tr, va = np.arange(n_train), np.arange(n_train, n)
        else:
            frac = cfg.val_fraction if cfg.early_stopping is not None else 0.0
            tr, va = holdout_split(n, frac, seed, ctx.labels)
        tags = {"fold": 0, "seed": seed, "repeat": 0}
        chosen = ctx.choose(tr, seed, tags)
        member = ctx.fit(tr, va, seed, f"train-seed{seed}", tags, chosen)
        members.append(member)
        ctx.splits.append(Split(len(ctx.splits), tr, va))
        ctx.member_tags.append(tags)
        if len(va):
            pred = member.predict(features.subset(va))
            held_mean[va] += pred.mean
            held_count[va] += 1
            per_target = fold_metrics(recipe, pred.mean, ctx.targets[va])
            folds_out.append({**tags, "n": int(len(va)), **per_target, **member.fit_info})
            scores.append(mean_metric(per_target, recipe.cv.weight_metric))
        else:
            scores.append(float("nan"))
    kind = "mean" if recipe.cv.ensemble == "stack" else recipe.cv.ensemble
    weights = ensemble_weights(kind, scores, recipe.cv.weight_metric)
    held = held_count > 0
    mean = clip_to_targets(recipe, held_mean[held] / held_count[held, None])
    metrics = evaluate_predictions(recipe, mean, ctx.targets[held], [ctx.groups[i] for i in np.flatnonzero(held)])
    if not held.any():
        log.warning("train: no items held out (training.val_fraction=0 or no early stopping), so no metrics")
    metrics["folds"] = folds_out
    metrics["ensemble"] = {
        "kind": kind,
        "metric": recipe.cv.weight_metric,
        "weights": weights.tolist(),
        "stacker": None,
    }
    metrics["holdout"] = True
    add_ceiling(metrics, recipe, ctx.items.subset(np.flatnonzero(held)))
    idx = np.flatnonzero(held)
    oof_frame = prediction_frame(
        [items.ids[i] for i in idx],
        [t.name for t in recipe.targets],
        mean,
        None,
        truth=ctx.targets[idx],
        groups=[ctx.groups[i] for i in idx],
        fold=np.zeros(len(idx), dtype=int),
    )
    model_full = np.full((n, n_t), np.nan)
    model_full[held] = mean
    fold_labels = np.where(held, 0, -1)
    return _finish(
        ctx, members, weights, None, metrics, oof_frame, encoder_identities, test, (model_full, fold_labels, scores)
    )


def _with_validation_split(
    recipe: Recipe, items: ItemSet, features: FeatureSet, val: tuple[ItemSet, FeatureSet]
) -> tuple[ItemSet, FeatureSet]:
    """The training items followed by the validation split's, and their features (one run context)."""
    val_items, val_features = val
    check_alignment(val_items, val_features, "val_data features")
    train_src, val_src = items.source or "the training data", val_items.source or "val_data"
    if len(val_items) == 0:
        raise DataError(f"val_data: expected at least one item, got none from {val_src}")
    shared = sorted(set(items.ids) & set(val_items.ids))
    if shared:
        raise DataError(
            f"val_data: expected ids distinct from the training data's, got {len(shared)} id(s) in both "
            f"{train_src} and {val_src} (first: {', '.join(shared[:5])})"
        )
    if features.dims() != val_features.dims() or set(features.sequences) != set(val_features.sequences):
        raise DataError(
            f"val_data features: expected the training features {features.dims()} (sequences: "
            f"{sorted(features.sequences)}), got {val_features.dims()} (sequences: {sorted(val_features.sequences)})",
            file=val_items.source or None,
        )
    for spec in recipe.targets:
        if not np.isfinite(val_items.targets(spec.name)).any():
            raise DataError(
                f"val_data: expected scores of target '{spec.name}' to validate on, got none "
                f"(the split holds targets {val_items.target_names})",
                file=val_items.source or None,
            )
    merged = ItemSet(items.items + val_items.items, f"{train_src} + {val_src}", list(items.target_names))
    return merged, FeatureSet.concat([features, val_features])


def add_ceiling(metrics: dict[str, Any], recipe: Recipe, items: ItemSet) -> None:
    """metrics["targets"][t]["ceiling"]: the listeners' split-half agreement (Spearman-Brown corrected,
    clip and system level) where the items carry per-listener ratings with rater ids."""
    from scorecast.metrics.ceiling import item_ceilings

    for name, ceiling in item_ceilings(items, recipe.target_names).items():
        if name in metrics.get("targets", {}):
            metrics["targets"][name]["ceiling"] = ceiling


def clip_to_targets(recipe: Recipe, mean: np.ndarray) -> np.ndarray:
    low = np.array([t.low for t in recipe.targets])
    high = np.array([t.high for t in recipe.targets])
    return np.clip(mean, low, high)


def _finish(
    ctx: _Context, members, weights, stacker, metrics, oof_frame, encoder_identities, test, checked
) -> RunResult:
    """Score the test data, run the checks (baselines, guards), write the run folder and the bundle.
    ``checked`` = (the run's predictions (N, T), NaN where unscored; fold label per item; member scores)."""
    from scorecast.inference.bundle import Bundle, save_bundle
    from scorecast.runs.checks import run_checks

    recipe, out = ctx.recipe, ctx.out_dir
    dims = ctx.features.dims()
    bundle = Bundle(out / "bundle", recipe, members, weights, dict(encoder_identities or {}), dims, stacker, metrics)
    predictions = None
    if test is not None:
        test_items, test_features = test
        check_alignment(test_items, test_features, "test features")
        pred = bundle.predict_features(test_features)
        truth = np.stack([test_items.targets(t.name) for t in recipe.targets], axis=1)
        predictions = prediction_frame(
            test_items.ids,
            [t.name for t in recipe.targets],
            pred.mean,
            pred.std,
            truth=truth,
            groups=test_items.groups(),
        )
        if np.isfinite(truth).any():
            metrics["test"] = evaluate_predictions(recipe, pred.mean, truth, test_items.groups())
    model_mean, fold_labels, scores = checked
    if ctx.selector is not None:
        metrics["selection"] = ctx.selector.summary()
    baselines = run_checks(
        recipe,
        ctx.features,
        ctx.targets,
        ctx.groups,
        model_mean,
        ctx.splits,
        ctx.member_tags,
        scores,
        weights,
        metrics,
        fold_labels,
        lambda x: clip_to_targets(recipe, x),
    )
    history = history_frame(ctx.history)
    result = RunResult(out, metrics, oof_frame, members, weights, stacker, history, None, predictions)
    if is_global_zero():
        n_train = ctx.n_train_items
        train_items = ctx.items if n_train == len(ctx.items) else ctx.items.subset(range(n_train))
        write_run_folder(out, recipe, train_items, oof_frame, metrics, history, predictions)
        baselines.to_csv(out / "baselines.csv", index=False)
        data_summary = {"items": n_train, "groups": len({g for g in ctx.groups[:n_train] if g is not None})}
        if n_train < len(ctx.items):
            data_summary["val_items"] = len(ctx.items) - n_train
        from scorecast.runs.select import features_recipe

        result.bundle_path = save_bundle(
            out / "bundle",
            features_recipe(recipe),  # a selecting run's scorer needs every candidate's encoders
            members,
            weights,
            dict(encoder_identities or {}),
            dims,
            metrics=metrics,
            stacker=stacker,
            data_summary=data_summary,
            input_profile=input_profile(ctx.features.subset(np.arange(n_train))),
        )
    return result
