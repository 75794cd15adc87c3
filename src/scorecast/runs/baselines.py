"""Baselines scored in every ``cv`` / ``train`` run, on exactly the model's folds and items.

Each baseline is fitted on the training items of every fit the model made (each cv fold of each
seed x repeat; each seed's training part in ``train``) and predicts that fit's scored items; its
predictions are averaged over seeds and repeats as the model's are. The family (``BASELINES``):

- ``mean``: the training items' mean score (the floor any scorer must beat on RMSE);
- ``ridge``: ridge regression on the standardised, concatenated pooled features the model sees,
  ``alpha`` chosen inside the training items (scikit-learn's ``RidgeCV``, leave-one-out);
- ``zero-shot``: a score an encoder already produces (the first outputs of the encoders that
  ``scorecast.inference.zeroshot.ZERO_SHOT`` lists: DNSMOS SIG, BAK, OVRL, P.808; DistillMOS), or a pair score of two features of one encoder
  (``Encoder.pair_score``: the cosine of two sentence embeddings); ``raw`` (in the encoder's own
  units: only correlations are compared) or ``calibrated`` (a line fitted on the training items).

:func:`compare_baselines` gives the ``baselines`` block of metrics.json: each baseline's figures
beside the model's, the paired bootstrap of (model - baseline) and a warning when the model does
not beat the best of them.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from scorecast.config import Recipe
from scorecast.data.features import FeatureSet
from scorecast.errors import DataError
from scorecast.registry import Registry

log = logging.getLogger(__name__)

#: ridge penalties RidgeCV chooses from (inside the training items)
RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-3, 5, 17))
CORRELATIONS = ("lcc", "srcc", "ktau")


@dataclass(frozen=True)
class Split:
    """One fit of the model: trained on ``train`` (indices), scored on ``val``; ``column`` counts the
    seed x repeat the fit belongs to (predictions are averaged over columns)."""

    column: int
    train: np.ndarray
    val: np.ndarray


class Baseline:
    """A predictor fitted on a fit's training items. ``raw``: its scores are not in target units."""

    registry_name: ClassVar[str] = ""
    kind: ClassVar[str] = ""
    raw: bool = False

    def __init__(self, name: str, description: str) -> None:
        self.name, self.description = name, description
        self.fits: list[dict[str, Any]] = []  # what each fit chose (ridge: alpha per target)

    def fit_predict(self, features: FeatureSet, targets: np.ndarray, train: np.ndarray, val: np.ndarray) -> np.ndarray:
        """(len(val), T) predictions of ``val`` from a fit on ``train`` (targets (N, T), NaN = missing)."""
        raise NotImplementedError


BASELINES: Registry[type[Baseline]] = Registry("baseline")


@BASELINES.register("mean")
class MeanBaseline(Baseline):
    kind = "mean"

    def __init__(self) -> None:
        super().__init__("mean", "the training items' mean score")

    def fit_predict(self, features, targets, train, val):
        means = np.nanmean(targets[train], axis=0) if len(train) else np.full(targets.shape[1], np.nan)
        return np.tile(means, (len(val), 1))


@BASELINES.register("ridge")
class RidgeBaseline(Baseline):
    kind = "ridge"

    def __init__(self, alphas: tuple[float, ...] = RIDGE_ALPHAS) -> None:
        super().__init__(
            "ridge", "ridge on the standardised pooled features, alpha by leave-one-out inside the training items"
        )
        self.alphas = tuple(alphas)

    def fit_predict(self, features, targets, train, val):
        from sklearn.linear_model import RidgeCV

        x = np.concatenate([features.pooled[k].astype(np.float64) for k in features.pooled], axis=1)
        mu, sd = x[train].mean(axis=0), x[train].std(axis=0)
        sd[sd == 0] = 1.0
        x = (x - mu) / sd
        out = np.full((len(val), targets.shape[1]), np.nan)
        chosen = []
        for j in range(targets.shape[1]):
            ok = train[np.isfinite(targets[train, j])]
            if len(ok) < 3:
                chosen.append(None)
                continue
            model = RidgeCV(alphas=self.alphas).fit(x[ok], targets[ok, j])
            out[:, j] = model.predict(x[val])
            chosen.append(float(model.alpha_))
        self.fits.append({"alpha": chosen})
        return out


@BASELINES.register("zero-shot")
class ZeroShotBaseline(Baseline):
    """A zero-shot score ``score_fn(features) -> (N,)``, raw or calibrated by a line on the training items."""

    kind = "zero-shot"

    def __init__(self, name: str, description: str, scores: np.ndarray, calibrated: bool) -> None:
        super().__init__(f"{name} ({'calibrated' if calibrated else 'raw'})", description)
        self.scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        self.calibrated = calibrated
        self.raw = not calibrated

    def fit_predict(self, features, targets, train, val):
        s = self.scores
        if not self.calibrated:
            return np.tile(s[val, None], (1, targets.shape[1]))
        out = np.full((len(val), targets.shape[1]), np.nan)
        lines = []
        for j in range(targets.shape[1]):
            ok = train[np.isfinite(targets[train, j]) & np.isfinite(s[train])]
            if len(ok) < 2 or np.ptp(s[ok]) == 0:
                slope, icpt = 0.0, float(np.nanmean(targets[ok, j])) if len(ok) else np.nan
            else:
                slope, icpt = (float(v) for v in np.polyfit(s[ok], targets[ok, j], 1))
            out[:, j] = slope * s[val] + icpt
            lines.append([slope, icpt])
        self.fits.append({"line": lines})
        return out


def zero_shot_scores(recipe: Recipe, features: FeatureSet) -> list[tuple[str, str, np.ndarray]]:
    """(name, description, scores (N,)) of every zero-shot score the recipe's encoders produce."""
    from scorecast.encoders.base import ENCODERS
    from scorecast.inference.zeroshot import ZERO_SHOT

    columns = {ZERO_SHOT.get(name).encoder: ZERO_SHOT.get(name).columns for name in ZERO_SHOT.names()}
    out = []
    specs = [s for s in recipe.encoders if s.feature_name in features.pooled]
    for spec in specs:
        x = features.pooled[spec.feature_name]
        for col, col_name in enumerate(columns.get(spec.name, ())):
            if col < x.shape[1]:
                out.append(
                    (
                        f"{spec.feature_name}.{col_name}",
                        f"{spec.name} {col_name.upper()} (column {col} of {spec.feature_name}), used as it comes",
                        x[:, col],
                    )
                )
    for i, left in enumerate(specs):
        for right in specs[i + 1 :]:
            kind = ENCODERS.get(left.name).pair_score
            same = left.name == right.name and left.params == right.params and left.input != right.input
            if kind == "cosine" and same:
                a = features.pooled[left.feature_name].astype(np.float64)
                b = features.pooled[right.feature_name].astype(np.float64)
                norm = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
                cos = np.where(norm > 0, (a * b).sum(axis=1) / np.where(norm > 0, norm, 1.0), 0.0)
                out.append(
                    (
                        f"cosine({left.feature_name},{right.feature_name})",
                        f"cosine similarity of the {left.name} embeddings of {left.input} and {right.input}",
                        cos,
                    )
                )
    return out


def baselines_for(recipe: Recipe, features: FeatureSet) -> list[Baseline]:
    """The baselines of a run: mean, ridge, and each zero-shot score raw and calibrated."""
    out: list[Baseline] = [BASELINES.build("mean"), BASELINES.build("ridge")]
    for name, description, scores in zero_shot_scores(recipe, features):
        for calibrated in (False, True):
            out.append(
                BASELINES.build("zero-shot", name=name, description=description, scores=scores, calibrated=calibrated)
            )
    return out


def baseline_predictions(
    baselines: list[Baseline], features: FeatureSet, targets: np.ndarray, splits: list[Split]
) -> dict[str, np.ndarray]:
    """{name: (N, T)}: each baseline fitted on every split's training items and predicting its
    scored items, averaged over columns (NaN where no split scored an item)."""
    n, n_t = targets.shape
    out = {}
    for base in baselines:
        total, count = np.zeros((n, n_t)), np.zeros((n, 1))
        for split in splits:
            if len(split.val) == 0:
                continue
            total[split.val] += base.fit_predict(features, targets, split.train, split.val)
            count[split.val] += 1
        with np.errstate(invalid="ignore", divide="ignore"):
            out[base.name] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return out


def compared_metrics(recipe: Recipe, raw: bool) -> list[str]:
    """The metrics a baseline is compared on: the recipe's weight metric and its correlations, and
    its error metrics unless the baseline is raw (in other units)."""
    names = list(dict.fromkeys([recipe.cv.weight_metric, *recipe.evaluate.metrics]))
    return [m for m in names if m in CORRELATIONS or (not raw and m in ("rmse", "mse", "mae"))]


def compare_baselines(
    recipe: Recipe,
    model: np.ndarray,
    targets: np.ndarray,
    groups: list | None,
    preds: dict[str, np.ndarray],
    baselines: list[Baseline],
    clip,
) -> dict[str, Any]:
    """The ``baselines`` block of metrics.json (see the module docstring). ``model``, ``targets`` and
    each of ``preds`` are (N, T) on the same items; ``clip`` maps target-unit predictions into range."""
    from scorecast.metrics.compare import verdict
    from scorecast.metrics.functional import METRICS, MetricWarning, compute_metrics, paired_bootstrap
    from scorecast.runs.folder import usable_groups

    ev = recipe.evaluate
    primary = recipe.cv.weight_metric
    grp = usable_groups(groups) if ev.system_level else None
    block: dict[str, Any] = {"metric": primary, "bootstrap": ev.bootstrap, "targets": {}, "warnings": []}
    for j, spec in enumerate(recipe.targets):
        entries = {}
        for base in baselines:
            pred = preds[base.name][:, j] if base.raw else clip(preds[base.name])[:, j]
            ok = np.isfinite(targets[:, j]) & np.isfinite(pred) & np.isfinite(model[:, j])
            if ok.sum() < 2:
                continue
            names = compared_metrics(recipe, base.raw)
            g = [grp[i] for i in np.flatnonzero(ok)] if grp is not None else None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MetricWarning)
                figures = compute_metrics(
                    pred[ok], targets[ok, j], names=names, groups=g, bootstrap=ev.bootstrap, seed=recipe.training.seed
                )
                levels = {"utterance": (model[ok, j], pred[ok], targets[ok, j])}
                if g is not None:
                    from scorecast.metrics.functional import system_level

                    sm, sb = system_level(model[ok, j], targets[ok, j], g), system_level(pred[ok], targets[ok, j], g)
                    levels["system"] = (sm.preds, sb.preds, sm.target)
                vs = {}
                for level, (a, b, t) in levels.items():
                    vs[level] = {}
                    for m in names:
                        diff = paired_bootstrap(METRICS.get(m), a, b, t, n=ev.bootstrap, seed=recipe.training.seed)
                        vs[level][m] = {**diff, "verdict": verdict(diff)}
            entries[base.name] = {
                "kind": base.kind + (" raw" if base.raw else " calibrated" if base.kind == "zero-shot" else ""),
                "description": base.description,
                **figures,
                "model_vs": vs,
                **({"fits": base.fits} if base.fits else {}),
            }
        best = best_baseline(entries, primary)
        info: dict[str, Any] = {"baselines": entries, "best": best}
        if best is not None:
            diff = entries[best]["model_vs"]["utterance"][primary]
            tested = ev.bootstrap > 0
            if tested:
                info["model_beats_best"] = diff["verdict"] == "better"
            else:  # no interval to judge by: only the sign of the difference
                ahead = diff["value"] > 0 if diff["higher_is_better"] else diff["value"] < 0
                info["model_beats_best"] = bool(ahead)
            if not info["model_beats_best"]:
                value = entries[best]["utterance"][primary]["value"]
                how = (
                    f"[{diff['low']:+.4f}, {diff['high']:+.4f}] (paired bootstrap, {diff['verdict']})"
                    if tested
                    else "(evaluate.bootstrap is 0: no interval, the point difference only)"
                )
                msg = (
                    f"target '{spec.name}': the model does not beat the best baseline '{best}' on {primary} "
                    f"({value:.4f}); model - baseline = {diff['value']:+.4f} {how}"
                )
                block["warnings"].append(msg)
        block["targets"][spec.name] = info
    for msg in block["warnings"]:
        log.warning(msg)
    return block


def best_baseline(entries: dict[str, Any], metric: str) -> str | None:
    """The baseline with the best utterance-level ``metric`` (NaN never best)."""
    from scorecast.metrics.functional import METRICS

    higher = getattr(METRICS.get(metric), "higher_is_better", True)
    scored = [
        (name, e["utterance"][metric]["value"])
        for name, e in entries.items()
        if metric in e["utterance"]
        and e["utterance"][metric]["value"] is not None  # undefined (e.g. constant predictions): never best
        and np.isfinite(e["utterance"][metric]["value"])
    ]
    if not scored:
        return None
    return (max if higher else min)(scored, key=lambda kv: kv[1])[0]


def baseline_frame(ids: list[str], fold: np.ndarray, target_names: list[str], truth: np.ndarray, preds: dict):
    """baselines.csv: id, fold, <target>, then ``<baseline>:<target>`` per baseline."""
    import pandas as pd

    if len(ids) != len(truth):
        raise DataError(f"baselines: expected one truth row per id ({len(ids)}), got {len(truth)}")
    cols: dict[str, Any] = {"id": list(ids), "fold": np.asarray(fold)}
    for j, t in enumerate(target_names):
        cols[t] = truth[:, j]
    for name, pred in preds.items():
        for j, t in enumerate(target_names):
            cols[f"{name}:{t}"] = pred[:, j]
    return pd.DataFrame(cols)
