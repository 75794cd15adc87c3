"""Ensembles across run folders (``scorecast ensemble RUN1 RUN2 ... -o OUT``).

Several runs of the same data and targets (recipe variants, seeds, other encoders) become one run
folder whose scorer is the weighted combination of every run's scorer:

* ``mean``: every run weighs the same;
* ``metric``: each run weighs by its out-of-fold ``metric`` (averaged over targets; a negative or
  NaN correlation weighs 0, error metrics weigh by their inverse: see
  :func:`scorecast.training.ensemble.metric_weights`);
* ``stack``: a ridge per target on the runs' out-of-fold predictions. The out-of-fold predictions of
  the stacked ensemble are cross-fitted (the ridge of each fold of the first run is fitted on the
  other folds' rows), so its metrics are not fitted on the items they score; the bundle's ridge is
  fitted on all rows.

The bundle holds the union of all runs' members (each keeps its own features and normalisation) and
the union of their encoders (one per feature name; two runs that give the same feature name to
different encoders are refused). Each run's own combination (member weights or ridge stacker) is
linear, so the whole ensemble is one: plain member weights ``W_run * w_member`` where no ridge is
involved, else one :class:`~scorecast.training.ensemble.Stacker` whose columns are all runs'
columns. ``Bundle.predict_features`` on features holding every needed feature gives the ensemble.
"""

from __future__ import annotations

import json
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scorecast.config import EncoderSpec, Recipe, load_recipe, save_recipe
from scorecast.errors import ConfigError, DataError
from scorecast.inference.ensemble import (
    LinearForm,
    Stacker,
    combine,
    compose,
    cross_fitted_stack,
    finite_or_none,
    metric_weights,
    stack_folds,
)
from scorecast.inference.frames import prediction_frame
from scorecast.inference.members import Prediction
from scorecast.jsonsafe import clean_json, json_default, json_differences
from scorecast.runs.folder import RunResult, evaluate_predictions, fold_metrics, mean_metric
from scorecast.runs.outdir import check_output_dir, staged_output_dir

WEIGHT_KINDS = ("mean", "metric", "stack")


@dataclass
class RunFolder:
    """A run folder as the ensemble reads it: its recipe, its out-of-fold table and its bundle."""

    path: Path
    recipe: Recipe
    oof: Any  # pandas.DataFrame
    bundle: Any  # scorecast.bundle.Bundle

    @property
    def ids(self) -> list[str]:
        return [str(i) for i in self.oof["id"]]


def read_run(path: str | Path) -> RunFolder:
    """Read RUN/recipe.yaml, RUN/oof.csv and RUN/bundle; each missing part is named."""
    import pandas as pd

    from scorecast.inference.bundle import load_bundle

    root = Path(path)
    if not root.is_dir():
        raise ConfigError(
            f"ensemble: expected a run folder (written by scorecast cv/train), got {root}, which is not a folder"
        )
    for name in ("recipe.yaml", "oof.csv", "bundle"):
        if not (root / name).exists():
            raise ConfigError(
                f"ensemble: run {root} has no {name}; expected a run folder written by scorecast cv or train"
            )
    recipe = load_recipe(root / "recipe.yaml")
    oof = pd.read_csv(root / "oof.csv", dtype={"id": str, "group": str})
    need = ["id"] + [c for t in recipe.target_names for c in (t, f"pred.{t}")]
    missing = [c for c in need if c not in oof.columns]
    if missing:
        raise DataError(f"expected columns {need}; missing {missing} (got {list(oof.columns)})", file=root / "oof.csv")
    dup = oof["id"][oof["id"].duplicated()]
    if len(dup):
        raise DataError(
            f"expected one row per item id; id '{dup.iloc[0]}' appears more than once",
            file=root / "oof.csv",
            row=int(dup.index[0]) + 2,
        )
    return RunFolder(root, recipe, oof, load_bundle(root / "bundle"))


def check_compatible(runs: list[RunFolder]) -> None:
    """The runs must share targets (names, order, ranges), item ids and true scores; errors name the run."""
    first = runs[0]
    base_targets = [t.model_dump() for t in first.recipe.targets]
    base_ids = set(first.ids)
    for run in runs[1:]:
        targets = [t.model_dump() for t in run.recipe.targets]
        if targets != base_targets:
            raise ConfigError(
                f"ensemble: run {run.path} predicts targets {_describe_targets(run.recipe)}, but run {first.path} "
                f"predicts {_describe_targets(first.recipe)}; expected the same targets (names, order, low, high, step)"
            )
        ids = set(run.ids)
        if ids != base_ids:
            only_here, only_first = sorted(ids - base_ids), sorted(base_ids - ids)
            raise DataError(
                f"ensemble: expected the same item ids as run {first.path} ({len(base_ids)} items), got {len(ids)}: "
                f"{len(only_first)} missing (e.g. {only_first[:3]}), {len(only_here)} extra (e.g. {only_here[:3]}); "
                "ensemble runs of the same data (cv runs, or train runs with the same held-out part)",
                file=run.path / "oof.csv",
            )
        order = run.oof.set_index("id").loc[first.ids]
        for t in first.recipe.target_names:
            a = first.oof[t].to_numpy(dtype=float)
            b = order[t].to_numpy(dtype=float)
            same = np.isclose(a, b, rtol=1e-6, atol=1e-6) | (np.isnan(a) & np.isnan(b))
            if not same.all():
                k = int(np.flatnonzero(~same)[0])
                raise DataError(
                    f"ensemble: item '{first.ids[k]}' has true {t} {b[k]!r} here but {a[k]!r} in run {first.path} "
                    f"({int((~same).sum())} item(s) differ); expected runs of the same data",
                    file=run.path / "oof.csv",
                    field=t,
                )


def _describe_targets(recipe: Recipe) -> str:
    return ", ".join(f"{t.name} [{t.low:g}, {t.high:g}] step {t.step:g}" for t in recipe.targets)


def run_oof(run: RunFolder, ids: list[str], target_names: list[str]) -> Prediction:
    """The run's out-of-fold Prediction (N, T) in the order of ``ids`` (std where oof.csv has it)."""
    frame = run.oof.set_index("id").loc[ids]
    mean = np.stack([frame[f"pred.{t}"].to_numpy(dtype=float) for t in target_names], axis=1)
    has_std = all(f"std.{t}" in frame.columns for t in target_names)
    std = np.stack([frame[f"std.{t}"].to_numpy(dtype=float) for t in target_names], axis=1) if has_std else None
    if std is not None and not np.isfinite(std).all():
        std = None
    return Prediction(mean, std)


def union_encoders(runs: list[RunFolder]) -> tuple[list[EncoderSpec], dict[str, dict], dict[str, int]]:
    """(specs, identities, dims) over all runs, one per feature name, in first-seen order.

    The same feature name must mean the same encoder (spec, identity and dimension) in every run;
    a spec that keeps sequences in one run keeps them in the union.
    """
    specs: dict[str, EncoderSpec] = {}
    identities: dict[str, dict] = {}
    dims: dict[str, int] = {}
    owner: dict[str, Path] = {}
    for run in runs:
        b = run.bundle
        for spec in b.encoder_specs:
            name = spec.feature_name
            dim = b.feature_dims.get(name)
            ident = b.encoder_identities.get(name)
            if name not in specs:
                specs[name], owner[name] = spec, run.path
                if dim is not None:
                    dims[name] = int(dim)
                if ident is not None:
                    identities[name] = ident
                continue
            theirs = {
                "spec": specs[name].model_dump(mode="json", exclude={"sequence"}),
                "identity": identities.get(name),
                "dim": dims.get(name),
            }
            mine = {"spec": spec.model_dump(mode="json", exclude={"sequence"}), "identity": ident, "dim": dim}
            diffs = json_differences(theirs, mine)
            if diffs:
                raise ConfigError(
                    f"ensemble: feature '{name}' names different encoders in run {owner[name]} and run {run.path}; "
                    f"expected the same encoder under the same feature name; differences: "
                    + "; ".join(f"{key}: {a!r} there, {b!r} here" for key, a, b in diffs)
                    + " (give one of them another alias in its recipe)"
                )
            if spec.sequence and not specs[name].sequence:
                specs[name] = specs[name].model_copy(update={"sequence": True})
    return list(specs.values()), identities, dims


def ensemble_runs(
    run_dirs: list[str | Path],
    out_dir: str | Path,
    *,
    weights: str = "mean",
    metric: str = "lcc",
    name: str | None = None,
    overwrite: bool = False,
) -> RunResult:
    """Combine the scorers of ``run_dirs`` into one run folder ``out_dir`` (see the module docstring);
    an existing ``out_dir`` holding files is refused unless ``overwrite`` (then replaced whole)."""
    from scorecast.metrics.functional import METRICS
    from scorecast.runs.cv import clip_to_targets

    if weights not in WEIGHT_KINDS:
        raise ConfigError(f"ensemble --weights: expected one of {', '.join(WEIGHT_KINDS)}, got '{weights}'")
    if metric not in METRICS:
        raise ConfigError(f"ensemble --metric: expected one of {', '.join(METRICS.names())}, got '{metric}'")
    if name is not None:
        try:
            load_recipe({"name": name})  # the rule a recipe's name follows: one plain path component
        except ConfigError as exc:
            raise ConfigError(f"ensemble --name {name!r}: {str(exc).splitlines()[-1].strip()}") from exc
    paths = [Path(p) for p in run_dirs]
    if len(paths) < 2:
        raise ConfigError(f"ensemble: expected at least two run folders, got {len(paths)}")
    seen = {}
    for p in paths:
        key = p.resolve()
        if key in seen:
            raise ConfigError(f"ensemble: run {p} is given twice (also as {seen[key]})")
        seen[key] = p
    out = Path(out_dir)
    if out.resolve() in seen:
        raise ConfigError(f"ensemble: the output folder {out} is one of the runs; expected a new folder")
    check_output_dir(out, overwrite)

    runs = [read_run(p) for p in paths]
    check_compatible(runs)
    first = runs[0]
    target_names = first.recipe.target_names
    ids = first.ids
    n_t = len(target_names)
    truth = np.stack([first.oof[t].to_numpy(dtype=float) for t in target_names], axis=1)
    groups = (
        [None if _missing(g) else str(g) for g in first.oof["group"]]
        if "group" in first.oof.columns
        else [None] * len(ids)
    )
    fold = first.oof["fold"].to_numpy() if "fold" in first.oof.columns else None
    preds = [run_oof(run, ids, target_names) for run in runs]

    recipe = ensemble_recipe(runs, name)
    scores = [oof_score(recipe, p.mean, truth, metric) for p in preds]
    forms = [LinearForm.of_bundle(run.bundle, n_t) for run in runs]
    sizes = [len(run.bundle.members) for run in runs]
    members = [m for run in runs for m in run.bundle.members]
    uniform = np.full(len(runs), 1.0 / len(runs))
    stacker = None
    if weights == "stack":
        cols = np.stack([p.mean for p in preds], axis=1)  # (N, R, T)
        top = Stacker.fit([[r] for r in range(len(runs))], cols, truth)
        run_weights = top.coef  # (T, R)
        oof_mean = cross_fitted_stack(cols, truth, stack_folds(fold, len(ids), recipe.training.seed))
        oof = Prediction(oof_mean, combine(preds, uniform).std)
        stacker = compose(forms, sizes, top.coef, top.intercept)
        member_weights = np.full(len(members), 1.0 / len(members))
    else:
        w = uniform if weights == "mean" else metric_weights(scores, metric)
        run_weights = w
        oof = combine(preds, w)
        if any(run.bundle.stacker is not None for run in runs):
            stacker = compose(forms, sizes, np.tile(w, (n_t, 1)), np.zeros(n_t))
            member_weights = np.full(len(members), 1.0 / len(members))
        else:
            member_weights = np.concatenate([w[r] * forms[r].coef[0] for r in range(len(runs))])
    oof.mean = clip_to_targets(recipe, oof.mean)

    metrics = evaluate_predictions(recipe, oof.mean, truth, groups)
    metrics["folds"] = _fold_table(recipe, oof.mean, truth, fold)
    run_table = [
        {
            "run": str(run.path),
            "name": run.recipe.name,
            "members": size,
            metric: finite_or_none(score),
            "weight": np.asarray(run_weights)[..., r].tolist(),
            "fusion": run.recipe.model.fusion.name,
            "head": run.recipe.model.head.name,
            "encoders": [s.feature_name for s in run.bundle.encoder_specs],
        }
        for r, (run, size, score) in enumerate(zip(runs, sizes, scores))
    ]
    metrics["ensemble"] = {
        "kind": f"runs-{weights}",
        "metric": metric,
        "runs": run_table,
        "weights": member_weights.tolist(),
        "stacker": stacker.to_json() if stacker is not None else None,
    }
    oof_frame = prediction_frame(
        ids, [t.name for t in recipe.targets], oof.mean, oof.std, truth=truth, groups=groups, fold=fold
    )
    _, identities, dims = union_encoders(runs)
    with staged_output_dir(out, overwrite) as staging:
        result = _write(
            staging, recipe, runs, oof_frame, metrics, members, member_weights, stacker, identities, dims, run_table
        )
    result.out_dir, result.bundle_path = out, out / "bundle"
    return result


def _missing(value: Any) -> bool:
    import pandas as pd

    return value is None or bool(pd.isna(value))


def oof_score(recipe: Recipe, mean: np.ndarray, truth: np.ndarray, metric: str) -> float:
    """``metric`` of out-of-fold predictions (N, T) against the truth, averaged over targets."""
    table = evaluate_predictions(recipe, mean, truth, None, bootstrap=0, metrics=[metric])["targets"]
    return mean_metric({t: {m: e["value"] for m, e in res["utterance"].items()} for t, res in table.items()}, metric)


def _fold_table(recipe: Recipe, mean: np.ndarray, truth: np.ndarray, fold: np.ndarray | None) -> list[dict[str, Any]]:
    """Metrics of the ensemble's out-of-fold predictions on each fold of the first run."""
    if fold is None:
        return []
    rows = []
    for k in np.unique(fold):
        idx = np.flatnonzero(fold == k)
        if k < 0 or len(idx) < 2:
            continue
        rows.append({"fold": int(k), "n": int(len(idx)), **fold_metrics(recipe, mean[idx], truth[idx])})
    return rows


def ensemble_recipe(runs: list[RunFolder], name: str | None = None) -> Recipe:
    """The first run's recipe with the union of all runs' encoders, named ``<first>-ensemble``."""
    specs, _, _ = union_encoders(runs)
    first = runs[0].recipe
    listing = ", ".join(f"{r.recipe.name} ({r.path})" for r in runs)
    description = (first.description + "\n\n" if first.description else "") + (
        f"Ensemble of runs: {listing}. Its scorer is the bundle; re-running this recipe would train only the "
        "first run's model on the union of the runs' encoders."
    )
    data = first.data.model_copy(update={"options": merged_data_options(runs)})
    return first.model_copy(
        update={"name": name or f"{first.name}-ensemble", "encoders": specs, "description": description, "data": data}
    )


def merged_data_options(runs: list[RunFolder]) -> dict[str, Any]:
    """The first run's ``data.options`` with what the other runs' add (so the ensemble's reader reads
    every input any member needs): mappings are merged key by key, lists joined; where two runs set
    an option to different values the first run's is kept, with a warning naming the option."""
    merged = dict(runs[0].recipe.data.options)
    for run in runs[1:]:
        if run.recipe.data.reader != runs[0].recipe.data.reader:
            warnings.warn(
                f"ensemble: run {run.path} reads its data with reader '{run.recipe.data.reader}', run {runs[0].path} "
                f"with '{runs[0].recipe.data.reader}'; the ensemble's recipe keeps the first run's data settings",
                stacklevel=3,
            )
            continue
        merged = _merge(merged, run.recipe.data.options, f"run {run.path}: data.options", runs[0].path)
    return merged


def _merge(base: Any, extra: Any, where: str, first: Path) -> Any:
    if isinstance(base, dict) and isinstance(extra, dict):
        out = dict(base)
        for key, value in extra.items():
            out[key] = _merge(base[key], value, f"{where}.{key}", first) if key in base else value
        return out
    if isinstance(base, list) and isinstance(extra, list):
        return base + [v for v in extra if v not in base]
    if base != extra:
        warnings.warn(
            f"ensemble: {where} is {extra!r}, run {first} has {base!r}; the ensemble keeps {base!r}", stacklevel=4
        )
    return base


def _write(
    out, recipe, runs, oof_frame, metrics, members, member_weights, stacker, identities, dims, run_table
) -> RunResult:
    import pandas as pd

    from scorecast.inference.bundle import save_bundle

    out.mkdir(parents=True, exist_ok=True)
    save_recipe(recipe, out / "recipe.yaml")
    if (runs[0].path / "items.csv").is_file():
        shutil.copyfile(runs[0].path / "items.csv", out / "items.csv")
    oof_frame.to_csv(out / "oof.csv", index=False)
    (out / "metrics.json").write_text(json.dumps(clean_json(metrics), indent=2, default=json_default))
    parts = []
    for r, run in enumerate(runs):
        hist = run.path / "history.csv"
        if hist.is_file() and hist.stat().st_size > 0:
            frame = pd.read_csv(hist)
            frame.insert(0, "run", r)
            parts.append(frame)
    history = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["run"])
    history.to_csv(out / "history.csv", index=False)
    ensemble_info = {
        "runs": [{**row, "recipe": run.recipe.model_dump(mode="json")} for row, run in zip(run_table, runs)],
        "kind": metrics["ensemble"]["kind"],
        "metric": metrics["ensemble"]["metric"],
    }
    bundle_path = save_bundle(
        out / "bundle",
        recipe,
        members,
        member_weights,
        identities,
        dims,
        metrics=metrics,
        stacker=stacker,
        data_summary={"items": len(oof_frame), "runs": len(runs)},
        ensemble=ensemble_info,
        input_profile={k: v for run in runs for k, v in (run.bundle.input_profile or {}).items()} or None,
    )
    return RunResult(
        out, metrics, oof_frame, members, member_weights, stacker, history, bundle_path, None, {"runs": run_table}
    )
