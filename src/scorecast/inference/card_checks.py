"""The model card's sections on a run's checks (metrics.json, written by ``scorecast.runs.checks``):
baselines beside the model, the ensemble's member weights and why, and the run's warnings."""

from __future__ import annotations

from typing import Any

from scorecast.metrics.text import BASELINE_COLUMNS, baseline_tables, format_value


def baseline_lines(metrics: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for target, metric, rows in baseline_tables(metrics):
        out += [
            "",
            f"## Baselines: {target} (same folds, same items; {metric})",
            "",
            "| " + " | ".join(c.format(metric="value") for c in BASELINE_COLUMNS) + " |",
            "|---|---|---|---|---|---|---|",
            *("| " + " | ".join(row) + " |" for row in rows),
        ]
    return out


def member_lines(metrics: dict[str, Any]) -> list[str]:
    rows = (metrics.get("ensemble") or {}).get("members") or []
    if not rows:
        return []
    out = [
        "",
        f"## Ensemble members ({(metrics.get('ensemble') or {}).get('kind')})",
        "",
        f"| fold | seed | repeat | validation {rows[0].get('metric')} | weight | why |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r.get('fold')} | {r.get('seed')} | {r.get('repeat')} | {format_value(r.get('value'))} | "
            f"{r.get('weight', 0.0):.3f} | {r.get('reason', '')} |"
        )
    return out


def warning_lines(metrics: dict[str, Any]) -> list[str]:
    found = metrics.get("warnings") or []
    return ["", "## Warnings", "", *(f"- {w}" for w in found)] if found else []


def check_lines(metrics: dict[str, Any] | None) -> list[str]:
    """Markdown lines: baselines, ensemble members, warnings (nothing for a run without checks)."""
    if not metrics:
        return []
    return baseline_lines(metrics) + member_lines(metrics) + warning_lines(metrics)
