"""Small-data guards of a run: folds whose validation correlation is negative or undefined, why an
ensemble member got the weight it did, and correlations whose interval includes zero.

Each check returns what it found (for metrics.json, the CLI, the model card and the report) and logs
a warning for the user; none of them changes a figure.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

CORRELATIONS = ("lcc", "srcc", "ktau")


def correlation_status(value: float | None) -> str:
    """``ok`` (> 0), ``negative`` (<= 0) or ``undefined`` (NaN / missing)."""
    if value is None or not math.isfinite(value):
        return "undefined"
    return "ok" if value > 0 else "negative"


def flag_fold(fold: dict[str, Any], targets: list[str]) -> dict[str, dict[str, str]]:
    """{target: {metric: negative | undefined}} of one ``metrics.json`` fold entry's correlations."""
    flags: dict[str, dict[str, str]] = {}
    for t in targets:
        for m, value in (fold.get(t) or {}).items():
            status = correlation_status(value) if m in CORRELATIONS else "ok"
            if status != "ok":
                flags.setdefault(t, {})[m] = status
    return flags


def flag_folds(folds: list[dict[str, Any]], targets: list[str]) -> list[str]:
    """Add ``flags`` to every fold entry whose validation correlation is negative or undefined;
    returns one warning per such fold."""
    out = []
    for fold in folds:
        flags = flag_fold(fold, targets)
        if not flags:
            continue
        fold["flags"] = flags
        what = "; ".join(
            f"{t} {m} {_num((fold.get(t) or {}).get(m))} ({status})"
            for t, ms in flags.items()
            for m, status in ms.items()
        )
        out.append(
            f"fold {fold.get('fold')} (seed {fold.get('seed')}, repeat {fold.get('repeat')}, {fold.get('n')} items): "
            f"validation {what}: this fold's model did not learn to rank its items"
        )
    return out


def member_weights(
    tags: list[dict[str, Any]], scores: list[float], weights: np.ndarray, kind: str, metric: str
) -> list[dict[str, Any]]:
    """One entry per member: its tags (fold, seed, repeat), its validation ``metric``, its ensemble
    weight, and why (``reason``), in words, for a zero weight or a uniform fallback."""
    from scorecast.inference.ensemble import LOWER_IS_BETTER_METRICS

    w = np.asarray(weights, dtype=float)
    v = np.asarray(scores, dtype=float)
    rows = []
    all_zero = kind == "weighted" and not np.any(np.isfinite(v) & (v > 0))  # metric_weights falls back to uniform
    for i, tag in enumerate(tags):
        value = float(v[i]) if i < len(v) else math.nan
        if kind != "weighted":
            reason = f"cv.ensemble={kind}: every member weighs the same"
        elif all_zero:
            reason = f"no member has a positive validation {metric}: uniform weights as a fallback"
        elif not math.isfinite(value):
            reason = f"validation {metric} undefined (NaN): a fold without a measurable fit does not vote"
        elif metric not in LOWER_IS_BETTER_METRICS and value <= 0:
            reason = f"validation {metric} {value:.3f} <= 0: a fold that learned nothing does not vote"
        elif metric in LOWER_IS_BETTER_METRICS:
            reason = f"weight proportional to 1 / validation {metric}"
        else:
            reason = f"weight proportional to validation {metric}"
        rows.append({**tag, "metric": metric, "value": value, "weight": float(w[i]), "reason": reason})
    return rows


def interval_warnings(metrics: dict[str, Any], label: str = "") -> list[str]:
    """A warning for every correlation whose bootstrap interval includes zero (or has none)."""
    out = []
    for target, levels in (metrics.get("targets") or {}).items():
        for level in ("utterance", "system"):
            for m, e in (levels.get(level) or {}).items():
                if m not in CORRELATIONS:
                    continue
                low, high = e.get("low"), e.get("high")
                if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
                    continue
                if low <= 0 <= high:
                    out.append(
                        f"{label}target '{target}' {level} {m} {_num(e.get('value'))}: its 95 % interval "
                        f"[{low:.3f}, {high:.3f}] includes zero, so the data cannot tell it from no correlation"
                    )
    return out


def _num(x: Any) -> str:
    return "n/a" if x is None or not isinstance(x, (int, float)) or not math.isfinite(x) else f"{x:.3f}"


def report_warnings(messages: list[str]) -> list[str]:
    """Log each message as a warning; returns them."""
    for msg in messages:
        log.warning(msg)
    return messages
