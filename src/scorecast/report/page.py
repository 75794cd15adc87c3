"""``scorecast report RUN``: PNG plots and one HTML page for a run folder.

Reads the run folder that ``scorecast cv`` / ``scorecast train`` write (docs/internals.md):
``oof.csv`` and ``metrics.json`` (required), ``recipe.yaml``, ``history.csv`` and
``bundle/MODEL_CARD.md`` (used where present), and writes ``RUN/report/``::

    index.html                 metrics tables, the figures (embedded), the resolved recipe, the model card
    scatter_<target>.png       predicted vs true, identity line
    residuals_<target>.png     residuals by true-score bin (box plots)
    folds_<target>.png         per-fold LCC / SRCC / RMSE with bootstrap 95 % intervals
    calibration_<target>.png   predicted std vs actual RMSE (where the scorer gives a spread)
    system_<target>.png        per-system means (where items have groups shared by several items)
    learning_curves.png        train/validation loss and the validation metric per epoch, per fold
"""

from __future__ import annotations

import base64
import html
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scorecast.errors import DataError
from scorecast.report import plots

FOLD_METRICS = ("lcc", "srcc", "rmse")
FOLD_BOOTSTRAP = 200


@dataclass
class TargetInfo:
    name: str
    low: float | None = None
    high: float | None = None
    spec: Any = None  # scorecast.config.TargetSpec where the recipe could be read


@dataclass
class RunData:
    """A run folder's contents, as the report uses them."""

    run_dir: Path
    oof: Any  # pandas.DataFrame
    metrics: dict[str, Any]
    targets: list[TargetInfo]
    recipe_text: str = ""
    recipe: Any = None
    history: Any = None
    model_card: str | None = None
    notes: list[str] = field(default_factory=list)


def load_run(run_dir: str | Path) -> RunData:
    """Read what the report needs from ``run_dir``; a missing ``oof.csv`` / ``metrics.json`` or an
    ``oof.csv`` without prediction columns is a DataError naming the file."""
    import pandas as pd

    run = Path(run_dir)
    if not run.is_dir():
        raise DataError(
            f"expected a run folder (written by `scorecast cv` or `scorecast train`), got no folder at {run}"
        )
    oof_path, metrics_path = run / "oof.csv", run / "metrics.json"
    for p in (oof_path, metrics_path):
        if not p.is_file():
            raise DataError(
                f"run folder {run}: expected {p.name} (written by `scorecast cv` / `scorecast train`), not found",
                file=p,
            )
    oof = pd.read_csv(oof_path)
    try:
        metrics = json.loads(metrics_path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON: {exc}", file=metrics_path) from exc
    data = RunData(run, oof, metrics, [])
    recipe_path = run / "recipe.yaml"
    if recipe_path.is_file():
        data.recipe_text = recipe_path.read_text()
        from scorecast.config import load_recipe
        from scorecast.errors import ConfigError

        try:
            data.recipe = load_recipe(recipe_path)
        except ConfigError as exc:
            msg = f"recipe.yaml could not be loaded ({exc}); target ranges are taken from the data"
            warnings.warn(msg, stacklevel=2)
            data.notes.append(msg)
    pred_cols = [c for c in oof.columns if c.startswith("pred.")]
    if not pred_cols:
        raise DataError(f"expected prediction columns 'pred.<target>', got columns {list(oof.columns)}", file=oof_path)
    specs = {t.name: t for t in data.recipe.targets} if data.recipe is not None else {}
    for col in pred_cols:
        name = col[len("pred.") :]
        if name not in oof.columns:
            raise DataError(f"column '{col}' has no truth column '{name}' beside it", file=oof_path, field=name)
        spec = specs.get(name)
        data.targets.append(TargetInfo(name, spec.low if spec else None, spec.high if spec else None, spec))
    hist_path = run / "history.csv"
    if hist_path.is_file() and hist_path.stat().st_size > 0:
        hist = pd.read_csv(hist_path)
        if not hist.empty and "epoch" in hist.columns:
            data.history = hist
    card = run / "bundle" / "MODEL_CARD.md"
    if card.is_file():
        data.model_card = card.read_text()
    return data


# ------------------------------------------------------------------------------------- figures


def _entry(metrics: dict, target: str, level: str, name: str) -> tuple[float, float, float]:
    e = (((metrics.get("targets") or {}).get(target) or {}).get(level) or {}).get(name) or {}
    return tuple(float("nan") if e.get(k) is None else float(e[k]) for k in ("value", "low", "high"))  # type: ignore[return-value]


def _summary(metrics: dict, target: str, level: str) -> str:
    parts = []
    for name in ("lcc", "srcc", "rmse"):
        v, lo, hi = _entry(metrics, target, level, name)
        if math.isfinite(v):
            ci = f" [{lo:.2f}, {hi:.2f}]" if math.isfinite(lo) and math.isfinite(hi) else ""
            parts.append(f"{name.upper()} {v:.3f}{ci}")
    return ", ".join(parts)


def _bin_edges(info: TargetInfo, truth: np.ndarray) -> np.ndarray:
    """Half a step either side of each score level (as the run's per-bin RMSE), or about ten
    equal-width bins where the levels are finer; 8 bins over the data without a recipe."""
    spec = info.spec
    if spec is not None:
        edges = spec.low - spec.step / 2 + spec.step * np.arange(spec.num_bins + 1)
        if len(edges) > 12:
            edges = np.linspace(spec.low, spec.high, 11)
    else:
        edges = np.histogram_bin_edges(truth, bins=min(8, max(1, len(np.unique(truth)))))
    edges[0] = min(edges[0], float(truth.min()))
    edges[-1] = max(edges[-1], float(truth.max()))
    return edges


def _fold_table(frame, target: str) -> tuple[list[int], dict[str, list[tuple[float, float, float]]]]:
    from scorecast.metrics.functional import MetricWarning, bootstrap_ci

    folds = sorted(int(f) for f in frame["fold"].dropna().unique())
    table: dict[str, list[tuple[float, float, float]]] = {m: [] for m in FOLD_METRICS}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        for f in folds:
            part = frame[frame["fold"] == f]
            for m in FOLD_METRICS:
                table[m].append(
                    bootstrap_ci(
                        m,
                        part[f"pred.{target}"].to_numpy(float),
                        part[target].to_numpy(float),
                        n=FOLD_BOOTSTRAP,
                        seed=f,
                    )
                )
    return folds, table


def _monitor(data: RunData) -> str | None:
    rec = data.recipe
    return rec.training.early_stopping.monitor if rec is not None and rec.training.early_stopping else None


def _history_metric(data: RunData) -> str | None:
    """The validation metric to draw: the early-stopping monitor where it is one, else the first."""
    cols = [c for c in data.history.columns if c.startswith("val_") and c != "val_loss"]
    if not cols:
        return None
    monitor = _monitor(data)
    return monitor if monitor in cols else cols[0]


COLOUR_BY = ("group", "fold", "none")


def make_figures(data: RunData, out: Path, colour_by: str = "group") -> list[tuple[str, Path, str]]:
    """Draw every figure the run supports; returns (title, path, caption) in page order. The
    predicted-vs-true scatter colours items by ``colour_by``: group, fold or none."""
    from scorecast.metrics.functional import system_level

    figs: list[tuple[str, Path, str]] = []
    oof = data.oof
    for info in data.targets:
        t = info.name
        frame = oof[np.isfinite(oof[t].to_numpy(float)) & np.isfinite(oof[f"pred.{t}"].to_numpy(float))]
        if frame.empty:
            data.notes.append(f"target '{t}': no item has both a truth and a prediction; no figures")
            continue
        truth, pred = frame[t].to_numpy(float), frame[f"pred.{t}"].to_numpy(float)
        groups = frame["group"].tolist() if "group" in frame.columns and frame["group"].notna().all() else None
        colours = groups if colour_by == "group" else None
        if colour_by == "fold" and "fold" in frame.columns and not data.metrics.get("holdout"):
            colours = [f"fold {int(f)}" for f in frame["fold"]]
        figs.append(
            (
                f"{t}: predicted vs true",
                plots.scatter_pred_true(
                    out / f"scatter_{t}.png",
                    truth,
                    pred,
                    t,
                    groups=colours,
                    colour_title=colour_by,
                    low=info.low,
                    high=info.high,
                    summary=_summary(data.metrics, t, "utterance"),
                ),
                "Each point is one item, predicted by a model that did not train on it (its fold's model in `cv`, the "
                "held-out part in `train`). Dashed: the identity line.",
            )
        )
        figs.append(
            (
                f"{t}: residuals by score bin",
                plots.residuals_by_bin(out / f"residuals_{t}.png", truth, pred, t, _bin_edges(info, truth)),
                "Residual = predicted - true. Boxes above zero over-predict that bin; low-score bins of skewed data often do.",
            )
        )
        if "fold" in frame.columns and frame["fold"].nunique() > 1:
            folds, table = _fold_table(frame, t)
            overall = {m: _entry(data.metrics, t, "utterance", m) for m in FOLD_METRICS}
            figs.append(
                (
                    f"{t}: metrics per fold",
                    plots.fold_metrics(out / f"folds_{t}.png", t, table, folds, overall),
                    f"Each fold's items scored by its model; error bars: {FOLD_BOOTSTRAP}-resample bootstrap 95 % "
                    "intervals. Red: all out-of-fold predictions pooled.",
                )
            )
        std_col = f"std.{t}"
        if std_col in frame.columns and np.isfinite(frame[std_col].to_numpy(float)).sum() >= 10:
            figs.append(
                (
                    f"{t}: calibration of the predicted spread",
                    plots.calibration(out / f"calibration_{t}.png", truth, pred, frame[std_col].to_numpy(float), t),
                    "Items grouped by predicted standard deviation (equal counts). On the identity line the predicted "
                    "spread matches the actual error; error bars: chi-square 95 % intervals of each bin's RMSE.",
                )
            )
        if groups is not None:
            n_groups = len(set(map(str, groups)))
            if 2 < n_groups < len(groups):
                sys = system_level(pred, truth, [str(g) for g in groups])
                figs.append(
                    (
                        f"{t}: system level",
                        plots.system_scatter(
                            out / f"system_{t}.png",
                            sys.systems,
                            sys.target,
                            sys.preds,
                            sys.counts,
                            t,
                            low=info.low,
                            high=info.high,
                            summary=_summary(data.metrics, t, "system"),
                        ),
                        "Mean prediction and mean truth of each group (system, condition or speaker).",
                    )
                )
    if data.history is not None:
        figs.append(
            (
                "learning curves",
                plots.learning_curves(out / "learning_curves.png", data.history, _history_metric(data), _monitor(data)),
                "One colour per fold (and seed). Dots: the best epoch by the early-stopping monitor, the weights each "
                "fold model keeps.",
            )
        )
    return figs


# ------------------------------------------------------------------------------------- HTML

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
figure{margin:1.2em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{color:#555;font-size:.9em}
pre{background:#f7f7f7;border:1px solid #e3e3e3;padding:.8em;overflow-x:auto;font-size:.85em}
.note{color:#8a5300}
"""


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return "n/a" if not math.isfinite(v) else f"{v:.4f}"
    return html.escape(str(v))


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _metrics_rows(block: dict[str, Any], label: str = "") -> list[list[Any]]:
    rows = []
    for target, levels in (block.get("targets") or {}).items():
        for level in ("utterance", "system"):
            for name, e in (levels.get(level) or {}).items():
                lo, hi = e.get("low"), e.get("high")
                ci = f"[{lo:.4f}, {hi:.4f}]" if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) else ""
                n = levels.get("n") if level == "utterance" else levels.get("n_systems")
                rows.append([target, f"{label}{level}", name, e.get("value"), ci, n])
    return rows


def _ceiling_section(m: dict[str, Any]) -> list[str]:
    """The listeners' split-half agreement (the data's own ceiling) beside the scorer's figures."""
    rows = []
    for target, levels in (m.get("targets") or {}).items():
        c = levels.get("ceiling")
        if not c:
            continue
        for level, key in (("clip", "utterance"), ("system", "system")):
            for name in ("srcc", "lcc"):
                if name in (c.get(level) or {}):
                    model = ((levels.get(key) or {}).get(name) or {}).get("value")
                    rows.append([target, level, name, c[level][name], model, c.get("listeners"), c.get("splits")])
    if not rows:
        return []
    return [
        "<h3>Ceiling: the listeners' own agreement</h3>",
        "<p>Split-half agreement between two random halves of the listeners (Spearman-Brown corrected to the "
        "full panel), averaged over random splits: about as well as any scorer can agree with this panel's mean.</p>",
        _table(["target", "level", "metric", "ceiling", "scorer", "listeners", "splits"], rows),
    ]


def _predictions_kind(data: RunData) -> str:
    return "Held-out predictions" if data.metrics.get("holdout") else "Out-of-fold predictions"


def _holdout_source(data: RunData) -> str:
    """Where a `train` run's held-out items came from: the recipe's val_data, or a val_fraction of the data."""
    recipe = data.recipe
    if recipe is not None and getattr(recipe, "val_data", None) is not None:
        return f"val_data {Path(recipe.val_data.path).name}"
    fraction = recipe.training.val_fraction if recipe is not None else None
    return f"training.val_fraction {fraction:g} of the data" if fraction is not None else "a held-out part"


def _sections(data: RunData, figs: list[tuple[str, Path, str]], out: Path | None = None) -> list[str]:
    m = data.metrics
    parts = [
        '<section id="metrics"><h2>Metrics</h2>',
        f"<p>{_predictions_kind(data)} against the truth; intervals are percentile bootstrap 95 % intervals.</p>",
        _table(
            ["target", "level", "metric", "value", "95% interval", "n"],
            _metrics_rows(m) + _metrics_rows(m.get("test") or {}, "test "),
        ),
    ]
    parts += _ceiling_section(m)
    folds = m.get("folds") or []
    if folds:
        keys = [k for k in folds[0] if k in ("fold", "seed", "repeat", "epochs", "best_epoch", "steps")]
        cols = [(t, name) for t in data.metrics.get("targets", {}) for name in (folds[0].get(t) or {})]
        rows = [[*(f.get(k) for k in keys), *((f.get(t) or {}).get(name) for t, name in cols)] for f in folds]
        flagged = any("flags" in f for f in folds)
        if flagged:  # folds whose validation correlation is negative or undefined
            for row, f in zip(rows, folds):
                row.append("; ".join(f"{t} {m} {v}" for t, ms in (f.get("flags") or {}).items() for m, v in ms.items()))
        parts += [
            "<h3>Per fold (validation items of each fold)</h3>",
            _table([*keys, *(f"{t} {name}" for t, name in cols), *(["flags"] if flagged else [])], rows),
        ]
    for target, bins in (m.get("per_bin") or {}).items():
        rows = [[b.get("bin"), b.get("n"), b.get("rmse"), b.get("bias")] for b in bins]
        parts += [
            f"<h3>{html.escape(target)}: RMSE per true-score bin</h3>",
            _table(["bin", "n", "RMSE", "bias"], rows),
        ]
    parts.append("</section>")
    from scorecast.report.checks import check_sections

    parts += check_sections(m, out or data.run_dir / "report")
    parts.append('<section id="figures"><h2>Figures</h2>')
    for title, path, caption in figs:
        b64 = base64.b64encode(path.read_bytes()).decode("ascii")
        parts.append(
            f'<figure id="fig-{html.escape(path.stem)}"><h3>{html.escape(title)}</h3>'
            f'<img src="data:image/png;base64,{b64}" alt="{html.escape(title)}">'
            f"<figcaption>{html.escape(caption)} (file: {html.escape(path.name)})</figcaption></figure>"
        )
    parts.append("</section>")
    parts.append('<section id="recipe"><h2>Resolved recipe</h2>')
    parts.append(
        f"<pre>{html.escape(data.recipe_text)}</pre>"
        if data.recipe_text
        else "<p>No recipe.yaml in the run folder.</p>"
    )
    parts.append("</section>")
    parts.append('<section id="model-card"><h2>Model card</h2>')
    parts.append(
        f"<pre>{html.escape(data.model_card)}</pre>"
        if data.model_card
        else "<p>No bundle/MODEL_CARD.md in the run folder.</p>"
    )
    parts.append("</section>")
    return parts


def write_report(run_dir: str | Path, out_dir: str | Path | None = None, colour_by: str = "group") -> Path:
    """Write the figures and ``index.html`` into ``out_dir`` (default ``RUN/report``); returns the HTML path.
    ``colour_by``: what colours the predicted-vs-true scatter: ``group``, ``fold`` or ``none``."""
    from scorecast.errors import ConfigError

    if colour_by not in COLOUR_BY:
        raise ConfigError(f"colour_by: expected one of {', '.join(COLOUR_BY)}, got {colour_by!r}")
    data = load_run(run_dir)
    out = Path(out_dir) if out_dir is not None else data.run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    figs = make_figures(data, out, colour_by)
    name = data.recipe.name if data.recipe is not None else data.run_dir.name
    n = len(data.oof)
    folds = data.oof["fold"].nunique() if "fold" in data.oof.columns and not data.metrics.get("holdout") else None
    head = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>scorecast report: {html.escape(name)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>scorecast report: {html.escape(name)}</h1>",
        f"<p>Run folder <code>{html.escape(str(data.run_dir.resolve()))}</code>; {n} items"
        + (
            f" in {folds} folds"
            if folds
            else f" held out from training ({_holdout_source(data)})"
            if data.metrics.get("holdout")
            else ""
        )
        + f"; targets: {html.escape(', '.join(t.name for t in data.targets))}; written {time.strftime('%Y-%m-%d %H:%M')}.</p>",
    ]
    head += [f"<p class='note'>{html.escape(note)}</p>" for note in data.notes]
    head += [f"<p class='note'>warning: {html.escape(w)}</p>" for w in data.metrics.get("warnings") or []]
    page = "\n".join(head + _sections(data, figs, out) + ["</body></html>"])
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
