"""One batch at a time: load the inputs, encode them, check the outputs; and the progress bar.

Used by :func:`scorecast.encoders.pipeline.encode_items` in-process and by the worker pool and the
distributed predict loop of :mod:`scorecast.encoders.distributed`.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from scorecast.config import EncoderSpec
from scorecast.data.audio import prepare_audio
from scorecast.encoders.base import Encoded, Encoder
from scorecast.errors import ConfigError, DataError, ScorecastError

OnError = Literal["raise", "skip"]


@dataclass(frozen=True)
class AudioPair:
    """The payload of a two-input encoder (one that sets ``Encoder.reference_param``): a stimulus and its
    reference, each a path or an in-memory ``(waveform, sample_rate)``; :func:`load_input` turns it into a
    ``(stimulus, reference)`` tuple of waveforms, both at the encoder's rate."""

    stimulus: Any
    reference: Any


def reference_field(spec: EncoderSpec, encoder_class: Any) -> str | None:
    """The audio field a two-input encoder compares ``spec.input`` with (the value of its
    ``reference_param`` in ``spec.params``), or None for a one-input encoder; ConfigError where the
    param is missing or not a field name, or the spec does not read audio."""
    param = getattr(encoder_class, "reference_param", None)
    if param is None:
        return None
    field = spec.params.get(param)
    if not isinstance(field, str) or not re.fullmatch(r"[\w\-]+", field):
        raise ConfigError(
            f"encoder '{spec.name}' compares two clips: param '{param}' must name the reference's audio field "
            f"(e.g. {param}: reference, read from item.audios), got {field!r}"
        )
    if not spec.reads_audio or spec.input == f"audio.{field}":
        raise ConfigError(
            f"encoder '{spec.name}' compares two clips: expected input 'audio' or 'audio.<field>' other than "
            f"its {param} 'audio.{field}', got input '{spec.input}'"
        )
    return field


def pair_hash(stimulus_hash: str, reference_hash: str) -> str:
    """The content hash of a (stimulus, reference) pair: both clips' hashes, in order."""
    return hashlib.sha256(f"pair:{stimulus_hash}:{reference_hash}".encode()).hexdigest()


def load_input(payload: Any, spec: EncoderSpec, encoder: Encoder) -> Any:
    """What the encoder receives for one payload: a waveform at its rate (a tuple of two for an
    :class:`AudioPair`), a text, or a vector."""
    if spec.reads_audio:
        if isinstance(payload, AudioPair):
            return (_waveform(payload.stimulus, encoder), _waveform(payload.reference, encoder))
        return _waveform(payload, encoder)
    return payload


def _waveform(x: Any, encoder: Encoder) -> Any:
    return prepare_audio(
        x,
        sample_rate=int(encoder.sample_rate),
        mono=getattr(encoder, "mono", True),
        normalize_loudness=getattr(encoder, "normalize_loudness", None),
    )


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
                exc.key = key  # type: ignore[attr-defined]  # encode_items names the item(s) behind the key
                raise
            failed.append((key, str(exc)))
    if not keys:
        return [], failed
    try:
        outs = _checked_outputs(encoder, spec, inputs, keys, batch)
        return list(zip(keys, outs)), failed
    except ScorecastError as exc:
        if on_error == "raise":
            raise _culprit(encoder, spec, keys, inputs, batch, exc) from None
        if len(keys) == 1:
            return [], failed + [(keys[0], str(exc))]
    done = []
    for key, x in zip(keys, inputs):
        try:
            done.append((key, _checked_outputs(encoder, spec, [x], [key], batch)[0]))
        except ScorecastError as exc:
            failed.append((key, str(exc)))
    return done, failed


def _culprit(encoder: Encoder, spec: EncoderSpec, keys: list[str], inputs: list[Any], batch: list, exc: Exception):
    """The error of the input that made a batch fail, tagged with its key (tried one by one when the
    batch held several; the batch's own error when none fails alone)."""
    if isinstance(exc, DataError) and len(keys) > 1:
        for key, x in zip(keys, inputs):
            try:
                _checked_outputs(encoder, spec, [x], [key], batch)
            except DataError as one:
                one.key = key  # type: ignore[attr-defined]
                return one
    if len(keys) == 1:
        exc.key = keys[0]  # type: ignore[attr-defined]
    return exc


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


def to_store(out: Encoded, spec: EncoderSpec) -> Encoded:
    """What the cache keeps of one output: the sequence only where the spec asks for it (a fusion that
    reads sequences: cross-attention, temporal). A MiniLM token sequence is ~10x its pooled vector."""
    return out if spec.sequence or out.sequence is None else Encoded(out.pooled, None)


def usable(found: dict[str, Encoded], spec: EncoderSpec) -> dict[str, Encoded]:
    """Cache hits that serve ``spec``: with ``spec.sequence`` only entries that hold a sequence (an
    entry written for a pooled-only spec is encoded again, and rewritten with its sequence)."""
    if not spec.sequence:
        return found
    return {k: v for k, v in found.items() if v.sequence is not None}


def input_size(payload: Any, spec: EncoderSpec) -> int:
    """A cheap size of one input, to sort a whole extraction by: characters of a text, bytes of an
    audio file (0 where unknown: an in-memory waveform, a vector)."""
    if spec.input.startswith("text."):
        return len(payload) if isinstance(payload, str) else 0
    if isinstance(payload, AudioPair):
        payload = payload.stimulus
    if spec.input == "audio" and isinstance(payload, (str, os.PathLike)):
        try:
            return os.path.getsize(payload)
        except OSError:
            return 0
    return 0


def by_size(todo: dict[str, Any], spec: EncoderSpec) -> list[tuple[str, Any]]:
    """(key, payload) of every input still to encode, longest first across the whole extraction (as
    ``SentenceTransformer.encode`` sorts), so each batch pads to similar lengths; equal sizes keep
    their input order."""
    return sorted(todo.items(), key=lambda kv: -input_size(kv[1], spec))


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
