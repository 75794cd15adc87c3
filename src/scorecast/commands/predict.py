"""``scorecast predict BUNDLE TABLE -o OUT``: score every item of a table with a trained scorer.

OUT is CSV, JSONL or Parquet (by its extension): one row per item with ``id``, a column per target
(the score, clipped to the target's range) and ``std.<target>`` where the scorer gives a spread.
The table is read like training reads it: the bundle recipe's reader and options unless
``--reader`` / ``--option`` say otherwise. Features come through the embedding cache.
``--submission xacle|audiomos|shl|da5401`` also writes the challenge file.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from scorecast.errors import ConfigError

OUTPUT_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
SUBMISSION_FILES = {"audiomos": "answer.txt"}


def output_format(path: Path) -> str:
    fmt = OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(f"-o {path}: expected a file ending in .csv, .jsonl or .parquet, got '{path.suffix or 'no extension'}'")
    return fmt


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """``["key=value", ...]`` -> {key: YAML-parsed value} (for ``--option``)."""
    import yaml

    out: dict[str, Any] = {}
    for text in pairs or []:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--option: expected KEY=VALUE (e.g. audio_dir=clips), got {text!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def reader_for(recipe, reader: str | None, options: dict[str, Any]):
    """The reader to read a prediction table with: the recipe's (with its options) unless told otherwise.

    Readers that can read unlabelled tables are asked to (``labelled=False``, or None where the reader
    takes "score when present") unless the options say.
    """
    import inspect

    from scorecast.data.readers import READERS

    name = reader or recipe.data.reader
    base = dict(recipe.data.options) if name == recipe.data.reader else {}
    base.update(options)
    cls = READERS.get(name)
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        params = {}
    if "labelled" in params and "labelled" not in base:
        default = params["labelled"].default
        base["labelled"] = None if default is None else False
    return READERS.build(name, **base)


def read_table(recipe, inputs, table: Path, reader: str | None, options: dict[str, Any], on_error: str):
    """The items of ``table``. When the recipe's own challenge reader (not ``table``) cannot read it, the
    error says how to read a plain table with the inputs the scorer needs instead."""
    from scorecast.errors import DataError

    try:
        return reader_for(recipe, reader, options).read(table, on_error=on_error)
    except DataError as exc:
        if reader is not None or recipe.data.reader == "table":
            raise
        hint = table_reader_hint(inputs)
        raise DataError(f"{exc.message} (read with the recipe's reader '{recipe.data.reader}'; for a plain table "
                        f"with an id column{hint})", file=exc.file, row=exc.row, field=exc.field) from exc


def table_reader_hint(inputs) -> str:
    """``, sentence1 and sentence2 columns: --reader table --option 'text=[sentence1, sentence2]'`` and the like."""
    columns = (["audio"] if inputs.audio else []) + list(inputs.texts) + list(inputs.vectors)
    flags = ["--reader table"]
    if inputs.texts:
        flags.append(f"--option 'text=[{', '.join(inputs.texts)}]'")
    if inputs.vectors:
        flags.append(f"--option 'vectors=[{', '.join(inputs.vectors)}]'")
    return f" and {' and '.join(columns)} column(s): {' '.join(flags)}" if columns else ": --reader table"


def predictions_frame(ids, prediction, target_names):
    """id, <target>..., std.<target>... as a pandas DataFrame."""
    import pandas as pd

    frame = pd.DataFrame({"id": [str(i) for i in ids]})
    for j, name in enumerate(target_names):
        frame[name] = prediction.mean[:, j].astype(float)
    if prediction.std is not None:
        for j, name in enumerate(target_names):
            frame[f"std.{name}"] = prediction.std[:, j].astype(float)
    return frame


def write_frame(frame, path: Path) -> Path:
    fmt = output_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def submission_path(name: str, out: Path) -> Path:
    return out.parent / SUBMISSION_FILES.get(name, f"submission-{name}.csv")


def run_predict(
    bundle: Path,
    table: Path,
    out: Path,
    *,
    reader: str | None = None,
    options: list[str] | None = None,
    cache_dir: Path | None = None,
    no_cache: bool = False,
    submission: str | None = None,
    submission_out: Path | None = None,
    round_scores: bool | None = None,
    encoder_paths: list[str] | None = None,
    on_error: str = "raise",
    batch_size: int = 32,
    progress: bool = True,
) -> dict[str, Any]:
    """What the command does, callable from Python; returns {"rows", "out", "submission", "seconds"}."""
    from scorecast.bundle import load_bundle
    from scorecast.cache import EmbeddingCache
    from scorecast.data.submissions import SUBMISSIONS
    from scorecast.predictor import Predictor, parse_encoder_paths

    start = time.perf_counter()
    output_format(out)  # refuse a bad extension before any work
    loaded = load_bundle(bundle)
    recipe = loaded.recipe
    submission = submission or recipe.output.submission
    writer = SUBMISSIONS.build(submission) if submission else None
    cache = None if no_cache else EmbeddingCache(cache_dir or recipe.cache_dir)
    predictor = Predictor(
        loaded, cache=cache, encoder_paths=parse_encoder_paths(encoder_paths), batch_size=batch_size, progress=progress
    )
    items = read_table(recipe, predictor.inputs, table, reader, parse_options(options), on_error)
    usable = [predictor.inputs.restrict(item) for item in items]  # the reader fills every field its format has
    ids, prediction, skipped = predictor.predict_report(usable, on_error=on_error)
    skipped = list(items.skipped) + [f"item '{k}': {v}" for k, v in skipped.items()]
    frame = predictions_frame(ids, prediction, loaded.target_names)
    write_frame(frame, out)
    written = None
    if writer is not None:
        preds = {t.name: prediction.mean[:, j] for j, t in enumerate(loaded.targets)}
        rounded = recipe.output.round_scores if round_scores is None else round_scores
        written = writer.write(submission_out or submission_path(submission, out), ids, preds, loaded.targets, rounded)
    return {"rows": len(frame), "out": out, "submission": written, "skipped": skipped,
            "seconds": time.perf_counter() - start}  # fmt: skip


def register(app: typer.Typer) -> None:
    @app.command("predict")
    def predict(
        bundle: Annotated[Path, typer.Argument(help="Scorer bundle folder (RUN/bundle).")],
        table: Annotated[Path, typer.Argument(help="Table of items to score.")],
        out: Annotated[Path, typer.Option("--out", "-o", help="Predictions file: .csv, .jsonl or .parquet.")],
        reader: Annotated[str | None, typer.Option("--reader", help="Reader for TABLE (default: the recipe's).")] = None,
        option: Annotated[list[str] | None, typer.Option("--option", help="Reader option KEY=VALUE; repeatable.")] = None,
        cache: Annotated[Path | None, typer.Option("--cache", help="Embedding cache folder (default: recipe cache_dir, $SCORECAST_CACHE or ~/.cache/scorecast).")] = None,
        no_cache: Annotated[bool, typer.Option("--no-cache", help="Keep features in memory only.")] = False,
        submission: Annotated[str | None, typer.Option("--submission", help="Also write a challenge file: xacle, audiomos, shl or da5401 (default: the recipe's output.submission).")] = None,
        submission_out: Annotated[Path | None, typer.Option("--submission-out", help="Where the challenge file goes (default: beside OUT; answer.txt for audiomos).")] = None,
        round_scores: Annotated[bool | None, typer.Option("--round/--no-round", help="Round submission scores to integers (default: the recipe's output.round_scores).")] = None,
        encoder_path: Annotated[list[str] | None, typer.Option("--encoder-path", help="OLD=NEW: a model folder the bundle names, and where it is here; repeatable.")] = None,
        on_error: Annotated[str, typer.Option("--on-error", help="raise (default) or skip rows that cannot be read or scored.")] = "raise",
        batch_size: Annotated[int, typer.Option("--batch-size", help="Encoder batch size.")] = 32,
        progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show encoding progress.")] = True,
    ) -> None:
        """Score every item of TABLE with a trained scorer bundle."""
        from rich.console import Console

        result = run_predict(
            bundle, table, out, reader=reader, options=option, cache_dir=cache, no_cache=no_cache,
            submission=submission, submission_out=submission_out, round_scores=round_scores,
            encoder_paths=encoder_path, on_error=on_error, batch_size=batch_size, progress=progress,
        )  # fmt: skip
        console = Console(stderr=True)
        console.print(f"scored {result['rows']} item(s) -> [bold]{result['out']}[/] ({result['seconds']:.1f} s)")
        if result["submission"] is not None:
            console.print(f"submission -> [bold]{result['submission']}[/]")
        if result["skipped"]:
            console.print(f"[yellow]left out {len(result['skipped'])} row(s)[/]; the first: {result['skipped'][0]}")
