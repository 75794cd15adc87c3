"""The report's view of a run's checks (metrics.json ``baselines``, ``ensemble.members``,
``warnings``): tables and two figures, the model beside each baseline and the members' weights."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import numpy as np

from scorecast.metrics.text import BASELINE_COLUMNS, baseline_tables, format_value


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def _triple(e: dict[str, Any]) -> tuple[float, float, float]:
    return tuple(float("nan") if e.get(k) is None else float(e[k]) for k in ("value", "low", "high"))  # type: ignore[return-value]


def baselines_figure(path: Path, target: str, metric: str, model: dict, entries: dict[str, dict]) -> Path:
    """Horizontal bars: the model and each baseline's ``metric`` with its 95 % interval."""
    plt = _plt()
    names = ["model", *entries]
    vals = [_triple(model), *(_triple((e.get("utterance") or {}).get(metric) or {}) for e in entries.values())]
    fig, ax = plt.subplots(figsize=(7.0, 0.45 * len(names) + 1.2))
    y = np.arange(len(names))[::-1]
    for yi, (v, lo, hi), name in zip(y, vals, names):
        colour = "tab:red" if name == "model" else "tab:blue"
        if math.isfinite(v):
            ax.barh(yi, v, color=colour, alpha=0.7)
        if math.isfinite(lo) and math.isfinite(hi):
            ax.errorbar(v, yi, xerr=[[v - lo], [hi - v]], color="0.2", capsize=3)
    ax.axvline(0, color="0.4", lw=0.8)
    ax.set_yticks(y, names)
    ax.set_xlabel(f"{metric} (95 % bootstrap interval)")
    ax.set_title(f"{target}: model vs baselines on the same items")
    return _save(fig, path)


def weights_figure(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Bars of each member's ensemble weight, labelled with its validation metric."""
    plt = _plt()
    labels = [f"s{r.get('seed')} r{r.get('repeat')} f{r.get('fold')}" for r in rows]
    w = [float(r.get("weight", 0.0)) for r in rows]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.5 * len(rows) + 2), 3.2))
    bars = ax.bar(np.arange(len(rows)), w, color=["tab:gray" if x == 0 else "tab:green" for x in w])
    for bar, r in zip(bars, rows):
        v = r.get("value")
        text = "n/a" if v is None or not math.isfinite(v) else f"{v:.2f}"
        ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(np.arange(len(rows)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("ensemble weight")
    ax.set_title(f"weights (labels: val. {rows[0].get('metric')})", fontsize=10)
    return _save(fig, path)


def _rows_html(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(path: Path, title: str) -> str:
    import base64

    b64 = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure id="fig-{html.escape(path.stem)}"><img src="data:image/png;base64,{b64}" alt="{html.escape(title)}">'
        f"<figcaption>{html.escape(title)} (file: {html.escape(path.name)})</figcaption></figure>"
    )


def check_sections(metrics: dict[str, Any], out: Path) -> list[str]:
    """HTML parts: the baselines section and the ensemble members section (with their figures)."""
    parts: list[str] = []
    block = metrics.get("baselines") or {}
    metric = block.get("metric")
    if block.get("targets"):
        parts.append('<section id="baselines"><h2>Baselines</h2>')
        parts.append(
            "<p>Each baseline is fitted on the training items of every fit the model made and scored on the same "
            f"items; model - baseline with a paired bootstrap ({block.get('bootstrap')} resamples).</p>"
        )
        for target, metric_name, rows in baseline_tables(metrics):
            info = block["targets"][target]
            entries = info.get("baselines") or {}
            model = ((metrics.get("targets") or {}).get(target) or {}).get("utterance", {}).get(metric, {})
            parts.append(f"<h3>{html.escape(target)} ({html.escape(metric_name)})</h3>")
            parts.append(_rows_html([c.format(metric=metric_name) for c in BASELINE_COLUMNS], rows))
            if entries:
                path = baselines_figure(out / f"baselines_{target}.png", target, str(metric), model, entries)
                parts.append(_img(path, f"{target}: the model (red) and each baseline (blue)"))
        parts.append("</section>")
    members = (metrics.get("ensemble") or {}).get("members") or []
    if members:
        parts.append('<section id="members"><h2>Ensemble members</h2>')
        rows = [
            [
                str(r.get("fold")),
                str(r.get("seed")),
                str(r.get("repeat")),
                format_value(r.get("value")),
                f"{float(r.get('weight', 0.0)):.3f}",
                str(r.get("reason", "")),
            ]
            for r in members
        ]
        parts.append(
            _rows_html(["fold", "seed", "repeat", f"validation {members[0].get('metric')}", "weight", "why"], rows)
        )
        parts.append(
            _img(
                weights_figure(out / "member_weights.png", members),
                "each member's weight in the scorer; grey bars: weight zero (the table says why)",
            )
        )
        parts.append("</section>")
    return parts
