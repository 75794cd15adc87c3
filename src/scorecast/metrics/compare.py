"""A model against a baseline on the same items: ``scorecast evaluate ... --baseline OTHER``.

("model" is the user's predictions, so that "system" keeps meaning system level.) For each metric,
the two values, their difference with a paired bootstrap interval
(:func:`scorecast.metrics.paired_bootstrap`), the two-sided p-value of that same bootstrap, and a
verdict: ``better`` / ``worse`` when the interval excludes 0 (in the metric's good / bad direction),
else ``no clear difference``. Interval, p-value and verdict are one two-sided test.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

VERDICTS = ("better", "worse", "no clear difference")


def verdict(entry: dict[str, Any]) -> str:
    """The verdict of a :func:`paired_bootstrap` result (a NaN/None interval: no clear difference)."""
    low, high = entry.get("low"), entry.get("high")
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return VERDICTS[2]
    above, below = low > 0, high < 0
    if entry["higher_is_better"]:
        return VERDICTS[0] if above else VERDICTS[1] if below else VERDICTS[2]
    return VERDICTS[0] if below else VERDICTS[1] if above else VERDICTS[2]


def shared_items(
    baseline: str | Path, id_col: str, matched: Sequence[str], baseline_keys, n_boot: int
) -> tuple[list[str], dict[str, Any]]:
    """The matched (predictions x truth) keys the baseline also has, in their order, and the head of
    the ``comparison`` entry; warns when matched items or baseline rows are left out."""
    shared = [k for k in matched if k in baseline_keys]
    info = {
        "baseline": str(baseline),
        "baseline_id_column": id_col,
        "n_baseline": len(baseline_keys),
        "n_compared": len(shared),
        "dropped": len(matched) - len(shared),
        "unmatched_baseline": len(baseline_keys) - len(shared),
        "bootstrap": n_boot,
        "targets": {},
    }
    if not shared:
        from scorecast.errors import DataError

        raise DataError(
            f"the baseline has none of the {len(matched)} ids matched between predictions and truth; check --id-col and --match",
            file=baseline,
        )
    if info["dropped"] or info["unmatched_baseline"]:
        warnings.warn(
            f"baseline {baseline}: {info['dropped']} of the {len(matched)} matched id(s) have no baseline prediction "
            f"(dropped) and {info['unmatched_baseline']} baseline id(s) are not among them; comparing on the {len(shared)} in all three",
            stacklevel=3,
        )
    return shared, info


def compare_target(
    preds: Any, baseline: Any, target: Any, names: Sequence[str], n_boot: int, seed: int = 0, alpha: float = 0.05
) -> dict[str, Any]:
    """{"n": items scored, "utterance": {metric: {"model", "baseline", "value" (model - baseline),
    "low", "high", "p_value", "p_not_better", "higher_is_better", "verdict"}}}. Items where the model,
    the baseline or the truth is NaN are dropped for all metrics (one warning)."""
    from scorecast.metrics.functional import METRICS, MetricWarning, paired_bootstrap

    a, b, t = (np.asarray(x, dtype=float).reshape(-1) for x in (preds, baseline, target))
    keep = np.isfinite(a) & np.isfinite(b) & np.isfinite(t)
    if not keep.all():
        warnings.warn(
            f"comparison: dropped {int((~keep).sum())} of {keep.size} items with NaN in the predictions, the baseline or the truth",
            MetricWarning,
            stacklevel=2,
        )
        a, b, t = a[keep], b[keep], t[keep]
    table = {}
    for name in names:
        fn = METRICS.get(name)
        with warnings.catch_warnings(record=True) as caught:  # the model's were shown with its own metrics
            warnings.simplefilter("always", MetricWarning)
            base = fn(b, t)
        for w in caught:
            warnings.warn(f"baseline: {w.message}", MetricWarning, stacklevel=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MetricWarning)
            model = fn(a, t)
            diff = paired_bootstrap(fn, a, b, t, n=n_boot, seed=seed, alpha=alpha)
        table[name] = {"model": model, "baseline": base, **diff}
        table[name]["verdict"] = verdict(table[name])
    return {"n": int(t.size), "utterance": table}


def print_comparison(comparison: dict[str, Any], console) -> None:
    """One rich table per target: metric, model, baseline, difference, interval, two-sided p, verdict."""
    from rich.table import Table

    def num(x: float | None) -> str:
        return "-" if x is None or not np.isfinite(x) else f"{x:.4f}"

    console.print(
        f"baseline {comparison['baseline']}: comparing on {comparison['n_compared']} ids in all three tables "
        f"({comparison['dropped']} matched id(s) without a baseline prediction dropped; "
        f"{comparison['unmatched_baseline']} baseline row(s) unmatched)",
        highlight=False,
    )
    for name, entry in comparison["targets"].items():
        table = Table(title=f"{name}: model vs baseline (n={entry['n']}, {comparison['bootstrap']} paired resamples)")
        for col in ("metric", "model", "baseline", "diff", "95% CI", "p (two-sided)", "verdict"):
            table.add_column(col, justify="left" if col in ("metric", "verdict") else "right", no_wrap=col == "metric")
        for metric, r in entry["utterance"].items():
            interval = "-" if num(r["low"]) == "-" else f"[{num(r['low'])}, {num(r['high'])}]"
            table.add_row(
                metric.upper(),
                num(r["model"]),
                num(r["baseline"]),
                num(r["value"]),
                interval,
                num(r["p_value"]),
                r["verdict"],
            )
        up = [m.upper() for m, r in entry["utterance"].items() if r["higher_is_better"]]
        down = [m.upper() for m, r in entry["utterance"].items() if not r["higher_is_better"]]
        table.caption = (
            "diff = model - baseline; better = "
            + "; ".join([f"higher {'/'.join(up)}"] * bool(up) + [f"lower {'/'.join(down)}"] * bool(down))
            + "; better/worse when the 95% interval excludes 0 (then p < 0.05), else no clear difference"
        )
        console.print(table)
