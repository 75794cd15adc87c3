"""``scorecast demo``: the main job end to end on a corpus made on the spot (see :mod:`scorecast.demo.job`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from scorecast.errors import ConfigError

MIN_CLIPS = 20


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the corpus, cache, run and report.")] = Path(
            "demo-run"
        ),
        n: Annotated[int | None, typer.Option("--n", help="Clips to make (default 160; 60 with --quick).")] = None,
        quick: Annotated[
            bool, typer.Option("--quick", help="Fewer clips and epochs: a smoke test in well under a minute.")
        ] = False,
        seed: Annotated[int, typer.Option("--seed", help="Seed of the corpus (same seed, same clips and labels).")] = 0,
        encoder: Annotated[
            list[str] | None,
            typer.Option(
                "--encoder",
                help="Audio encoder(s) to use; repeatable (default egemaps; dnsmos is about 2.5 CPU-s per clip).",
            ),
        ] = None,
    ) -> None:
        """Make a scored speech corpus (no download), embed it, cross-validate, report, and score new clips."""
        from rich.console import Console

        from scorecast.demo.job import run_demo

        count = n if n is not None else (60 if quick else 160)
        if count < MIN_CLIPS:
            raise ConfigError(f"--n: expected at least {MIN_CLIPS} clips (5 folds need a few per fold), got {count}")
        console = Console()
        start = time.perf_counter()
        console.print(f"[bold]scorecast demo[/]: {count} clips{' (quick)' if quick else ''} -> {out}")
        result = run_demo(
            out,
            n=count,
            quick=quick,
            seed=seed,
            encoders=tuple(encoder or ("egemaps",)),
            log=lambda msg: console.print(f"  - {msg}", highlight=False, soft_wrap=True),
        )
        print_result(console, result, time.perf_counter() - start)


def print_result(console, result, seconds: float) -> None:
    """The metrics with their intervals, the fresh clips scored, and where everything is."""
    from rich.table import Table

    table = Table(title="out-of-fold metrics (95 % bootstrap intervals)")
    for col in ("target", "level", "metric", "value", "95% interval"):
        table.add_column(col, justify="right" if col == "value" else "left")
    for target, levels in result.metrics.get("targets", {}).items():
        for level in ("utterance", "system"):
            for name in ("lcc", "srcc", "rmse"):
                entry = (levels.get(level) or {}).get(name)
                if not entry:
                    continue
                lo, hi = entry.get("low"), entry.get("high")
                ci = f"[{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else ""
                table.add_row(
                    target, "clip" if level == "utterance" else "condition", name.upper(), f"{entry['value']:.3f}", ci
                )
    console.print(table)
    fresh = Table(title="new clips (a voice the corpus lacks), scored through the bundle with the Python API")
    for col in ("clip", "true score (STOI)", "predicted", "std"):
        fresh.add_column(col, justify="left" if col == "clip" else "right")
    for row in result.fresh:
        std = "" if row["std"] is None else f"{row['std']:.2f}"
        fresh.add_row(row["clip"], f"{row['true']:.2f} ({row['stoi']:.3f})", f"{row['pred']:.2f}", std)
    console.print(fresh)
    steps = ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items())
    console.print(f"report: [bold]{result.report}[/]", soft_wrap=True)
    console.print(
        f"run folder: {result.run_dir} (bundle: {result.run_dir / 'bundle'}); corpus: {result.table}", soft_wrap=True
    )
    console.print(f"done in {seconds:.0f} s ({steps})", soft_wrap=True)
