"""One batch at a time: load the inputs, encode them, check the outputs; and the progress bar.

Used by :func:`scorecast.encoders.pipeline.encode_items` in-process and by the worker pool and the
distributed predict loop of :mod:`scorecast.encoders.distributed`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np

from scorecast.config import EncoderSpec
from scorecast.data.audio import prepare_audio
from scorecast.encoders.base import Encoded, Encoder
from scorecast.errors import ConfigError, DataError, ScorecastError

OnError = Literal["raise", "skip"]


def load_input(payload: Any, spec: EncoderSpec, encoder: Encoder) -> Any:
    """What the encoder receives for one payload: a waveform at its rate, a text, or a vector."""
    if spec.reads_audio:
        return prepare_audio(
            payload,
            sample_rate=int(encoder.sample_rate),
            mono=getattr(encoder, "mono", True),
            normalize_loudness=getattr(encoder, "normalize_loudness", None),
        )
    return payload


def encode_batch_checked(
    encoder: Encoder, spec: EncoderSpec, batch: list[tuple[str, Any]], on_error: OnError
) -> tuple[list[tuple[str, Encoded]], list[tuple[str, str]]]:
    """Load and encode one batch of (key, payload); returns (done, failed (key, reason)).

    With ``on_error="skip"`` an input that cannot be loaded, or a batch the encoder rejects with a
    scorecast error, is retried item by item and the failing items are reported, not raised.
    """
    inputs, keys, failed = [], [], []
    for key, payload in batch:
        try:
            inputs.append(load_input(payload, spec, encoder))
            keys.append(key)
        except ScorecastError as exc:
            if on_error == "raise":
                raise
            failed.append((key, str(exc)))
    if not keys:
        return [], failed
    try:
        outs = _checked_outputs(encoder, spec, inputs, keys, batch)
        return list(zip(keys, outs)), failed
    except ScorecastError as exc:
        if on_error == "raise":
            raise
        if len(keys) == 1:
            return [], failed + [(keys[0], str(exc))]
    done = []
    for key, x in zip(keys, inputs):
        try:
            done.append((key, _checked_outputs(encoder, spec, [x], [key], batch)[0]))
        except ScorecastError as exc:
            failed.append((key, str(exc)))
    return done, failed


def _checked_outputs(
    encoder: Encoder, spec: EncoderSpec, inputs: list[Any], keys: list[str], batch: list
) -> list[Encoded]:
    outs = encoder.encode_batch(inputs)
    if len(outs) != len(inputs):
        raise ConfigError(f"encoder '{spec.name}': encode_batch returned {len(outs)} results for {len(inputs)} inputs")
    for key, out in zip(keys, outs):
        pooled = np.asarray(out.pooled)
        if pooled.ndim != 1 or pooled.size == 0:
            raise ConfigError(f"encoder '{spec.name}': expected a pooled vector of shape (D,), got {pooled.shape}")
        if not np.isfinite(pooled).all():
            what = dict(batch).get(key)
            shown = what if isinstance(what, str) and len(what) < 300 else f"input with key {key[:12]}"
            raise DataError(f"encoder '{spec.name}' gave non-finite values for {shown}")
    return outs


def chunks(seq: list, size: int) -> Iterator[list]:
    """Consecutive slices of ``seq`` of ``size`` (the last may be shorter)."""
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


@contextmanager
def progress_bar(enabled: bool, total: int, label: str) -> Iterator[Any]:
    """A rich progress bar (items, items/s, ETA) on stderr; yields ``advance(n)``."""
    if not enabled or total == 0:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("-- items/s" if speed is None else f"{speed:.1f} items/s")

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)
