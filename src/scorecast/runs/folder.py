"""The run folder (``scorecast cv`` / ``scorecast train``) and the metrics that go in it.

::

    RUN/
      recipe.yaml    resolved recipe
      items.csv      id, group, targets (what was trained on)
      oof.csv        id, fold, group, <target>, pred.<target>, std.<target> (where given)
      metrics.json   {"targets": {t: {"utterance": {m: {value, low, high}}, "system": {...}}},
                      "folds": [{"fold", "seed", "repeat", t: {m: value}}], "per_bin": {t: [...]},
                      "test": {...} (with test_data)}
      history.csv    fold, seed, repeat, epoch, train_loss, val_loss, val_<metric>...
      predictions.csv (with test_data) id, group, <target> (truth, where known), pred.<target>, std.<target>
      skipped.csv    (written by the CLI) rows and items left out with data.on_error: skip, and why
      bundle/        the trained scorer
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scorecast.config import Recipe, TargetSpec, save_recipe
from scorecast.data.items import ItemSet
from scorecast.jsonsafe import clean_json, json_default

#: above this many score levels, per-bin RMSE uses this many equal-width bins instead
MAX_LEVEL_BINS = 20


@dataclass
class RunResult:
    """What a ``run_cv`` / ``run_train`` call produced (and wrote under ``out_dir``)."""

    out_dir: Path
    metrics: dict[str, Any]
    oof: Any  # pandas.DataFrame
    members: list
    weights: np.ndarray
    stacker: Any = None
    history: Any = None  # pandas.DataFrame
    bundle_path: Path | None = None
    predictions: Any = None  # pandas.DataFrame of the test data, where recipe.test_data is set
    extra: dict[str, Any] = field(default_factory=dict)


def is_global_zero() -> bool:
    """True on the process that writes files (rank 0 under DDP; always in a single process)."""
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    return int(getattr(rank_zero_only, "rank", 0) or 0) == 0


def close_distributed() -> None:
    """End a DDP process group that Lightning left open: all ranks meet, then the group is destroyed.

    Left open, gloo's worker threads can still be alive while the interpreter exits, and the process
    aborts ("terminate called without an active exception", exit -6) after its work is done. Imports
    nothing: a run that never touched torch has no group to close."""
    torch = sys.modules.get("torch")
    if torch is None:
        return
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def per_bin_edges(target: TargetSpec) -> np.ndarray:
    """Edges half a step around each score level; equal-width bins when there are too many levels."""
    if target.num_bins <= MAX_LEVEL_BINS:
        from scorecast.models.bins import bin_edges

        return bin_edges(target)
    return np.linspace(target.low, target.high, 11)


def usable_groups(groups: list | None) -> list | None:
    """The groups list when every item has one, else None."""
    if groups is None or any(g is None for g in groups):
        return None
    return list(groups)


def evaluate_predictions(
    recipe: Recipe,
    preds: np.ndarray,
    target: np.ndarray,
    groups: list | None,
    *,
    bootstrap: int | None = None,
    metrics: list[str] | None = None,
) -> dict[str, Any]:
    """{"targets": {t: compute_metrics(...)}, "per_bin": {t: [...]}} for predictions (N, T) vs truth (N, T)."""
    from scorecast.metrics.functional import MetricWarning, compute_metrics, per_bin_rmse

    ev = recipe.evaluate
    names = metrics if metrics is not None else ev.metrics
    n_boot = ev.bootstrap if bootstrap is None else bootstrap
    grp = usable_groups(groups) if ev.system_level else None
    out: dict[str, Any] = {"targets": {}, "per_bin": {}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)  # missing targets are expected; NaN pairs dropped
        for j, spec in enumerate(recipe.targets):
            ok = np.isfinite(target[:, j]) & np.isfinite(preds[:, j])
            if ok.sum() == 0:
                continue
            g = [grp[i] for i in np.flatnonzero(ok)] if grp is not None else None
            out["targets"][spec.name] = compute_metrics(
                preds[ok, j], target[ok, j], names=names, groups=g, bootstrap=n_boot, seed=recipe.training.seed
            )
            if ev.per_bin:
                edges = per_bin_edges(spec)
                # truth outside the declared range joins the end bins rather than vanishing
                edges[0] = min(edges[0], float(target[ok, j].min()))
                edges[-1] = max(edges[-1], float(target[ok, j].max()))
                rows = per_bin_rmse(preds[ok, j], target[ok, j], edges=edges)
                out["per_bin"][spec.name] = rows
    return out


def fold_metrics(recipe: Recipe, preds: np.ndarray, target: np.ndarray) -> dict[str, dict[str, float]]:
    """{target: {metric: value}} without intervals, for one fold's validation items: the recipe's
    evaluate.metrics and cv.weight_metric."""
    from scorecast.errors import ConfigError
    from scorecast.metrics.functional import METRICS

    if recipe.cv.weight_metric not in METRICS:
        raise ConfigError(
            f"cv.weight_metric: expected one of {', '.join(METRICS.names())}, got '{recipe.cv.weight_metric}'"
        )
    names = list(dict.fromkeys([*recipe.evaluate.metrics, recipe.cv.weight_metric]))
    table = evaluate_predictions(recipe, preds, target, None, bootstrap=0, metrics=names)["targets"]
    return {t: {m: e["value"] for m, e in res["utterance"].items()} for t, res in table.items()}


def mean_metric(per_target: dict[str, dict[str, float]], metric: str) -> float:
    """A metric averaged over targets (NaN when no target has it)."""
    vals = [m.get(metric) for m in per_target.values()]
    vals = [v for v in vals if v is not None and math.isfinite(v)]
    return float(np.mean(vals)) if vals else float("nan")


def write_run_folder(
    out_dir: Path,
    recipe: Recipe,
    items: ItemSet,
    oof,
    metrics: dict[str, Any],
    history,
    predictions=None,
) -> None:
    """Write recipe.yaml, items.csv, oof.csv, metrics.json, history.csv (and predictions.csv)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    save_recipe(recipe, out_dir / "recipe.yaml")
    frame = items.to_frame()
    keep = [
        c
        for c in frame.columns
        if c in ("id", "group") or c in recipe.target_names or c.split(".")[0] in recipe.target_names
    ]
    frame[keep].to_csv(out_dir / "items.csv", index=False)
    oof.to_csv(out_dir / "oof.csv", index=False)
    (out_dir / "metrics.json").write_text(json.dumps(clean_json(metrics), indent=2, default=json_default))
    history.to_csv(out_dir / "history.csv", index=False)
    if predictions is not None:
        predictions.to_csv(out_dir / "predictions.csv", index=False)


def history_frame(rows: list[dict[str, Any]]):
    import pandas as pd

    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=["fold", "seed", "repeat", "epoch", "train_loss", "val_loss"])
    lead = [c for c in ("fold", "seed", "repeat", "epoch", "train_loss", "val_loss") if c in frame.columns]
    return frame[lead + [c for c in frame.columns if c not in lead]]


SKIPPED_COLUMNS = ["file", "row", "field", "id", "reason"]


def write_skipped(out_dir: Path, rows: list[dict[str, Any]], name: str = "skipped.csv") -> Path | None:
    """Write the rows and items left out (``SkippedRowsWarning.rows``) to ``out_dir/skipped.csv``:
    file, row, field, id, reason (empty where unknown). Nothing is written when none were left out."""
    import pandas as pd

    if not rows:
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    pd.DataFrame([{c: r.get(c) for c in SKIPPED_COLUMNS} for r in rows], columns=SKIPPED_COLUMNS).to_csv(
        path, index=False
    )
    return path
