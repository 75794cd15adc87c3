"""``scorecast train RECIPE`` and ``scorecast cv RECIPE``: read items, encode through the cache,
train (or cross-validate), write a run folder, print the metrics.

Heavy imports (torch, lightning, encoders) stay inside the command functions.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from scorecast.config import parse_assignments
from scorecast.metrics.text import BASELINE_COLUMNS, baseline_tables, format_interval, format_value

RecipeArg = Annotated[Path, typer.Argument(help="Recipe YAML.")]
VarOpt = Annotated[
    list[str] | None, typer.Option("--var", help="Recipe variable NAME=VALUE (fills ${NAME}); repeatable.")
]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", help="Override a recipe field, e.g. training.max_epochs=5; repeatable.")
]
VariantOpt = Annotated[str | None, typer.Option("--variant", help="Apply the recipe's named variant.")]
OutOpt = Annotated[
    Path | None, typer.Option("--out", "-o", help="Run folder (default runs/<recipe name>-<timestamp>).")
]
CacheOpt = Annotated[
    Path | None,
    typer.Option(
        "--cache", help="Embedding cache folder (default: recipe cache_dir, $SCORECAST_CACHE or ~/.cache/scorecast)."
    ),
]
DataOpt = Annotated[Path | None, typer.Option("--data", help="Data table to read (overrides data.path).")]
OverwriteOpt = Annotated[
    bool, typer.Option("--overwrite", help="Replace an existing run folder --out whole (refused otherwise).")
]
SelectOpt = Annotated[
    bool,
    typer.Option(
        "--select",
        help="Choose among the recipe's variants (or its select: block) by an inner CV inside each training fold; "
        "the outer figures stay untouched by the choice.",
    ),
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        "--threads", help="torch threads while training (sets training.threads; 1 is often fastest on a busy CPU)."
    ),
]

ProgressOpt = Annotated[
    bool,
    typer.Option(
        "--progress/--no-progress", help="Show a line per trained member: epoch, validation metric, time left."
    ),
]


def parse_vars(values: list[str] | None) -> dict[str, str]:
    """``--var NAME=VALUE`` pairs -> {NAME: VALUE} (values as typed, not YAML)."""
    return parse_assignments(values, "--var", example="NAME=VALUE", yaml_values=False)


def with_threads(overrides: list[str] | None, threads: int | None) -> list[str]:
    """The ``--set`` overrides, plus ``training.threads=N`` for ``--threads N``."""
    return list(overrides or []) + ([f"training.threads={threads}"] if threads is not None else [])


def print_summary(result, verb: str, seconds: float) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"scorecast {verb}: {'out-of-fold' if verb == 'cv' else 'held-out'} metrics")
    for col in ("target", "level", "n", "metric", "value", "95% interval"):
        table.add_column(col, justify="right" if col in ("value", "n") else "left")
    for target, levels in result.metrics.get("targets", {}).items():
        for level in ("utterance", "system"):
            n = levels.get("n" if level == "utterance" else "n_systems")
            for name, entry in (levels.get(level) or {}).items():
                table.add_row(target, level, _count(n), name, format_value(entry.get("value")), format_interval(entry))
    for target, levels in result.metrics.get("targets", {}).items():  # the listeners' split-half ceiling
        for level, key in (("clip", "utterance"), ("system", "system")):
            for name, value in ((levels.get("ceiling") or {}).get(level) or {}).items():
                table.add_row(target, f"{key} ceiling", "", name, format_value(value), "listeners' split-half")
    for target, levels in (result.metrics.get("test") or {}).get("targets", {}).items():
        for name, entry in (levels.get("utterance") or {}).items():
            table.add_row(
                target, "test", _count(levels.get("n")), name, format_value(entry.get("value")), format_interval(entry)
            )
    console.print(table)
    print_selection(console, result.metrics)
    print_baselines(console, result.metrics)
    print_members(console, result.metrics)
    for msg in result.metrics.get("warnings") or []:
        console.print(f"[yellow]warning:[/] {escape(msg)}", highlight=False)
    console.print(f"{len(result.members)} member(s); run folder: [bold]{result.out_dir}[/] ({seconds:.1f} s)")


def print_baselines(console, metrics: dict) -> None:
    """Each baseline's figure beside the model's, on the same items, with the paired difference."""
    from rich.table import Table

    bootstrap = (metrics.get("baselines") or {}).get("bootstrap")
    for target, metric, rows in baseline_tables(metrics):
        table = Table(
            title=f"{target}: baselines on the model's folds and items ({metric}; "
            f"model - baseline by {bootstrap} paired resamples)"
        )
        for col in BASELINE_COLUMNS:
            table.add_column(
                col.format(metric=metric), justify="left" if col in ("system", "kind", "verdict") else "right"
            )
        for row in rows:
            table.add_row(*map(escape, row))
        console.print(table)


def print_selection(console, metrics: dict) -> None:
    """What the inner CV chose in each fold."""
    sel = metrics.get("selection")
    if not sel:
        return
    for r in sel.get("per_fold") or []:
        scores = ", ".join(f"{k} {format_value(v)}" for k, v in r["scores"].items())
        console.print(
            f"select (fold {r.get('fold')}, seed {r.get('seed')}): [bold]{escape(r['chosen'])}[/] "
            f"(inner {sel['metric']}: {escape(scores)})",
            highlight=False,
        )


def print_members(console, metrics: dict) -> None:
    """The ensemble's members: validation metric, weight, and why."""
    from rich.table import Table

    rows = (metrics.get("ensemble") or {}).get("members") or []
    if not rows:
        return
    table = Table(title=f"ensemble of {len(rows)} member(s): weights ({(metrics.get('ensemble') or {}).get('kind')})")
    for col in ("fold", "seed", "repeat", f"validation {rows[0].get('metric')}", "weight", "why"):
        table.add_column(col, justify="left" if col == "why" else "right")
    for r in rows:
        table.add_row(
            str(r.get("fold")),
            str(r.get("seed")),
            str(r.get("repeat")),
            format_value(r.get("value")),
            f"{r['weight']:.3f}",
            escape(r.get("reason", "")),
        )
    console.print(table)


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(str(text))


def _count(n: Any) -> str:
    return "" if n is None else str(n)


def _run(
    verb: str,
    recipe_path,
    var,
    overrides,
    variant,
    out,
    cache,
    data,
    threads,
    progress=True,
    overwrite=False,
    select=False,
) -> None:
    from scorecast.cli.feedback import collect_skipped, report_skipped, training_lines
    from scorecast.runs.outdir import check_output_dir, staged_output_dir
    from scorecast.runs.prepare import prepare_run

    start = time.perf_counter()
    overrides = with_threads(overrides, threads)
    if out is not None:
        check_output_dir(out, overwrite)  # before any encoding
    with collect_skipped() as skipped:
        recipe, ready = prepare_run(
            recipe_path, parse_vars(var), overrides, variant, data, cache, with_val=verb == "train", select=select
        )
    out_dir = out or Path("runs") / f"{recipe.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    from scorecast.runs.cv import run_cv, run_train
    from scorecast.runs.folder import is_global_zero

    common = dict(encoder_identities=ready.identities, augmented=ready.augmented, test=ready.test)
    with (
        training_lines(enabled=progress and is_global_zero()),
        staged_output_dir(out_dir, overwrite) as staging,
    ):
        if verb == "cv":
            result = run_cv(recipe, ready.items, ready.features, staging, **common)
        else:
            result = run_train(recipe, ready.items, ready.features, staging, val=ready.val, **common)
    result.out_dir = out_dir
    result.bundle_path = out_dir / "bundle" if result.bundle_path is not None else None
    if is_global_zero():
        report_skipped(skipped, out_dir)
        print_summary(result, verb, time.perf_counter() - start)


def register(app: typer.Typer) -> None:
    _register_verb(
        app,
        "train",
        "Train the final scorer on all the data (early stopping on a held-out part, or on the "
        "recipe's val_data) and write a run folder.",
    )
    _register_verb(
        app, "cv", "Cross-validate a recipe: out-of-fold metrics, and the fold ensemble as the scorer, in a run folder."
    )


def _register_verb(app: typer.Typer, verb: str, doc: str) -> None:
    """Register ``scorecast VERB RECIPE`` (``train`` and ``cv`` take the same options) with help ``doc``."""

    def command(
        recipe: RecipeArg,
        var: VarOpt = None,
        set_: SetOpt = None,
        variant: VariantOpt = None,
        out: OutOpt = None,
        cache: CacheOpt = None,
        data: DataOpt = None,
        threads: ThreadsOpt = None,
        progress: ProgressOpt = True,
        overwrite: OverwriteOpt = False,
        select: SelectOpt = False,
    ) -> None:
        _run(verb, recipe, var, set_, variant, out, cache, data, threads, progress, overwrite, select)

    command.__doc__ = doc
    app.command(verb)(command)
