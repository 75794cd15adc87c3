"""``scorecast evaluate PREDICTIONS TRUTH``: join two tables on the item id and score the predictions.

Follows the XACLE protocol (inner join on ``wav_file_name``; SRCC, LCC, KTAU, MSE over the matched
pairs, NaN pairs dropped) and the VoiceMOS/AudioMOS system-level protocol (per-system means).
Columns are detected where not given: ids from ``wav_file_name``, ``wav``, ``filename``, ``id``...;
predictions from ``prediction``, ``pred_score``...; truth from ``average_score``, ``MOS``,
``score``...; in header-less lists (``answer.txt``, MusicEval lists) the first column is the id and
the others are scores, paired in order. ``--baseline OTHER`` compares against a second predictions
table (read like PREDICTIONS, same prediction columns) on the ids of all three (``scorecast.metrics.compare``).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer

from scorecast.errors import ConfigError
from scorecast.metrics.evaluate import evaluate_files


def print_result(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"matched {result['n_matched']} ids ({result['match']} match); "
        f"{result['unmatched_predictions']} prediction(s) and {result['unmatched_truth']} truth row(s) unmatched"
    )

    def cell(entry: dict[str, Any] | None) -> tuple[str, str]:
        if entry is None or entry["value"] is None:
            return "-", ""
        ci = f"[{entry['low']:.4f}, {entry['high']:.4f}]" if entry.get("low") is not None else ""
        return f"{entry['value']:.4f}", ci

    for name, entry in result["targets"].items():
        table = Table(
            title=f"{name} (n={entry['n']}{', systems=' + str(entry['n_systems']) if 'system' in entry else ''})"
        )
        has_ci = any(v.get("low") is not None for v in entry["utterance"].values())
        table.add_column("metric")
        table.add_column("utterance", justify="right")
        if has_ci:
            table.add_column("95% CI", justify="right")
        if "system" in entry:
            table.add_column("system", justify="right")
            if has_ci:
                table.add_column("95% CI (system)", justify="right")
        for metric, value in entry["utterance"].items():
            cells = [metric.upper(), *cell(value)[: 2 if has_ci else 1]]
            if "system" in entry:
                cells += list(cell(entry["system"][metric])[: 2 if has_ci else 1])
            table.add_row(*cells)
        console.print(table)
        for b in entry.get("per_bin", []):
            rmse = "-" if b["rmse"] is None else f"{b['rmse']:.4f}"
            console.print(f"  bin {b['bin']}: n={b['n']}, rmse={rmse}")
    if result.get("comparison"):
        from scorecast.metrics.compare import print_comparison

        print_comparison(result["comparison"], console)


def _parse_bins(text: str | None) -> int | list[float] | None:
    if text is None:
        return None
    try:
        return int(text) if "," not in text else [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--bins: expected a number of bins (5) or edges (0,2,4,6,8,10), got {text!r}") from None


def evaluate(
    predictions: Annotated[Path, typer.Argument(help="Predictions table (CSV/TSV/JSON/JSONL/Parquet, or answer.txt).")],
    truth: Annotated[Path, typer.Argument(help="Ground-truth table (e.g. validation_average.csv, *_mos.txt).")],
    id_col: Annotated[str | None, typer.Option("--id-col", help="Id column in both tables.")] = None,
    pred_id_col: Annotated[str | None, typer.Option("--pred-id-col", help="Id column of the predictions.")] = None,
    truth_id_col: Annotated[str | None, typer.Option("--truth-id-col", help="Id column of the truth.")] = None,
    pred_col: Annotated[
        list[str] | None, typer.Option("--pred-col", help="Prediction column (repeat for several targets).")
    ] = None,
    truth_col: Annotated[
        list[str] | None, typer.Option("--truth-col", help="Truth column (repeat, paired with --pred-col).")
    ] = None,
    match: Annotated[str, typer.Option(help="Id matching: auto, exact, basename, stem.")] = "auto",
    system_col: Annotated[str | None, typer.Option("--system-col", help="Column holding the system id.")] = None,
    system_regex: Annotated[
        str | None, typer.Option("--system-regex", help="Regex on the id; group 'system' (or 1) is the system.")
    ] = None,
    system_truth: Annotated[
        Path | None, typer.Option("--system-truth", help="Table of system-level truth: system,score[,score...].")
    ] = None,
    metrics: Annotated[
        str | None, typer.Option(help="Comma-separated metrics (default srcc,lcc,ktau,mse,rmse,mae).")
    ] = None,
    bootstrap: Annotated[
        int | None, typer.Option(help="Bootstrap resamples for 95% intervals (0: none; 1000 for --baseline).")
    ] = None,
    bins: Annotated[str | None, typer.Option(help="Per-bin RMSE: a number of bins or comma-separated edges.")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write the result as JSON here.")] = None,
    baseline: Annotated[
        Path | None, typer.Option(help="Predictions of a baseline: a paired bootstrap of the two on the same items.")
    ] = None,
    recipe: Annotated[
        Path | None,
        typer.Option(
            "--recipe", help="The scorer's recipe YAML or bundle: its group column gives system-level metrics."
        ),
    ] = None,
) -> None:
    """Score PREDICTIONS against TRUTH (joined on id): SRCC, LCC, KTAU, MSE, ... at utterance and system level;
    with --baseline, whether the model (PREDICTIONS) is better than the baseline (paired bootstrap)."""
    names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    if output is not None:
        from scorecast.data.outputs import check_not_an_input

        inputs = {"predictions table": predictions, "truth table": truth, "system truth table": system_truth}
        check_not_an_input(output, {**inputs, "baseline table": baseline}, "--output")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluate_files(
            predictions,
            truth,
            id_col=id_col,
            pred_id_col=pred_id_col,
            truth_id_col=truth_id_col,
            pred_cols=pred_col or None,
            truth_cols=truth_col or None,
            match=match,
            system_col=system_col,
            system_regex=system_regex,
            system_truth=system_truth,
            metrics=names,
            bootstrap=bootstrap or 0,
            bins=_parse_bins(bins),
            baseline=baseline,
            baseline_bootstrap=1000 if bootstrap is None else bootstrap,
            recipe=recipe,
        )
    if caught:
        from rich.console import Console

        err = Console(stderr=True)
        for w in caught:
            err.print(f"[yellow]warning:[/] {w.message}", highlight=False)
        result["warnings"] = [str(w.message) for w in caught]
    print_result(result)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=2))
        typer.echo(f"wrote {output}")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
