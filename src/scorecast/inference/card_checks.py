"""The model card's sections on a run's checks (metrics.json, written by ``scorecast.runs.checks``):
baselines beside the model, the ensemble's member weights and why, and the run's warnings."""

from __future__ import annotations

import math
from typing import Any


def _num(x: Any) -> str:
    return f"{x:.4f}" if isinstance(x, (int, float)) and math.isfinite(x) else "n/a"


def _ci(e: dict[str, Any]) -> str:
    low, high = e.get("low"), e.get("high")
    ok = isinstance(low, (int, float)) and isinstance(high, (int, float)) and math.isfinite(low) and math.isfinite(high)
    return f"[{low:.3f}, {high:.3f}]" if ok else ""


def baseline_lines(metrics: dict[str, Any]) -> list[str]:
    block = metrics.get("baselines") or {}
    metric = block.get("metric")
    out: list[str] = []
    for target, info in (block.get("targets") or {}).items():
        model = ((metrics.get("targets") or {}).get(target) or {}).get("utterance", {}).get(metric, {})
        out += [
            "",
            f"## Baselines: {target} (same folds, same items; {metric})",
            "",
            "| system | kind | value | 95% interval | model - baseline | 95% interval | verdict |",
            "|---|---|---|---|---|---|---|",
            f"| model | scorecast | {_num(model.get('value'))} | {_ci(model)} | | | |",
        ]
        for name, e in (info.get("baselines") or {}).items():
            fig = (e.get("utterance") or {}).get(metric) or {}
            diff = ((e.get("model_vs") or {}).get("utterance") or {}).get(metric) or {}
            best = " (best)" if name == info.get("best") else ""
            out.append(
                f"| {name}{best} | {e.get('kind', '')} | {_num(fig.get('value'))} | {_ci(fig)} | "
                f"{_num(diff.get('value'))} | {_ci(diff)} | {diff.get('verdict', '')} |"
            )
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
            f"| {r.get('fold')} | {r.get('seed')} | {r.get('repeat')} | {_num(r.get('value'))} | "
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
