"""``scorecast embed``: encode a table (or every encoder of a recipe) into the embedding cache.

    scorecast embed data.csv --option audio=path --encoder egemaps --workers 2
    scorecast embed data.csv --option text=caption --encoder sentence --input text.caption
    scorecast embed --recipe recipes/stsb.yaml --shard 0/4        # one of 4 machines
    scorecast embed --recipe recipes/shl.yaml --devices 2 --device cuda   # Lightning DDP predict

Every later ``train``/``cv``/``predict`` reads the same entries back from the cache.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from scorecast.config import parse_assignments
from scorecast.runs.embed import run_embed

TableArg = Annotated[Path | None, typer.Argument(help="Item table to read (with --recipe: overrides data.path).")]


def print_summary(results, cache_root: Path, seconds: float) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    table = Table(title="scorecast embed")
    table.add_column("feature", overflow="fold", min_width=16)
    table.add_column("identity", no_wrap=True, min_width=16)
    for col in ("items", "new", "cached", "skip", "dim"):
        table.add_column(col, justify="right", no_wrap=True)
    for name, res, _ in results:
        dim = res.pooled.shape[1] if res.pooled.size else 0
        table.add_row(
            name,
            res.identity_hash,
            str(len(res.ids) + len(res.skipped)),
            str(res.encoded),
            str(res.cached),
            str(len(res.skipped)),
            str(dim),
        )
    console.print(table)
    for name, res, rows_left_out in results:
        if rows_left_out:
            console.print(f"[yellow]{name}: the reader left out {rows_left_out} row(s)[/]")
        for item_id, reason in list(res.skipped.items())[:5]:
            console.print(
                Text.assemble(("skipped ", "yellow"), f"{item_id}: {reason}"), highlight=False, soft_wrap=True
            )
        if len(res.skipped) > 5:
            console.print(f"... and {len(res.skipped) - 5} more skipped by {name}")
    total = (
        sum(r.encoded for _, r, _ in results),
        sum(r.cached for _, r, _ in results),
        sum(len(r.skipped) for _, r, _ in results),
    )
    console.print(
        f"encoded {total[0]}, cached {total[1]}, skipped {total[2]} in {seconds:.1f} s; cache: {cache_root}",
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    @app.command("embed")
    def embed(
        table: TableArg = None,
        recipe: Annotated[
            Path | None, typer.Option("--recipe", help="Embed every encoder of this recipe (its data, and test data).")
        ] = None,
        reader: Annotated[
            str, typer.Option("--reader", help="Reader of TABLE (table, xacle, shl, stsb, ...).")
        ] = "table",
        option: Annotated[
            list[str] | None, typer.Option("--option", help="Reader option KEY=VALUE (YAML value); repeatable.")
        ] = None,
        encoder: Annotated[
            str | None, typer.Option("--encoder", help="Encoder name (sentence, hf-audio, egemaps, ...).")
        ] = None,
        input_: Annotated[
            str, typer.Option("--input", help="Input of each item: audio, text.<field> or vector.<field>.")
        ] = "audio",
        param: Annotated[
            list[str] | None, typer.Option("--param", help="Encoder parameter KEY=VALUE (YAML value); repeatable.")
        ] = None,
        alias: Annotated[str | None, typer.Option("--alias", help="Feature name (default <encoder>:<input>).")] = None,
        sequence: Annotated[bool, typer.Option("--sequence", help="Also store frame/token sequences.")] = False,
        cache: Annotated[
            Path | None,
            typer.Option(
                "--cache", help="Cache folder (default: recipe cache_dir, $SCORECAST_CACHE or ~/.cache/scorecast)."
            ),
        ] = None,
        float16: Annotated[bool, typer.Option("--float16", help="Store entries as float16 (half the disk).")] = False,
        batch_size: Annotated[
            int | None, typer.Option("--batch-size", min=1, help="Inputs per batch (default: the encoder's own).")
        ] = None,
        workers: Annotated[
            int | None,
            typer.Option(
                "--workers",
                min=0,
                help="Worker processes for per-clip CPU extractors (default: one per core; 0: this process).",
            ),
        ] = None,
        device: Annotated[
            str | None, typer.Option("--device", help="Device for encoders that take one (cpu, cuda, cuda:1, auto).")
        ] = None,
        shard: Annotated[
            str | None, typer.Option("--shard", help="Encode only shard I of N (I/N), e.g. one SLURM array task.")
        ] = None,
        devices: Annotated[
            int, typer.Option("--devices", min=1, help="Devices for Lightning DDP predict (> 1: distributed).")
        ] = 1,
        accelerator: Annotated[
            str | None,
            typer.Option("--accelerator", help="Lightning accelerator with --devices (default from --device)."),
        ] = None,
        on_error: Annotated[
            str, typer.Option("--on-error", help="raise: stop at the first bad item; skip: leave it out and report it.")
        ] = "raise",
        pack: Annotated[
            bool, typer.Option("--pack/--no-pack", help="Pack pooled vectors for fast memory-mapped reads.")
        ] = True,
        progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
        var: Annotated[list[str] | None, typer.Option("--var", help="Recipe variable NAME=VALUE; repeatable.")] = None,
        set_: Annotated[
            list[str] | None, typer.Option("--set", help="Override a recipe field (dotted KEY=VALUE); repeatable.")
        ] = None,
    ) -> None:
        """Encode items into the embedding cache (each input once per encoder; reruns reuse it)."""
        start = time.perf_counter()
        variables = {k: str(v) for k, v in parse_assignments(var, "--var").items()}
        results, root = run_embed(
            table,
            recipe,
            reader,
            parse_assignments(option, "--option"),
            encoder,
            input_,
            parse_assignments(param, "--param"),
            alias,
            sequence,
            cache,
            float16,
            batch_size,
            workers,
            device,
            shard,
            devices,
            accelerator,
            on_error,
            pack,
            progress,
            variables,
            list(set_ or []),
        )
        if all(res.rank == 0 for _, res, _ in results):  # under DDP only the first process prints
            print_summary(results, root, time.perf_counter() - start)
