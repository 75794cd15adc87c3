"""The report's figures (matplotlib, Agg backend). Each function draws one PNG and returns its path.

Inputs are plain arrays and frames from a run folder (see :mod:`scorecast.report.page`); nothing here
reads files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

DPI = 110
MAX_LABELLED_GROUPS = 12  # colour points by group up to this many groups


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    _plt().close(fig)
    return path


def _identity(ax, low: float, high: float, label: str = "identity (pred = true)") -> None:
    ax.plot([low, high], [low, high], color="0.3", lw=1.0, ls="--", label=label, zorder=1)
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_aspect("equal", adjustable="box")


def _span(*arrays: np.ndarray, low: float | None = None, high: float | None = None) -> tuple[float, float]:
    vals = np.concatenate([np.asarray(a, dtype=float).ravel() for a in arrays])
    vals = vals[np.isfinite(vals)]
    lo = min(vals.min(), low) if low is not None else vals.min()
    hi = max(vals.max(), high) if high is not None else vals.max()
    pad = 0.04 * (hi - lo or 1.0)
    return float(lo - pad), float(hi + pad)


def scatter_pred_true(
    path: Path,
    truth: np.ndarray,
    pred: np.ndarray,
    target: str,
    *,
    groups: Sequence | None = None,
    low: float | None = None,
    high: float | None = None,
    summary: str = "",
    colour_title: str = "group",
) -> Path:
    """Predicted vs true per item, the identity line, points coloured by ``groups`` (a group or a fold
    per item; the legend titled ``colour_title``) where there are few."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 6.0))
    lo, hi = _span(truth, pred, low=low, high=high)
    _identity(ax, lo, hi)
    names = sorted({str(g) for g in groups}) if groups is not None else []
    if groups is not None and 1 < len(names) <= MAX_LABELLED_GROUPS:
        cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
        g = np.array([str(x) for x in groups])
        for k, name in enumerate(names):
            m = g == name
            ax.scatter(truth[m], pred[m], s=22, alpha=0.8, color=cmap(k), label=name, edgecolor="none", zorder=2)
        ax.legend(fontsize=8, loc="upper left", title=colour_title, title_fontsize=8, framealpha=0.8)
    else:
        ax.scatter(truth, pred, s=16, alpha=0.6, color="tab:blue", edgecolor="none", zorder=2, label="items")
        ax.legend(fontsize=8, loc="upper left")
    ax.set_xlabel(f"true {target} (score units)")
    ax.set_ylabel(f"predicted {target} (held out from training)")
    ax.set_title(f"{target}: predicted vs true, {len(truth)} items" + (f"\n{summary}" if summary else ""), fontsize=10)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def residuals_by_bin(path: Path, truth: np.ndarray, pred: np.ndarray, target: str, edges: np.ndarray) -> Path:
    """Box plot of residuals (pred - true) within bins of the true score; n and RMSE under each box."""
    plt = _plt()
    idx = np.clip(np.searchsorted(edges, truth, side="right") - 1, 0, len(edges) - 2)
    resid = pred - truth
    keep = [k for k in range(len(edges) - 1) if np.any(idx == k)]
    data = [resid[idx == k] for k in keep]
    labels = []
    for k, d in zip(keep, data):
        labels.append(f"{edges[k]:g}-{edges[k + 1]:g}\nn={len(d)}\nRMSE {math.sqrt(float(np.mean(d**2))):.2f}")
    fig, ax = plt.subplots(figsize=(max(6.4, 0.9 * len(keep) + 2), 4.8))
    ax.axhline(0.0, color="0.3", lw=1.0, ls="--")
    ax.boxplot(
        data,
        tick_labels=labels,
        showmeans=True,
        meanprops={"marker": "D", "markerfacecolor": "tab:red", "markeredgecolor": "tab:red", "markersize": 4},
    )
    ax.set_xlabel(f"true {target} bin (score units)")
    ax.set_ylabel("residual: predicted - true")
    ax.set_title(f"{target}: residuals by true-score bin (box: quartiles, red diamond: mean bias)", fontsize=10)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def fold_metrics(
    path: Path,
    target: str,
    per_fold: dict[str, list[tuple[float, float, float]]],
    folds: list[int],
    overall: dict[str, tuple[float, float, float]],
) -> Path:
    """One panel per metric: each fold's value with its bootstrap 95 % interval, and the pooled
    out-of-fold value with its interval as a band."""
    plt = _plt()
    names = list(per_fold)
    fig, axes = plt.subplots(1, len(names), figsize=(3.4 * len(names) + 0.6, 4.0), squeeze=False)
    x = np.arange(len(folds))
    for ax, name in zip(axes[0], names):
        vals = np.array(per_fold[name], dtype=float)
        v, lo, hi = vals[:, 0], vals[:, 1], vals[:, 2]
        yerr = np.vstack([np.where(np.isfinite(lo), v - lo, 0.0), np.where(np.isfinite(hi), hi - v, 0.0)])
        ax.errorbar(x, v, yerr=np.clip(yerr, 0, None), fmt="o", color="tab:blue", capsize=4, label="fold (95 % CI)")
        if name in overall:
            ov, olo, ohi = overall[name]
            ax.axhline(ov, color="tab:red", lw=1.2, label="all out-of-fold items pooled")
            if np.isfinite(olo) and np.isfinite(ohi):
                ax.axhspan(olo, ohi, color="tab:red", alpha=0.12, label="pooled 95 % CI")
        ax.set_xticks(x, [str(f) for f in folds])
        ax.set_xlabel("fold")
        ax.set_ylabel(name.upper())
        pooled = f" (pooled {overall[name][0]:.3f})" if name in overall and np.isfinite(overall[name][0]) else ""
        ax.set_title(f"{target}: {name.upper()} per fold{pooled}", fontsize=10)
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    labels = [lab.split(":")[0] for lab in labels]
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=DPI)
    _plt().close(fig)
    return path


def _lower_is_better(name: str) -> bool:
    return any(k in name for k in ("loss", "rmse", "mse", "mae"))


def learning_curves(path: Path, history, metric: str | None, monitor: str | None = None) -> Path:
    """Left: train and validation loss per epoch, one line pair per fold. Right: the validation
    metric per epoch (where the history has one). Where ``monitor`` (the early-stopping metric) is
    drawn, a dot marks each run's best epoch on it."""
    plt = _plt()
    panels = 2 if metric else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.0 * panels, 4.2), squeeze=False)
    cmap = plt.get_cmap("tab10")
    keys = [c for c in ("fold", "seed", "repeat") if c in history.columns and history[c].nunique() > 1]
    runs = list(history.groupby(keys, sort=True)) if keys else [((0,), history)]
    for k, (key, frame) in enumerate(runs):
        key = key if isinstance(key, tuple) else (key,)
        label = ", ".join(f"{name} {value}" for name, value in zip(keys, key)) or "run"
        frame = frame.sort_values("epoch")
        color = cmap(k % 10)
        ax = axes[0][0]
        if "train_loss" in frame:
            ax.plot(frame["epoch"], frame["train_loss"], color=color, lw=1.0, ls="--", alpha=0.8)
        if "val_loss" in frame:
            ax.plot(frame["epoch"], frame["val_loss"], color=color, lw=1.4, label=label)
        if metric and metric in frame:
            axes[0][1].plot(frame["epoch"], frame[metric], color=color, lw=1.4, label=label)
        panel = {"val_loss": axes[0][0], metric: axes[0][1] if metric else None}.get(monitor) if monitor else None
        if panel is not None and monitor in frame and frame[monitor].notna().any():
            best = frame[monitor].idxmin() if _lower_is_better(monitor) else frame[monitor].idxmax()
            panel.plot(frame.loc[best, "epoch"], frame.loc[best, monitor], "o", color=color, ms=6, mec="k", zorder=3)
    ax = axes[0][0]
    losses = history[[c for c in ("train_loss", "val_loss") if c in history.columns]].to_numpy(float)
    finite = losses[np.isfinite(losses)]
    if finite.size and (finite.max() - np.median(finite)) > 20 * (np.median(np.abs(finite)) + 1e-9):
        ax.set_yscale("symlog", linthresh=1.0)  # a few spikes would flatten every other curve
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (recipe's weighted sum)")
    dot = " dot: best epoch" if monitor == "val_loss" else ""
    ax.set_title(
        f"loss per epoch (solid: validation, dashed: train;{dot})"
        if dot
        else "loss per epoch (solid: validation, dashed: train)",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # no labelled curve when the history has no loss column
        ax.legend(fontsize=7, ncol=2)
    if metric:
        ax = axes[0][1]
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(
            f"validation metric per epoch: {metric}" + ("; dot: best epoch" if monitor == metric else ""), fontsize=10
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    return _save(fig, path)


def calibration(path: Path, truth: np.ndarray, pred: np.ndarray, std: np.ndarray, target: str, bins: int = 8) -> Path:
    """Predicted spread against actual error: items binned by predicted std (equal counts); each
    bin's RMSE of (pred - true) against its root-mean predicted variance, with the identity line.
    Points above the line: the model is over-confident there."""
    plt = _plt()
    ok = np.isfinite(std) & np.isfinite(pred) & np.isfinite(truth)
    s, err = std[ok], (pred - truth)[ok]
    bins = max(1, min(bins, len(s) // 5 or 1))
    order = np.argsort(s)
    chunks = np.array_split(order, bins)
    x = np.array([math.sqrt(float(np.mean(s[c] ** 2))) for c in chunks])
    y = np.array([math.sqrt(float(np.mean(err[c] ** 2))) for c in chunks])
    n = np.array([len(c) for c in chunks])
    # a 95 % interval for each bin's RMSE: n * RMSE^2 / sigma^2 ~ chi-square(n) for Gaussian errors
    from scipy.stats import chi2

    ylo = y * np.sqrt(n / chi2.ppf(0.975, n))
    yhi = y * np.sqrt(n / chi2.ppf(0.025, n))
    fig, ax = plt.subplots(figsize=(6.0, 5.6))
    hi = max(float(np.max(yhi)), float(np.max(x))) * 1.1 or 1.0
    _identity(ax, 0.0, hi, label="identity (RMSE = predicted std)")
    ax.errorbar(x, y, yerr=[y - ylo, yhi - y], fmt="o", color="tab:blue", capsize=4, label="bin of items (95 % CI)")
    for xi, yi, ni in zip(x, y, n):
        ax.annotate(f"n={ni}", (xi, yi), textcoords="offset points", xytext=(5, -10), fontsize=7, color="0.35")
    ax.set_xlabel(f"predicted std of {target} (RMS within bin)")
    ax.set_ylabel("actual RMSE within bin")
    ax.set_title(f"{target}: calibration of predicted spread\n(above the line: over-confident)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return _save(fig, path)


def system_scatter(
    path: Path,
    systems: list[str],
    truth: np.ndarray,
    pred: np.ndarray,
    counts: np.ndarray,
    target: str,
    *,
    low: float | None = None,
    high: float | None = None,
    summary: str = "",
) -> Path:
    """Per-system (group) mean predicted vs mean true, labelled, with the identity line."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 6.0))
    lo, hi = _span(truth, pred, low=low, high=high)
    _identity(ax, lo, hi)
    ax.scatter(
        truth,
        pred,
        s=20 + 60 * counts / max(counts.max(), 1),
        color="tab:purple",
        alpha=0.75,
        edgecolor="k",
        linewidth=0.5,
        zorder=2,
        label="system (size: items)",
    )
    if len(systems) <= 40:
        place_labels(ax, truth, pred, [str(s) for s in systems])
    ax.set_xlabel(f"true {target}, mean per system")
    ax.set_ylabel(f"predicted {target}, mean per system")
    ax.set_title(f"{target}: system level, {len(systems)} systems" + (f"\n{summary}" if summary else ""), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return _save(fig, path)


#: where a label may go around its point, in points, tried in order: beside it, then on rings
#: further out (those get a thin leader line)
NEAR_OFFSETS = [(6, 5), (6, -12), (-6, 5), (-6, -12)]
LABEL_OFFSETS = NEAR_OFFSETS + [
    (round(r * math.cos(a)), round(r * math.sin(a)) - 4)
    for r in (20, 32, 46, 62, 80, 100, 125)
    for a in np.linspace(0, 2 * math.pi, 16, endpoint=False) + math.pi / 16
]


def place_labels(ax, xs: np.ndarray, ys: np.ndarray, labels: Sequence[str], fontsize: float = 8) -> list:
    """Label each point where its text overlaps no label placed before it nor a marker's centre: the
    first free spot of :data:`LABEL_OFFSETS` (measured with the renderer, in display pixels); far
    spots get a thin leader line. Returns the annotations."""
    fig = ax.figure
    fig.canvas.draw()  # fixes the axes' transform before measuring
    renderer = fig.canvas.get_renderer()
    points = ax.transData.transform(np.column_stack([xs, ys]))
    placed: list = []
    out = []
    for k in np.argsort(ys)[::-1]:
        note = None
        for n_try, (dx, dy) in enumerate(LABEL_OFFSETS):
            far = n_try >= len(NEAR_OFFSETS)
            note = ax.annotate(
                labels[k],
                (xs[k], ys[k]),
                textcoords="offset points",
                xytext=(dx, dy),
                ha="left" if dx >= 0 else "right",
                fontsize=fontsize,
                arrowprops={"arrowstyle": "-", "color": "0.5", "lw": 0.5} if far else None,
            )
            box = text_extent(note, renderer).expanded(1.04, 1.1)
            clash = any(box.overlaps(other) for other in placed) or any(
                box.contains(px, py) for j, (px, py) in enumerate(points) if j != k
            )
            if not clash or n_try == len(LABEL_OFFSETS) - 1:
                break
            note.remove()
        placed.append(text_extent(note, renderer))
        out.append(note)
    return out


def text_extent(note, renderer):
    """The display box of an annotation's text alone (its leader line left out)."""
    from matplotlib.text import Text

    note.update_positions(renderer)
    return Text.get_window_extent(note, renderer)
