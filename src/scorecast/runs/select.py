"""Nested model choice (``recipe.select``, ``scorecast cv --select``).

For each outer fit, :meth:`Selector.choose` runs an inner cross-validation of every candidate on the
outer fit's training items only (a FeatureSet cut down to them: the outer validation items are not
even in memory for the choice), pools each candidate's inner out-of-fold predictions, and returns the
candidate with the best ``select.metric``. The outer fold then trains that candidate. A scorer of
such a run is the ensemble of each fold's chosen member (members carry their own model settings).

Candidates are the recipe as written (``default``), its variants, and the combinations of
``select.grid``; a variant may add encoders: the run is prepared with the union of all candidates'
encoders (:func:`features_recipe`), and each candidate sees only its own features.
"""

from __future__ import annotations

import copy
import itertools
import logging
from typing import Any

import numpy as np

from scorecast.config import CVConfig, EncoderSpec, Recipe, apply_overrides
from scorecast.data.features import FeatureSet
from scorecast.data.items import ItemSet
from scorecast.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT = "default"


def candidate_recipes(recipe: Recipe) -> dict[str, Recipe]:
    """{name: recipe} of the candidates ``recipe.select`` names (see the module docstring)."""
    sel = recipe.select
    if sel is None:
        raise ConfigError("select: the recipe has no 'select' block (use `scorecast cv --select` or add one)")
    raw = recipe.model_dump(mode="json")
    raw["select"] = None
    names = list(sel.candidates) or ([] if sel.grid else [DEFAULT, *recipe.variants])
    out: dict[str, Recipe] = {}
    for name in names:
        if name == DEFAULT:
            out[name] = Recipe.model_validate(copy.deepcopy(raw))
        elif name in recipe.variants:
            changed = apply_overrides(copy.deepcopy(raw), dict(recipe.variants[name]))
            changed["name"] = f"{recipe.name}-{name}"
            out[name] = _validate(changed, f"variant '{name}'")
        else:
            known = ", ".join([DEFAULT, *recipe.variants])
            raise ConfigError(f"select.candidates: unknown candidate '{name}'; expected one of: {known}")
    keys = list(sel.grid)
    for key, values in sel.grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"select.grid.{key}: expected a non-empty list of values, got {values!r}")
    for combo in itertools.product(*(sel.grid[k] for k in keys)) if keys else ():
        settings = dict(zip(keys, combo))
        name = ",".join(f"{k}={v}" for k, v in settings.items())
        out[name] = _validate(apply_overrides(copy.deepcopy(raw), settings), f"grid point {name}")
    if len(out) < 2:
        raise ConfigError(
            f"select: expected at least two candidates (the recipe's variants: {', '.join(recipe.variants) or 'none'}; "
            f"grid: {keys or 'none'}), got {list(out) or 'none'}"
        )
    for name, cand in out.items():
        if cand.target_names != recipe.target_names:
            raise ConfigError(
                f"select: candidate '{name}' predicts targets {cand.target_names}; expected the recipe's {recipe.target_names}"
            )
    return out


def _validate(raw: dict[str, Any], what: str) -> Recipe:
    from pydantic import ValidationError

    try:
        return Recipe.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"select: {what} is not a valid recipe: {exc}") from exc


def union_encoders(candidates: dict[str, Recipe]) -> list[EncoderSpec]:
    """Every candidate's encoders, once each (by feature name); one name with two specs is an error."""
    seen: dict[str, EncoderSpec] = {}
    for name, cand in candidates.items():
        for spec in cand.encoders:
            old = seen.setdefault(spec.feature_name, spec)
            if old != spec:
                raise ConfigError(
                    f"select: candidate '{name}' defines feature '{spec.feature_name}' as {spec.model_dump()}, "
                    f"another candidate as {old.model_dump()}; give one of them another alias"
                )
    return list(seen.values())


def features_recipe(recipe: Recipe) -> Recipe:
    """The recipe with the union of its candidates' encoders (what to encode and save) when it selects."""
    if recipe.select is None:
        return recipe
    return recipe.model_copy(update={"encoders": union_encoders(candidate_recipes(recipe))})


def own_features(features: FeatureSet, recipe: Recipe) -> FeatureSet:
    """The features ``recipe``'s encoders produce (all of them when it lists none, as in tests)."""
    names = [s.feature_name for s in recipe.encoders]
    if not names or set(names) == set(features.pooled):
        return features
    missing = [n for n in names if n not in features.pooled]
    if missing:
        raise ConfigError(f"recipe '{recipe.name}': features {missing} were not encoded (have {features.names})")
    return FeatureSet(
        list(features.ids),
        {k: features.pooled[k] for k in names},
        {k: v for k, v in features.sequences.items() if k in names},
    )


class Selector:
    """Chooses a candidate per outer fit by inner CV (see the module docstring)."""

    def __init__(self, recipe: Recipe, log_dir=None) -> None:
        self.recipe, self.log_dir = recipe, log_dir
        self.candidates = candidate_recipes(recipe)
        self.metric = recipe.select.metric or recipe.cv.weight_metric
        self.records: list[dict[str, Any]] = []

    def choose(
        self,
        items: ItemSet,
        features: FeatureSet,
        targets: np.ndarray,
        groups: list,
        seed: int,
        tags: dict[str, int],
    ) -> Recipe:
        """The best candidate by an inner CV on these (outer training) items only; records the scores."""
        from scorecast.metrics.functional import METRICS

        higher = getattr(METRICS.get(self.metric), "higher_is_better", True)
        scores = {
            name: self._inner_score(cand, items, features, targets, groups, seed)
            for name, cand in self.candidates.items()
        }
        finite = {k: v for k, v in scores.items() if np.isfinite(v)}
        chosen = (max if higher else min)(finite, key=finite.get) if finite else next(iter(self.candidates))
        self.records.append({**tags, "n_train": len(items), "scores": scores, "chosen": chosen})
        log.info("select: %s chose '%s' (inner %s: %s)", tags, chosen, self.metric, scores)
        return self.candidates[chosen]

    def _inner_score(self, cand: Recipe, items, features, targets, groups, seed: int) -> float:
        from scorecast.metrics.functional import METRICS
        from scorecast.training.splits import holdout_split, make_folds, stratify_labels
        from scorecast.training.trainer import fit_member

        cv = self.recipe.cv
        inner = CVConfig(
            folds=self.recipe.select.folds,
            kind=cv.kind,
            group_by=cv.group_by,
            stratify_bins=cv.stratify_bins,
        )
        own = own_features(features, cand)
        cand = cand.model_copy(update={"training": cand.training.model_copy(update={"loggers": []})})
        labels = stratify_labels(targets[:, 0], cv.stratify_bins)
        oof = np.full(targets.shape, np.nan)
        for fold in make_folds(inner, items, targets, seed=seed):
            tr, es = fold.train, np.arange(0)
            cfg = cand.training
            if cfg.early_stopping is not None and cfg.val_fraction > 0:
                a, b = holdout_split(len(tr), cfg.val_fraction, seed, labels[tr])
                tr, es = tr[a], tr[b]
            member = fit_member(
                cand, own, targets, tr, es, groups=groups, seed=seed, log_dir=self.log_dir, name="select"
            )
            oof[fold.val] = member.predict(own.subset(fold.val)).mean
        fn = METRICS.get(self.metric)
        values = []
        for j in range(targets.shape[1]):
            ok = np.isfinite(oof[:, j]) & np.isfinite(targets[:, j])
            values.append(fn(oof[ok, j], targets[ok, j]) if ok.sum() >= 2 else np.nan)
        values = [v for v in values if np.isfinite(v)]
        return float(np.mean(values)) if values else float("nan")

    def summary(self) -> dict[str, Any]:
        """The ``selection`` block of metrics.json."""
        counts: dict[str, int] = {}
        for r in self.records:
            counts[r["chosen"]] = counts.get(r["chosen"], 0) + 1
        return {
            "metric": self.metric,
            "inner_folds": self.recipe.select.folds,
            "candidates": list(self.candidates),
            "per_fold": self.records,
            "chosen_counts": counts,
        }
