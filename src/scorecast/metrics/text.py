"""Figures of metrics.json as text: one formatting of a value and its interval, and the baselines
tables that the CLI summary, the report and the model card show. No numpy: the CLI imports it at start."""

from __future__ import annotations

import math
from numbers import Real
from typing import Any


def format_value(x: Any) -> str:
    """A figure to 4 decimals; "n/a" where it is missing or not finite."""
    return f"{float(x):.4f}" if isinstance(x, Real) and math.isfinite(float(x)) else "n/a"


def format_interval(entry: dict[str, Any]) -> str:
    """``[low, high]`` of a figure's entry; where undefined, the entry's reason (or nothing)."""
    low, high = entry.get("low"), entry.get("high")
    finite = all(isinstance(v, Real) and math.isfinite(float(v)) for v in (low, high))
    return f"[{float(low):.4f}, {float(high):.4f}]" if finite else str(entry.get("reason") or "")


#: the columns of :func:`baseline_tables`' rows (the metric's name goes in the third)
BASELINE_COLUMNS = ("system", "kind", "{metric}", "95% interval", "model - baseline", "95% interval", "verdict")


def baseline_tables(metrics: dict[str, Any]) -> list[tuple[str, str, list[list[str]]]]:
    """The baselines block of a run's metrics.json as text tables, one per target: (target, metric, rows),
    the model's row first, then each baseline's (" (best)" after the best one's name); columns as in
    :data:`BASELINE_COLUMNS`. The CLI summary, the report and the model card all show these rows."""
    block = metrics.get("baselines") or {}
    metric = block.get("metric")
    tables = []
    for target, info in (block.get("targets") or {}).items():
        model = ((metrics.get("targets") or {}).get(target) or {}).get("utterance", {}).get(metric, {})
        rows = [["model", "scorecast", format_value(model.get("value")), format_interval(model), "", "", ""]]
        for name, entry in (info.get("baselines") or {}).items():
            figure = (entry.get("utterance") or {}).get(metric) or {}
            diff = ((entry.get("model_vs") or {}).get("utterance") or {}).get(metric) or {}
            rows.append(
                [
                    name + (" (best)" if name == info.get("best") else ""),
                    str(entry.get("kind", "")),
                    format_value(figure.get("value")),
                    format_interval(figure),
                    format_value(diff.get("value")),
                    format_interval(diff),
                    str(diff.get("verdict", "")),
                ]
            )
        tables.append((target, str(metric), rows))
    return tables
