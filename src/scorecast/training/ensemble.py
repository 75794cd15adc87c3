"""Ensembles of members: weights from each fold's validation metric, plain means, or a ridge stacker.

Combining: ``mean = sum_m w_m mu_m``; the predicted spread combines each member's own predicted
variance (heads that give one) with the spread of the members' means,
``std = sqrt(sum_m w_m var_m + sum_m w_m (mu_m - mean)^2)`` (the law of total variance). A single
member without a predicted std gives no std.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from scorecast.errors import BundleError, ConfigError
from scorecast.training.members import Prediction

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
                raise ConfigError(f"cv.ensemble=stack: target {t} has {int(ok.sum())} out-of-fold pairs; need at least 2")
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
            raise BundleError(
                f"stacker: expected coef of shape ({len(intercept)}, {len(columns)}), got {coef.shape}"
            )
        return cls(columns, coef, intercept, float(data.get("alpha", 1.0)))


def finite_or_none(x: float) -> float | None:
    """JSON-safe float (NaN/inf -> None)."""
    return float(x) if x is not None and math.isfinite(x) else None
