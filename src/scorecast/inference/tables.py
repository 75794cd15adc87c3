"""Scoring a table with a trained scorer: read it as training did (the recipe's reader unless told
otherwise), predict, and write the predictions (CSV, JSONL or Parquet) and a challenge submission.
Audio files, folders and texts are scored without a table (:mod:`scorecast.inference.sources`).
What ``scorecast predict`` and ``Scorer.predict(path)`` run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from scorecast.config import parse_assignments
from scorecast.errors import ConfigError
from scorecast.inference.frames import prediction_columns, write_columns
from scorecast.inference.sources import find_audio, is_audio_path, items_from_sources

OUTPUT_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
SUBMISSION_FILES = {"audiomos": "answer.txt"}


def output_format(path: Path) -> str:
    fmt = OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"-o {path}: expected a file ending in .csv, .jsonl or .parquet, got '{path.suffix or 'no extension'}'"
        )
    return fmt


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """``["key=value", ...]`` -> {key: YAML-parsed value} (for ``--option``)."""
    return parse_assignments(pairs, "--option", example="KEY=VALUE (e.g. audio_dir=clips)")


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
        raise DataError(
            f"{exc.message} (read with the recipe's reader '{recipe.data.reader}'; for a plain table "
            f"with an id column{hint})",
            file=exc.file,
            row=exc.row,
            field=exc.field,
        ) from exc


def table_reader_hint(inputs) -> str:
    """``, sentence1 and sentence2 columns: --reader table --option 'text=[sentence1, sentence2]'`` and the like."""
    columns = (["audio"] if inputs.audio else []) + list(inputs.audios) + list(inputs.texts) + list(inputs.vectors)
    flags = ["--reader table"]
    if inputs.audios:
        flags.append(f"--option 'audio=[{', '.join(inputs.audios)}]'")
    if inputs.texts:
        flags.append(f"--option 'text=[{', '.join(inputs.texts)}]'")
    if inputs.vectors:
        flags.append(f"--option 'vectors=[{', '.join(inputs.vectors)}]'")
    return f" and {' and '.join(columns)} column(s): {' '.join(flags)}" if columns else ": --reader table"


def write_frame(frame, path: Path) -> Path:
    """Write a table (a DataFrame, or columns as from :func:`prediction_columns`) as its extension says."""
    fmt = output_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = frame if isinstance(frame, dict) else {name: frame[name].tolist() for name in frame.columns}
    write_columns(cols, path, fmt)
    return path


def submission_path(name: str, out: Path) -> Path:
    return out.parent / SUBMISSION_FILES.get(name, f"submission-{name}.csv")


def check_not_input(out: Path, table: Path | list[Path] | None, bundle: Path, flag: str) -> None:
    """ConfigError when an output file is an input (the table, or one of the files given) or lies inside
    the bundle folder."""
    from scorecast.data.outputs import check_not_an_input

    sources = [table] if isinstance(table, (str, Path)) else list(table or [])
    names = {"input table" if len(sources) == 1 else f"input {p}": p for p in sources}
    check_not_an_input(out, names, flag, folders={"scorer bundle": bundle})


def run_predict(
    bundle: Path,
    table: Path | list[Path] | None,
    out: Path,
    *,
    texts: list[str] | None = None,
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
    """What the command does, callable from Python; returns {"rows", "out", "submission", "skipped", "seconds"}.

    ``table``: one table, or audio files and folders (searched recursively; ids are the paths);
    ``texts``: texts for a scorer with one text input (paired in order with the audio files where the
    scorer reads both)."""
    from scorecast.cache.store import EmbeddingCache
    from scorecast.data.submissions import SUBMISSIONS
    from scorecast.inference.bundle import load_bundle
    from scorecast.inference.predictor import Predictor, parse_encoder_paths

    start = time.perf_counter()
    output_format(out)  # refuse a bad extension before any work
    check_not_input(out, table, bundle, "--out")
    loaded = load_bundle(bundle)
    recipe = loaded.recipe
    submission = submission or recipe.output.submission
    writer = SUBMISSIONS.build(submission) if submission else None
    if writer is not None:
        submission_out = Path(submission_out or submission_path(submission, out))
        check_not_input(submission_out, table, bundle, "--submission-out")
        if submission_out.resolve() == Path(out).resolve():
            raise ConfigError(f"--submission-out {submission_out}: expected a file other than --out, got the same file")
    cache = None if no_cache else EmbeddingCache(cache_dir or recipe.cache_dir)
    predictor = Predictor(
        loaded, cache=cache, encoder_paths=parse_encoder_paths(encoder_paths), batch_size=batch_size, progress=progress
    )
    sources = [table] if isinstance(table, (str, Path)) else list(table or [])
    if len(sources) == 1 and Path(sources[0]).is_file() and not is_audio_path(sources[0]) and not texts:
        items = read_table(recipe, predictor.inputs, Path(sources[0]), reader, parse_options(options), on_error)
        usable = [predictor.inputs.restrict(item) for item in items]  # the reader fills every field its format has
        read_skipped = list(items.skipped)
    else:
        usable, read_skipped = items_from_sources(predictor.inputs, find_audio(sources), texts or []), []
    ids, prediction, skipped = predictor.predict_report(usable, on_error=on_error)
    skipped = read_skipped + [f"item '{k}': {v}" for k, v in skipped.items()]
    frame = prediction_columns(
        ids, loaded.target_names, prediction.mean, prediction.std, pred_prefix="", flags=prediction.flags
    )
    write_frame(frame, out)
    written = None
    if writer is not None:
        preds = {t.name: prediction.mean[:, j] for j, t in enumerate(loaded.targets)}
        rounded = recipe.output.round_scores if round_scores is None else round_scores
        written = writer.write(submission_out, ids, preds, loaded.targets, rounded)
    return {
        "rows": len(ids),
        "out": out,
        "submission": written,
        "skipped": skipped,
        "flagged": sum(1 for f in prediction.flags or [] if f),
        "seconds": time.perf_counter() - start,
    }
