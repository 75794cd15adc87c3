"""``scorecast ensemble RUN1 RUN2 ... -o OUT``: one scorer from the scorers of several run folders
(recipe variants, seeds, other encoders; same data and targets), with out-of-fold metrics.

Heavy imports stay inside the command function.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer


def _fmt(value) -> str:
    return "n/a" if value is None or value != value else f"{value:.4f}"


def _interval(entry: dict) -> str:
    low, high = entry.get("low"), entry.get("high")
    return "" if low is None or high is None or low != low or high != high else f"[{low:.4f}, {high:.4f}]"


def print_summary(result, seconds: float) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    ens = result.metrics.get("ensemble", {})
    metric = ens.get("metric", "")
    runs = Table(title=f"scorecast ensemble: runs and their weights ({ens.get('kind', '')})")
    for col in ("run", "members", f"oof {metric}", "weight"):
        runs.add_column(col)
    for row in ens.get("runs", []):
        weight = row["weight"]
        shown = ", ".join(f"{w:.3f}" for w in weight) if isinstance(weight, list) else f"{weight:.3f}"
        runs.add_row(row["run"], str(row["members"]), _fmt(row.get(metric)), shown)
    console.print(runs)
    table = Table(title="scorecast ensemble: out-of-fold metrics")
    for col in ("target", "level", "metric", "value", "95% interval"):
        table.add_column(col, justify="right" if col == "value" else "left")
    for target, levels in result.metrics.get("targets", {}).items():
        for level in ("utterance", "system"):
            for name, entry in (levels.get(level) or {}).items():
                table.add_row(target, level, name, _fmt(entry.get("value")), _interval(entry))
    console.print(table)
    console.print(f"{len(result.members)} member(s); run folder: [bold]{result.out_dir}[/] ({seconds:.1f} s)")


def register(app: typer.Typer) -> None:
    @app.command("ensemble")
    def ensemble(
        runs: Annotated[list[Path], typer.Argument(help="Run folders (written by scorecast cv/train) to combine.")],
        out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write the ensemble to.")],
        weights: Annotated[
            str,
            typer.Option(
                "--weights",
                help="mean (equal), metric (by each run's out-of-fold --metric) or stack (ridge on out-of-fold predictions).",
            ),
        ] = "mean",
        metric: Annotated[
            str,
            typer.Option("--metric", help="Metric that weighs the runs (--weights metric), and is reported per run."),
        ] = "lcc",
        name: Annotated[
            str | None,
            typer.Option("--name", help="Name of the ensemble (default: <first run's recipe name>-ensemble)."),
        ] = None,
        overwrite: Annotated[
            bool, typer.Option("--overwrite", help="Replace an existing folder --out whole (refused otherwise).")
        ] = False,
    ) -> None:
        """Combine the scorers of several run folders into one run folder and bundle."""
        from scorecast.runs.ensemble import ensemble_runs

        start = time.perf_counter()
        result = ensemble_runs(runs, out, weights=weights, metric=metric, name=name, overwrite=overwrite)
        print_summary(result, time.perf_counter() - start)
