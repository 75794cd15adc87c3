"""An item's input to an encoder, and the item to name when encoding that input fails.

:func:`content_hash` gives the cache's content hash and the payload the encoder reads: the field
``spec.input`` names, or for a two-input encoder (``reference_param`` set) an :class:`AudioPair` of it
and the reference audio field the spec's params name (the hash covers both clips).
:func:`naming_item` restates a :class:`DataError` with the item(s) whose input failed.

Used by :mod:`scorecast.encoders.pipeline` (which re-exports :func:`content_hash`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from scorecast.cache.store import text_hash, vector_hash
from scorecast.config import EncoderSpec
from scorecast.data.audio import audio_input_hash
from scorecast.data.items import Item
from scorecast.encoders.building import resolve_encoder_class
from scorecast.encoders.pipeline_batches import AudioPair, pair_hash, reference_field
from scorecast.errors import DataError

if TYPE_CHECKING:
    from scorecast.encoders.pipeline import EncodePlan

__all__ = ["content_hash", "naming_item"]


def content_hash(item: Item, spec: EncoderSpec) -> tuple[str, Any]:
    """(content hash, payload) of the input ``spec.input`` of ``item``; DataError if it is missing.

    For a two-input encoder (``reference_param`` set) the payload is an :class:`AudioPair` of the input
    and the reference field the spec's params name, and the hash covers both clips' content."""
    chash, payload = _one_input(item, spec)
    field = reference_field(spec, resolve_encoder_class(spec.name))
    if field is None:
        return chash, payload
    ref = item.audios.get(field)
    if ref is None:
        have = ", ".join(sorted(item.audios)) or "none"
        raise DataError(
            f"item '{item.id}' has no audio field '{field}' (it has: {have}); encoder '{spec.name}' compares "
            f"its input '{spec.input}' with it",
            field=f"audio.{field}",
        )
    return pair_hash(chash, audio_input_hash(ref)), AudioPair(payload, ref)


def _one_input(item: Item, spec: EncoderSpec) -> tuple[str, Any]:
    if spec.input == "audio":
        if item.audio is None:
            raise DataError(f"item '{item.id}' has no audio; encoder '{spec.name}' reads input 'audio'", field="audio")
        return audio_input_hash(item.audio), item.audio
    kind, name = spec.input.split(".", 1)
    fields, hash_fn = {
        "audio": (item.audios, audio_input_hash),
        "text": (item.texts, text_hash),
        "vector": (item.vectors, vector_hash),
    }[kind]
    value = fields.get(name)
    if value is None:
        have = ", ".join(sorted(fields)) or "none"
        raise DataError(
            f"item '{item.id}' has no {kind} field '{name}' (it has: {have}); encoder '{spec.name}' reads it",
            field=spec.input,
        )
    return hash_fn(value), (np.asarray(value, dtype=np.float32) if kind == "vector" else value)


def naming_item(plan: EncodePlan, exc: DataError) -> DataError:
    """``exc`` restated with the item(s) whose input failed: id, table row and audio file."""
    key = getattr(exc, "key", None)
    positions = [pos for pos, k in plan.refs if k == key]
    if not positions:
        return exc
    first = plan.items[positions[0]]
    where = f"item '{first.id}'" + (
        f" (and {len(positions) - 1} more with the same input)" if len(positions) > 1 else ""
    )
    source = first.audio if plan.spec.input == "audio" else None
    if plan.spec.input.startswith("audio."):  # a named audio field (audio.generated, audio.reference)
        source = first.audios.get(plan.spec.input.split(".", 1)[1])
    audio = source if isinstance(source, (str, os.PathLike)) else None
    if audio is None and plan.spec.input == "audio":
        audio = first.meta.get("upload")  # the file name of an upload the server decoded
    if isinstance(first.meta.get("row"), int):
        where += f" (table row {first.meta['row']})"
    ref = reference_field(plan.spec, resolve_encoder_class(plan.spec.name))
    if ref is not None and isinstance(first.audios.get(ref), (str, os.PathLike)):
        where += f" (reference '{ref}': {first.audios[ref]})"
    field = exc.field or (plan.spec.input if plan.spec.input.startswith("audio.") else None)
    named = type(exc)(f"{where}: {exc.message}", file=exc.file or audio, row=exc.row, field=field)
    return named  # the same class (AudioError stays AudioError)
