"""Metrics over ``(preds, target)``: utterance level, system level, per score bin, with bootstrap
confidence intervals.

Every metric is a plain function ``f(preds, target) -> float`` registered in ``METRICS`` (family
"metric"): ``mse``, ``rmse``, ``mae``, ``lcc`` (Pearson), ``srcc`` (Spearman), ``ktau``
(Kendall tau-b). Pairs where either value is NaN (or infinite) are dropped with a warning that
says how many; a correlation of a constant input is 0 with a warning (not NaN, not a crash); with
fewer than 2 pairs (1 for error metrics) the result is NaN with a warning. Warnings are
:class:`MetricWarning`. Each function has ``higher_is_better``.

System level (VoiceMOS/AudioMOS): predictions and targets are averaged per system (group), or the
system targets come from a given table (``system_truth``), and the metric is taken over systems.

Two systems on the same items: :func:`paired_bootstrap` (the difference, its interval, and how often
a resample finds the first not better).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scorecast.errors import DataError
from scorecast.registry import Registry

Metric = Callable[[Any, Any], float]
METRICS: Registry[Metric] = Registry("metric")


class MetricWarning(UserWarning):
    """A metric was computed on degraded input (NaN pairs dropped, constant input, too few pairs)."""


def _warn(message: str) -> None:
    warnings.warn(message, MetricWarning, stacklevel=3)


def clean_pairs(preds: Any, target: Any, name: str = "metric") -> tuple[np.ndarray, np.ndarray]:
    """(preds, target) as float arrays (N,) with NaN/inf pairs dropped (warning says how many)."""
    p = np.asarray(preds, dtype=float).reshape(-1)
    t = np.asarray(target, dtype=float).reshape(-1)
    if p.shape != t.shape:
        raise ValueError(f"{name}: expected preds and target of the same length, got {p.size} and {t.size}")
    keep = np.isfinite(p) & np.isfinite(t)
    if not keep.all():
        _warn(f"{name}: dropped {int((~keep).sum())} of {p.size} pairs with NaN or infinite values")
        p, t = p[keep], t[keep]
    return p, t


def _metric(name: str, higher_is_better: bool, min_pairs: int):
    def wrap(core: Callable[[np.ndarray, np.ndarray], float]) -> Metric:
        def metric(preds: Any, target: Any) -> float:
            p, t = clean_pairs(preds, target, name)
            if p.size < min_pairs:
                _warn(f"{name}: needs at least {min_pairs} valid pair(s), got {p.size}; returning NaN")
                return math.nan
            return float(core(p, t))

        metric.__name__ = name
        metric.__qualname__ = name
        metric.__doc__ = core.__doc__
        metric.higher_is_better = higher_is_better  # type: ignore[attr-defined]
        return METRICS.register(name)(metric)

    return wrap


def _constant(name: str, p: np.ndarray, t: np.ndarray) -> bool:
    which = [w for w, a in (("preds", p), ("target", t)) if np.ptp(a) == 0]
    if which:
        _warn(f"{name}: {' and '.join(which)} constant (zero variance); correlation set to 0")
        return True
    return False


def _pearson(p: np.ndarray, t: np.ndarray) -> float:
    dp, dt = p - p.mean(), t - t.mean()
    denom = math.sqrt(float(dp @ dp) * float(dt @ dt))
    return 0.0 if denom == 0 else float(np.clip((dp @ dt) / denom, -1.0, 1.0))


@_metric("mse", higher_is_better=False, min_pairs=1)
def mse(p: np.ndarray, t: np.ndarray) -> float:
    """Mean squared error."""
    return float(np.mean((p - t) ** 2))


@_metric("rmse", higher_is_better=False, min_pairs=1)
def rmse(p: np.ndarray, t: np.ndarray) -> float:
    """Root mean squared error."""
    return math.sqrt(float(np.mean((p - t) ** 2)))


@_metric("mae", higher_is_better=False, min_pairs=1)
def mae(p: np.ndarray, t: np.ndarray) -> float:
    """Mean absolute error."""
    return float(np.mean(np.abs(p - t)))


@_metric("lcc", higher_is_better=True, min_pairs=2)
def lcc(p: np.ndarray, t: np.ndarray) -> float:
    """Linear (Pearson) correlation coefficient."""
    return 0.0 if _constant("lcc", p, t) else _pearson(p, t)


@_metric("srcc", higher_is_better=True, min_pairs=2)
def srcc(p: np.ndarray, t: np.ndarray) -> float:
    """Spearman rank correlation coefficient (average ranks for ties)."""
    from scipy.stats import rankdata

    return 0.0 if _constant("srcc", p, t) else _pearson(rankdata(p), rankdata(t))


@_metric("ktau", higher_is_better=True, min_pairs=2)
def ktau(p: np.ndarray, t: np.ndarray) -> float:
    """Kendall rank correlation, tau-b (tie-corrected)."""
    from scipy.stats import kendalltau

    return 0.0 if _constant("ktau", p, t) else float(kendalltau(p, t, variant="b").statistic)


# ---------------------------------------------------------------------------------------------
# system level


@dataclass
class SystemScores:
    """Per-system means: ``systems`` (S,), ``preds`` (S,), ``target`` (S,), ``counts`` (S,) items."""

    systems: list[str]
    preds: np.ndarray
    target: np.ndarray
    counts: np.ndarray


def system_level(
    preds: Any,
    target: Any,
    groups: Sequence[object],
    system_truth: Mapping[str, float] | None = None,
) -> SystemScores:
    """Average predictions (and targets) per system, as VoiceMOS/AudioMOS do.

    ``system_truth`` (system -> score) replaces the averaged targets (``target`` may then be NaN);
    a system with predictions but no entry there is a DataError. Items without a group, or with a
    NaN prediction, are dropped with a warning.
    """
    p = np.asarray(preds, dtype=float).reshape(-1)
    t = np.asarray(target, dtype=float).reshape(-1) if target is not None else np.full(p.shape, np.nan)
    g = list(groups)
    if not (len(g) == p.size == t.size):
        raise ValueError(
            f"system_level: expected preds, target and groups of one length, got {p.size}, {t.size}, {len(g)}"
        )
    keep = np.array([x is not None and not (isinstance(x, float) and math.isnan(x)) for x in g], dtype=bool)
    keep &= np.isfinite(p) if system_truth is not None else np.isfinite(p) & np.isfinite(t)
    if not keep.all():
        _warn(f"system_level: dropped {int((~keep).sum())} of {p.size} items without a group or with NaN values")
    sums: dict[str, list[float]] = {}
    for i in np.flatnonzero(keep):
        acc = sums.setdefault(str(g[i]), [0.0, 0.0, 0])
        acc[0] += p[i]
        acc[1] += t[i]
        acc[2] += 1
    systems = sorted(sums)
    counts = np.array([sums[s][2] for s in systems], dtype=int)
    sys_preds = np.array([sums[s][0] / sums[s][2] for s in systems])
    if system_truth is None:
        sys_target = np.array([sums[s][1] / sums[s][2] for s in systems])
    else:
        missing = [s for s in systems if s not in system_truth]
        if missing:
            raise DataError(
                f"system truth: no score for {len(missing)} system(s) with predictions: "
                f"{', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}"
            )
        sys_target = np.array([float(system_truth[s]) for s in systems])
    return SystemScores(systems, sys_preds, sys_target, counts)


# ---------------------------------------------------------------------------------------------
# per-bin RMSE and bootstrap


def per_bin_rmse(preds: Any, target: Any, edges: Sequence[float] | np.ndarray | int = 5) -> list[dict[str, Any]]:
    """RMSE within bins of the target: ``edges`` (K+1,) bin edges, or a number of equal-width bins
    over the target's range. Bins are [low, high) except the last, [low, high]. Each entry:
    ``bin`` (label), ``low``, ``high``, ``n``, ``rmse`` (NaN where empty), ``bias`` (mean preds - target)."""
    p, t = clean_pairs(preds, target, "per_bin_rmse")
    if isinstance(edges, (int, np.integer)):
        if edges < 1:
            raise ValueError(f"per_bin_rmse: expected at least 1 bin, got {edges}")
        if t.size == 0:
            return []
        e = np.histogram_bin_edges(t, bins=int(edges))
    else:
        e = np.asarray(edges, dtype=float).reshape(-1)
        if e.size < 2 or not np.all(np.diff(e) > 0):
            raise ValueError(f"per_bin_rmse: expected increasing bin edges (at least 2), got {e.tolist()}")
    idx = np.searchsorted(e, t, side="right") - 1
    idx[t == e[-1]] = len(e) - 2
    out = []
    for k in range(len(e) - 1):
        mask = idx == k
        n = int(mask.sum())
        err = p[mask] - t[mask]
        last = k == len(e) - 2
        out.append(
            {
                "bin": f"[{e[k]:g}, {e[k + 1]:g}{']' if last else ')'}",
                "low": float(e[k]),
                "high": float(e[k + 1]),
                "n": n,
                "rmse": math.sqrt(float(np.mean(err**2))) if n else math.nan,
                "bias": float(np.mean(err)) if n else math.nan,
            }
        )
    return out


def _resolve(metric: Metric | str) -> Metric:
    return METRICS.get(metric) if isinstance(metric, str) else metric


def _bootstrap_draws(statistic: Callable[[np.ndarray], float], size: int, n: int, seed: int) -> np.ndarray:
    """``statistic(i)`` on ``n`` resamples ``i`` (``size`` indices drawn with replacement, one
    ``rng.integers`` call per resample from ``default_rng(seed)``), MetricWarnings silenced."""
    rng = np.random.default_rng(seed)
    draws = np.empty(n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        for k in range(n):
            draws[k] = statistic(rng.integers(0, size, size=size))
    return draws


def bootstrap_ci(
    metric: Metric | str,
    preds: Any,
    target: Any,
    n: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(value, low, high): the metric on all pairs and the percentile bootstrap interval at level
    1 - alpha from ``n`` resamples (with replacement) of the pairs."""
    fn = _resolve(metric)
    if not 0 < alpha < 1:
        raise ValueError(f"bootstrap_ci: expected 0 < alpha < 1, got {alpha}")
    p, t = clean_pairs(preds, target, getattr(fn, "__name__", "metric"))
    value = fn(p, t)
    if n <= 0 or p.size < 2:
        return value, math.nan, math.nan
    draws = _bootstrap_draws(lambda i: fn(p[i], t[i]), p.size, n, seed)
    if np.all(np.isnan(draws)):
        return value, math.nan, math.nan
    low, high = np.nanpercentile(draws, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return value, float(low), float(high)


def paired_bootstrap(
    metric: Metric | str,
    preds_a: Any,
    preds_b: Any,
    target: Any,
    n: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Is system a better than system b on the same items? A paired percentile bootstrap::

        {"value": metric(a) - metric(b), "low", "high", "p_value", "p_not_better", "higher_is_better"}

    ``low``/``high``: the interval at level 1 - alpha of the difference over ``n`` resamples of the
    items, the same resampled items scoring both systems (draws as in :func:`bootstrap_ci`).
    ``p_not_better``: the share of resamples (with a finite difference) where a is not better than b,
    "better" following the metric's ``higher_is_better``; ties count as not better. ``p_value``: the
    two-sided test that goes with the two-sided interval, ``2 * min(share <= 0, share >= 0)`` (at most
    1): the interval at level 1 - alpha excludes 0 about when ``p_value < alpha``. An item is dropped
    (with a warning) when a, b or the target is NaN or infinite, so both are scored on the same items.
    ``n <= 0`` or fewer than 2 items: NaN interval and p_not_better.
    """
    fn = _resolve(metric)
    name = getattr(fn, "__name__", "metric")
    higher = getattr(fn, "higher_is_better", None)
    if higher is None:
        raise ValueError(
            f"paired_bootstrap: expected a metric with a higher_is_better attribute (as METRICS have), got {name}"
        )
    if not 0 < alpha < 1:
        raise ValueError(f"paired_bootstrap: expected 0 < alpha < 1, got {alpha}")
    a_all = np.asarray(preds_a, dtype=float).reshape(-1)
    b_all = np.asarray(preds_b, dtype=float).reshape(-1)
    if a_all.shape != b_all.shape:
        raise ValueError(f"{name}: expected preds_a and preds_b of the same length, got {a_all.size} and {b_all.size}")
    # a is hidden where b is missing, so clean_pairs drops (and counts) every item missing anywhere
    a, t = clean_pairs(np.where(np.isfinite(b_all), a_all, np.nan), target, name)
    b = b_all[np.isfinite(a_all) & np.isfinite(b_all) & np.isfinite(np.asarray(target, dtype=float).reshape(-1))]
    out: dict[str, Any] = {
        "value": fn(a, t) - fn(b, t),
        "low": math.nan,
        "high": math.nan,
        "p_not_better": math.nan,
        "p_value": math.nan,
        "higher_is_better": bool(higher),
    }
    if n <= 0 or t.size < 2:
        return out
    draws = _bootstrap_draws(lambda i: fn(a[i], t[i]) - fn(b[i], t[i]), t.size, n, seed)
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return out
    low, high = np.percentile(draws, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    not_better = draws <= 0 if higher else draws >= 0
    two_sided = min(1.0, 2 * min(float(np.mean(draws <= 0)), float(np.mean(draws >= 0))))
    out.update(low=float(low), high=float(high), p_not_better=float(np.mean(not_better)), p_value=two_sided)
    return out


def compute_metrics(
    preds: Any,
    target: Any,
    names: Sequence[str] | None = None,
    groups: Sequence[object] | None = None,
    bootstrap: int = 0,
    system_truth: Mapping[str, float] | None = None,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, Any]:
    """Several metrics at once::

        {"n": N, "utterance": {name: {"value", "low", "high"}},
         "n_systems": S, "system": {name: {...}}}      # system entries only with ``groups``

    ``low``/``high`` are bootstrap bounds (``bootstrap`` resamples; None when 0).
    """
    names = list(names) if names is not None else ["mse", "rmse", "mae", "lcc", "srcc", "ktau"]
    fns = {name: METRICS.get(name) for name in names}
    p_all = np.asarray(preds, dtype=float).reshape(-1)
    t_all = np.asarray(target, dtype=float).reshape(-1) if target is not None else np.full(p_all.shape, np.nan)
    if p_all.shape != t_all.shape:
        raise ValueError(
            f"compute_metrics: expected preds and target of the same length, got {p_all.size} and {t_all.size}"
        )
    keep = np.isfinite(p_all) & np.isfinite(t_all)
    if not keep.all():
        _warn(f"compute_metrics: dropped {int((~keep).sum())} of {p_all.size} pairs with NaN or infinite values")
    p, t = p_all[keep], t_all[keep]
    out: dict[str, Any] = {"n": int(p.size), "utterance": _table(fns, p, t, bootstrap, alpha, seed)}
    if groups is not None:
        groups = list(groups)
        if len(groups) != p_all.size:
            raise ValueError(f"compute_metrics: expected one group per pair, got {len(groups)} for {p_all.size}")
        # with a system truth table only the predictions need to be there
        sys_keep = np.flatnonzero(np.isfinite(p_all) if system_truth is not None else keep)
        sys = system_level(p_all[sys_keep], t_all[sys_keep], [groups[i] for i in sys_keep], system_truth)
        out["n_systems"] = len(sys.systems)
        out["system"] = _table(fns, sys.preds, sys.target, bootstrap, alpha, seed)
    return out


#: metrics that are undefined when the predictions or the truth do not vary (a table reports them as null)
CORRELATIONS = ("lcc", "srcc", "ktau")


def undefined_reason(name: str, p: np.ndarray, t: np.ndarray) -> str | None:
    """Why metric ``name`` is undefined on these pairs (a correlation of a constant), or None."""
    if name not in CORRELATIONS or p.size < 2:
        return None
    which = [w for w, a in (("truth", t), ("predictions", p)) if np.ptp(a) == 0]
    if which:
        return f"undefined: the {' and the '.join(which)} are constant (zero variance)"
    return None


def _table(fns: dict[str, Metric], p: np.ndarray, t: np.ndarray, bootstrap: int, alpha: float, seed: int):
    """{name: {value, low, high}}; a correlation of constant values is ``{value: None, ..., reason}``."""
    table = {}
    for name, fn in fns.items():
        reason = undefined_reason(name, p, t)
        if reason is not None:
            table[name] = {"value": None, "low": None, "high": None, "reason": reason}
        elif bootstrap > 0:
            value, low, high = bootstrap_ci(fn, p, t, n=bootstrap, alpha=alpha, seed=seed)
            table[name] = {"value": value, "low": low, "high": high}
        else:
            table[name] = {"value": fn(p, t), "low": None, "high": None}
    return table
