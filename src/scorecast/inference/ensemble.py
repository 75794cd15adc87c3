"""Ensembles of members: weights from each fold's validation metric, plain means, or a ridge stacker.

Combining: ``mean = sum_m w_m mu_m``; the predicted spread combines each member's own predicted
variance (heads that give one) with the spread of the members' means,
``std = sqrt(sum_m w_m var_m + sum_m w_m (mu_m - mean)^2)`` (the law of total variance). A single
member without a predicted std gives no std.

Ensembles of whole runs (:mod:`scorecast.runs.ensemble`) write each run's combination as a
:class:`LinearForm` and compose them into one :class:`Stacker` (:func:`compose`); the stacked
out-of-fold predictions are cross-fitted (:func:`stack_folds`, :func:`cross_fitted_stack`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from scorecast.errors import BundleError, ConfigError
from scorecast.inference.members import Prediction

LOWER_IS_BETTER_METRICS = ("rmse", "mse", "mae")


def metric_weights(values: list[float], metric: str) -> np.ndarray:
    """Normalised weights (M,) from each member's validation ``metric``.

    Correlations weigh by their value (negative or NaN -> 0, as a fold that learned nothing should
    not vote); error metrics weigh by the inverse error. All zero -> uniform.
    """
    v = np.asarray(values, dtype=float)
    if metric in LOWER_IS_BETTER_METRICS:
        w = np.where(np.isfinite(v) & (v > 0), 1.0 / np.where(v > 0, v, 1.0), 0.0)
    else:
        w = np.where(np.isfinite(v), np.maximum(v, 0.0), 0.0)
    if w.sum() <= 0:
        return np.full(len(v), 1.0 / max(len(v), 1))
    return w / w.sum()


def ensemble_weights(kind: str, values: list[float], metric: str) -> np.ndarray:
    """Weights for ``cv.ensemble``: ``weighted`` (by ``metric``), ``mean`` or ``stack`` (members
    averaged inside each stacker column, so uniform here)."""
    if kind == "weighted":
        return metric_weights(values, metric)
    if kind in ("mean", "stack"):
        return np.full(len(values), 1.0 / max(len(values), 1))
    raise ConfigError(f"cv.ensemble: expected weighted, mean or stack, got '{kind}'")


def combine(preds: list[Prediction], weights: np.ndarray) -> Prediction:
    """Weighted mixture of member predictions (see the module docstring)."""
    if not preds:
        raise ConfigError("ensemble: no members to combine")
    w = np.asarray(weights, dtype=float)
    if len(w) != len(preds):
        raise ConfigError(f"ensemble: expected {len(preds)} weights (one per member), got {len(w)}")
    w = w / w.sum() if w.sum() > 0 else np.full(len(w), 1.0 / len(w))
    means = np.stack([p.mean for p in preds])  # (M, N, T)
    mean = np.tensordot(w, means, axes=1)
    have_std = [p.std is not None for p in preds]
    active = int((w > 0).sum())
    if active <= 1 and not any(have_std[m] for m in np.flatnonzero(w > 0)):
        return Prediction(mean, None)
    within = np.zeros_like(mean)
    for wm, p in zip(w, preds):
        if p.std is not None:
            within += wm * p.std**2
    between = np.tensordot(w, (means - mean[None]) ** 2, axes=1)
    return Prediction(mean, np.sqrt(within + between))


@dataclass
class Stacker:
    """Ridge over columns of member predictions, one model per target.

    ``columns[c]`` lists the members averaged into column ``c`` (e.g. the fold models of one seed);
    ``coef`` (T, C) and ``intercept`` (T,) map the columns to each target.
    """

    columns: list[list[int]]
    coef: np.ndarray
    intercept: np.ndarray
    alpha: float = 1.0

    @classmethod
    def fit(cls, columns: list[list[int]], oof: np.ndarray, target: np.ndarray, alpha: float = 1.0) -> Stacker:
        """``oof`` (N, C, T) out-of-fold predictions of each column; ``target`` (N, T)."""
        from sklearn.linear_model import Ridge

        n_targets = target.shape[1]
        coef = np.zeros((n_targets, len(columns)))
        intercept = np.zeros(n_targets)
        for t in range(n_targets):
            ok = np.isfinite(target[:, t]) & np.isfinite(oof[:, :, t]).all(axis=1)
            if ok.sum() < 2:
                raise ConfigError(
                    f"cv.ensemble=stack: target {t} has {int(ok.sum())} out-of-fold pairs; need at least 2"
                )
            model = Ridge(alpha=alpha).fit(oof[ok, :, t], target[ok, t])
            coef[t], intercept[t] = model.coef_, model.intercept_
        return cls([list(map(int, c)) for c in columns], coef, intercept, alpha)

    def apply(self, column_means: np.ndarray) -> np.ndarray:
        """(N, C, T) column predictions -> (N, T)."""
        return np.einsum("nct,tc->nt", column_means, self.coef) + self.intercept[None, :]

    def predict(self, preds: list[Prediction]) -> Prediction:
        """Stacked mean from all members' predictions (listed in member order); the std is the
        uniform-mixture spread of the members (see :func:`combine`)."""
        cols = np.stack([np.mean([preds[m].mean for m in col], axis=0) for col in self.columns], axis=1)
        spread = combine(preds, np.full(len(preds), 1.0 / len(preds)))
        return Prediction(self.apply(cols), spread.std)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "ridge",
            "alpha": self.alpha,
            "columns": self.columns,
            "coef": self.coef.tolist(),
            "intercept": self.intercept.tolist(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Stacker:
        try:
            coef = np.asarray(data["coef"], dtype=float)
            intercept = np.asarray(data["intercept"], dtype=float)
            columns = [list(map(int, c)) for c in data["columns"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"stacker: malformed entry in scorecast.json ({exc})") from exc
        if coef.shape != (len(intercept), len(columns)):
            raise BundleError(f"stacker: expected coef of shape ({len(intercept)}, {len(columns)}), got {coef.shape}")
        return cls(columns, coef, intercept, float(data.get("alpha", 1.0)))


# ---------------------------------------------------------------- ensembles of whole runs' scorers


@dataclass
class LinearForm:
    """``out[:, t] = intercept[t] + sum_c coef[t, c] * mean(member predictions in columns[c])``."""

    columns: list[list[int]]
    coef: np.ndarray  # (T, C)
    intercept: np.ndarray  # (T,)

    @classmethod
    def of_bundle(cls, bundle, n_targets: int) -> LinearForm:
        if bundle.stacker is not None:
            s = bundle.stacker
            return cls([list(c) for c in s.columns], np.asarray(s.coef, float), np.asarray(s.intercept, float))
        w = np.asarray(bundle.weights, dtype=float)
        w = w / w.sum() if w.sum() > 0 else np.full(len(w), 1.0 / len(w))
        return cls([[m] for m in range(len(w))], np.tile(w, (n_targets, 1)), np.zeros(n_targets))


def compose(forms: list[LinearForm], sizes: list[int], run_coef: np.ndarray, intercept: np.ndarray) -> Stacker:
    """One Stacker over all runs' members (listed run after run; ``sizes`` members each) from each
    run's linear form, weighed per target by ``run_coef`` (T, R), plus ``intercept`` (T,)."""
    columns, coefs, offset = [], [], 0
    total_intercept = np.asarray(intercept, dtype=float).copy()
    for r, (form, size) in enumerate(zip(forms, sizes)):
        columns += [[offset + m for m in col] for col in form.columns]
        coefs.append(run_coef[:, r : r + 1] * form.coef)
        total_intercept += run_coef[:, r] * form.intercept
        offset += size
    return Stacker(columns, np.concatenate(coefs, axis=1), total_intercept)


def stack_folds(fold: np.ndarray | None, n: int, seed: int) -> list[np.ndarray]:
    """Fold label per item for cross-fitting the stacker: the first run's folds, else 5 random folds."""
    if fold is not None:
        labels = np.asarray(fold, dtype=int)
        if (labels >= 0).all() and len(np.unique(labels)) >= 2:
            return [np.flatnonzero(labels == k) for k in np.unique(labels)]
    from sklearn.model_selection import KFold

    k = min(5, n)
    if k < 2:
        raise ConfigError(f"ensemble --weights stack: expected at least 2 out-of-fold items, got {n}")
    return [va for _, va in KFold(k, shuffle=True, random_state=seed).split(np.arange(n))]


def cross_fitted_stack(cols: np.ndarray, truth: np.ndarray, folds: list[np.ndarray]) -> np.ndarray:
    """(N, T) stacked out-of-fold predictions: each fold from a ridge fitted on the other folds' rows."""
    out = np.full(truth.shape, np.nan)
    for val in folds:
        train = np.setdiff1d(np.arange(len(truth)), val)
        out[val] = Stacker.fit([[c] for c in range(cols.shape[1])], cols[train], truth[train]).apply(cols[val])
    return out


def finite_or_none(x: float) -> float | None:
    """JSON-safe float (NaN/inf -> None)."""
    return float(x) if x is not None and math.isfinite(x) else None
