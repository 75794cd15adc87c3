"""``scorecast predict BUNDLE TABLE -o OUT``: score every item of a table with a trained scorer.
``scorecast predict BUNDLE a.wav b.flac DIR/ -o OUT`` scores audio files and folders (ids: the paths),
and ``--text "..."`` scores texts, without a table; a table needs only the scorer's inputs.

OUT is CSV, JSONL or Parquet (by its extension): one row per item with ``id``, a column per target
(the score, clipped to the target's range) and ``std.<target>`` where the scorer gives a spread.
The table is read like training reads it: the bundle recipe's reader and options unless
``--reader`` / ``--option`` say otherwise. Features come through the embedding cache.
``--submission xacle|audiomos|shl|da5401`` also writes the challenge file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("predict")
    def predict(
        bundle: Annotated[Path, typer.Argument(help="Scorer bundle folder (RUN/bundle).")],
        out: Annotated[Path, typer.Option("--out", "-o", help="Predictions file: .csv, .jsonl or .parquet.")],
        inputs: Annotated[
            list[Path] | None,
            typer.Argument(help="A table of items, or audio files and/or folders (searched recursively)."),
        ] = None,
        text: Annotated[
            list[str] | None,
            typer.Option("--text", help="A text to score (scorers with one text input); repeatable."),
        ] = None,
        reader: Annotated[
            str | None, typer.Option("--reader", help="Reader for TABLE (default: the recipe's).")
        ] = None,
        option: Annotated[
            list[str] | None, typer.Option("--option", help="Reader option KEY=VALUE; repeatable.")
        ] = None,
        cache: Annotated[
            Path | None,
            typer.Option(
                "--cache",
                help="Embedding cache folder (default: recipe cache_dir, $SCORECAST_CACHE or ~/.cache/scorecast).",
            ),
        ] = None,
        no_cache: Annotated[bool, typer.Option("--no-cache", help="Keep features in memory only.")] = False,
        submission: Annotated[
            str | None,
            typer.Option(
                "--submission",
                help="Also write a challenge file: xacle, audiomos, shl or da5401 (default: the recipe's output.submission).",
            ),
        ] = None,
        submission_out: Annotated[
            Path | None,
            typer.Option(
                "--submission-out", help="Where the challenge file goes (default: beside OUT; answer.txt for audiomos)."
            ),
        ] = None,
        round_scores: Annotated[
            bool | None,
            typer.Option(
                "--round/--no-round",
                help="Round submission scores to integers (default: the recipe's output.round_scores).",
            ),
        ] = None,
        encoder_path: Annotated[
            list[str] | None,
            typer.Option(
                "--encoder-path", help="OLD=NEW: a model folder the bundle names, and where it is here; repeatable."
            ),
        ] = None,
        on_error: Annotated[
            str, typer.Option("--on-error", help="raise (default) or skip rows that cannot be read or scored.")
        ] = "raise",
        batch_size: Annotated[int, typer.Option("--batch-size", help="Encoder batch size.")] = 32,
        progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show encoding progress.")] = True,
    ) -> None:
        """Score a table, audio files, folders, or --text with a trained scorer bundle."""
        from rich.console import Console

        from scorecast.inference.tables import run_predict  # here: a warm `embed` need not import it

        result = run_predict(
            bundle,
            list(inputs or []),
            out,
            texts=text,
            reader=reader,
            options=option,
            cache_dir=cache,
            no_cache=no_cache,
            submission=submission,
            submission_out=submission_out,
            round_scores=round_scores,
            encoder_paths=encoder_path,
            on_error=on_error,
            batch_size=batch_size,
            progress=progress,
        )
        console = Console(stderr=True)
        console.print(f"scored {result['rows']} item(s) -> [bold]{result['out']}[/] ({result['seconds']:.1f} s)")
        if result["submission"] is not None:
            console.print(f"submission -> [bold]{result['submission']}[/]")
        if result.get("flagged"):
            console.print(
                f"[yellow]{result['flagged']} item(s) flagged[/] as unlike the training data (see the flags column)"
            )
        if result["skipped"]:
            from rich.markup import escape

            from scorecast.cli.feedback import SHOW_FIRST

            console.print(f"[yellow]left out {len(result['skipped'])} row(s)/item(s)[/]; the first:", highlight=False)
            for reason in result["skipped"][:SHOW_FIRST]:
                console.print(f"  {escape(str(reason))}", highlight=False)
