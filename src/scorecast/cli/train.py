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
from scorecast.errors import ConfigError

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
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        "--threads", help="torch threads while training (sets training.threads; 1 is often fastest on a busy CPU)."
    ),
]


def parse_vars(values: list[str] | None) -> dict[str, str]:
    """``--var NAME=VALUE`` pairs -> {NAME: VALUE} (values as typed, not YAML)."""
    return parse_assignments(values, "--var", example="NAME=VALUE", yaml_values=False)


def prepare(recipe_path: Path, var, overrides, variant, data, cache_dir, with_val: bool = True):
    """Load the recipe, read items, transcribe (if the recipe has ASR), encode features (and
    augmented copies, and the validation and test data) through the cache. Returns the recipe and
    :func:`scorecast.runs.prepare.prepare_training_data`'s :class:`TrainingData`."""
    from scorecast.cache.store import EmbeddingCache
    from scorecast.data.readers import read_items
    from scorecast.runs.prepare import prepare_training_data

    recipe = load_with_data(recipe_path, parse_vars(var), list(overrides or []), variant, data)
    cache = EmbeddingCache(cache_dir or recipe.cache_dir)
    items = read_items(recipe.data)
    return recipe, prepare_training_data(recipe, items, cache, where=str(recipe_path), with_val=with_val)


def with_threads(overrides: list[str] | None, threads: int | None) -> list[str]:
    """The ``--set`` overrides, plus ``training.threads=N`` for ``--threads N``."""
    return list(overrides or []) + ([f"training.threads={threads}"] if threads is not None else [])


def load_with_data(
    recipe_path: Path, variables: dict[str, str], overrides: list[str], variant: str | None, data: Path | None
):
    """The recipe, with ``data.path`` replaced by ``data`` (before ``${VAR}`` expansion, so a variable
    used only in the replaced path need not be set)."""
    from scorecast.config import load_recipe, read_recipe_file

    if data is None:
        return load_recipe(recipe_path, variables=variables, overrides=overrides, variant=variant)
    raw = read_recipe_file(recipe_path)
    if not isinstance(raw.get("data", {}), dict):
        raise ConfigError(f"{recipe_path}: expected 'data' to be a mapping, got {type(raw['data']).__name__}")
    raw.setdefault("data", {})["path"] = str(data)
    try:
        return load_recipe(raw, variables=variables, overrides=overrides, variant=variant)
    except ConfigError as exc:
        raise ConfigError(f"{recipe_path} (with --data {data}): {exc}") from exc


def print_summary(result, verb: str, seconds: float) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"scorecast {verb}: {'out-of-fold' if verb == 'cv' else 'held-out'} metrics")
    for col in ("target", "level", "metric", "value", "95% interval"):
        table.add_column(col, justify="right" if col in ("value",) else "left")
    for target, levels in result.metrics.get("targets", {}).items():
        for level in ("utterance", "system"):
            for name, entry in (levels.get(level) or {}).items():
                table.add_row(target, level, name, _fmt(entry.get("value")), _interval(entry))
    for target, levels in (result.metrics.get("test") or {}).get("targets", {}).items():
        for name, entry in (levels.get("utterance") or {}).items():
            table.add_row(target, "test", name, _fmt(entry.get("value")), _interval(entry))
    console.print(table)
    console.print(f"{len(result.members)} member(s); run folder: [bold]{result.out_dir}[/] ({seconds:.1f} s)")


def _fmt(value: Any) -> str:
    return "n/a" if value is None or value != value else f"{value:.4f}"


def _interval(entry: dict) -> str:
    low, high = entry.get("low"), entry.get("high")
    if low is None or high is None or low != low or high != high:
        return ""
    return f"[{low:.4f}, {high:.4f}]"


def _run(verb: str, recipe_path, var, overrides, variant, out, cache, data, threads) -> None:
    start = time.perf_counter()
    overrides = with_threads(overrides, threads)
    recipe, ready = prepare(recipe_path, var, overrides, variant, data, cache, with_val=verb == "train")
    out_dir = out or Path("runs") / f"{recipe.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    from scorecast.runs.cv import run_cv, run_train
    from scorecast.runs.folder import is_global_zero

    common = dict(encoder_identities=ready.identities, augmented=ready.augmented, test=ready.test)
    if verb == "cv":
        result = run_cv(recipe, ready.items, ready.features, out_dir, **common)
    else:
        result = run_train(recipe, ready.items, ready.features, out_dir, val=ready.val, **common)
    if is_global_zero():
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
    ) -> None:
        _run(verb, recipe, var, set_, variant, out, cache, data, threads)

    command.__doc__ = doc
    app.command(verb)(command)
