"""``scorecast score FILES/FOLDERS... --model dnsmos|distillmos|BUNDLE``: score audio without training.

One row per audio file (folders are searched recursively), the id being the file's path, one column
per score; to ``--out`` (.csv, .jsonl or .parquet) or, without it, as CSV on stdout. Zero-shot models
are listed in :mod:`scorecast.inference.zeroshot`; a trained bundle whose input is audio works too.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("score")
    def score(
        paths: Annotated[list[Path], typer.Argument(help="Audio files and/or folders (searched recursively).")],
        model: Annotated[
            str, typer.Option("--model", "-m", help="dnsmos, distillmos, or a scorer bundle folder.")
        ] = "dnsmos",
        out: Annotated[
            Path | None,
            typer.Option("--out", "-o", help="Scores file: .csv, .jsonl or .parquet (default: CSV on stdout)."),
        ] = None,
        cache: Annotated[
            Path | None,
            typer.Option("--cache", help="Embedding cache folder (default: $SCORECAST_CACHE or ~/.cache/scorecast)."),
        ] = None,
        no_cache: Annotated[bool, typer.Option("--no-cache", help="Keep results in memory only.")] = False,
        batch_size: Annotated[int, typer.Option("--batch-size", help="Files per model call.")] = 16,
        on_error: Annotated[
            str, typer.Option("--on-error", help="raise (default) or skip files that cannot be read.")
        ] = "raise",
        progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
    ) -> None:
        """Score audio files with a zero-shot MOS model (no training) or a trained scorer."""
        from rich.console import Console

        from scorecast.cache.store import EmbeddingCache
        from scorecast.inference.tables import output_format, write_frame
        from scorecast.inference.zeroshot import score_audio

        if out is not None:
            output_format(out)  # refuse a bad extension before any work
        store = None if no_cache else EmbeddingCache(cache)
        result = score_audio(
            model, [str(p) for p in paths], cache=store, batch_size=batch_size, on_error=on_error, progress=progress
        )
        frame = result["frame"]
        console = Console(stderr=True)
        if out is None:
            frame.to_csv(sys.stdout, index=False)
        else:
            write_frame(frame, out)
            console.print(f"scored {len(frame)} file(s) with {model} -> [bold]{out}[/] ({result['seconds']:.1f} s)")
        if result["skipped"]:
            first = next(iter(result["skipped"].items()))
            console.print(f"[yellow]left out {len(result['skipped'])} file(s)[/]; the first: {first[0]}: {first[1]}")
