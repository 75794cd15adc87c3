"""Turning an HTTP request of :mod:`scorecast.serve.app` into items: the JSON and form bodies, the audio
uploads (sniffed, length-checked, decoded) and the request-body schema shown in the OpenAPI docs.

Every refusal is an ``HTTPException`` whose status says why (400 bad Content-Length, 413 too large,
415 not audio, 422 malformed or unknown fields) and whose detail names the item and field.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from typing import Any

import numpy as np
from fastapi import HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser

from scorecast.data.items import Item

READABLE_AUDIO = ("wav", "flac", "ogg", "mp3")
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


class ItemIn(BaseModel):
    """One item as JSON: texts by field, vectors by field, optionally audio file bytes in base64."""

    model_config = ConfigDict(extra="forbid")
    id: str | None = None
    text: dict[str, str] | None = Field(default=None, description="text inputs by field name (alias: texts)")
    texts: dict[str, str] | None = None
    vectors: dict[str, list[float]] | None = None
    audio_base64: str | None = Field(default=None, description="the bytes of a WAV/FLAC/Ogg/MP3 file, base64")


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[ItemIn]


class Limits(BaseModel):
    max_upload_mb: float = 20.0
    max_duration_s: float = 60.0
    timeout_s: float = 30.0
    max_batch_items: int = 256

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise HTTPException(400, f"Content-Length: expected an integer, got '{declared}'") from None
        if size > limit:
            raise HTTPException(413, f"request body of {size} bytes exceeds the limit of {limit} bytes")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise HTTPException(413, f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json_items(body: bytes, batch: bool, max_items: int) -> list[ItemIn]:
    """The items of a JSON body: one object, or (``batch``) a list or ``{"items": [...]}`` of at most ``max_items``."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HTTPException(422, f"malformed JSON: {exc}") from None
    try:
        if not batch:
            return [ItemIn.model_validate(data)]
        items = BatchIn.model_validate({"items": data} if isinstance(data, list) else data).items
    except ValidationError as exc:
        raise HTTPException(422, validation_text(exc)) from None
    if not items:
        raise HTTPException(422, "expected at least one item, got an empty list")
    if len(items) > max_items:
        raise HTTPException(413, f"expected at most {max_items} items per batch, got {len(items)}")
    return items


def validation_text(exc: ValidationError) -> str:
    """A pydantic error as one line: ``invalid request: <field path>: <message>; ...``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{loc}: {err['msg']}")
    return "invalid request: " + "; ".join(parts)


def json_item(it: ItemIn, index: int, limits: Limits, batch: bool) -> Item:
    """One JSON item as an :class:`Item` (its base64 audio decoded; id defaults to its position)."""
    where = f"item {index}" if batch else "request"
    if it.text is not None and it.texts is not None:
        raise HTTPException(422, f"{where}: give text fields under 'text' or 'texts', not both")
    audio = None
    if it.audio_base64 is not None:
        try:
            data = base64.b64decode(it.audio_base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise HTTPException(
                422, f"{where}: audio_base64: expected base64 data, got invalid input ({exc})"
            ) from None
        audio = decode_audio(data, f"{where} audio_base64", limits.max_duration_s)
    vectors = {k: np.asarray(v, dtype=np.float32) for k, v in (it.vectors or {}).items()}
    return Item(id=it.id or str(index), audio=audio, texts=dict(it.text or it.texts or {}), vectors=vectors)


async def form_items(
    request: Request, body: bytes, batch: bool, text_fields, limits: Limits, multipart: bool
) -> list[Item]:
    """The items of a multipart or urlencoded form: ``audio`` files, text fields (``name`` or
    ``text.name``) and optional ``id`` fields, the i-th value of each field going with the i-th item.
    Without ``id`` fields an uploaded file's name is the item's id."""

    async def once():
        yield body

    if multipart:
        parser: MultiPartParser | FormParser = MultiPartParser(
            request.headers,
            once(),
            max_files=limits.max_batch_items if batch else 1,
            max_part_size=limits.max_upload_bytes,
        )
    else:
        parser = FormParser(request.headers, once(), max_part_size=limits.max_upload_bytes)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise HTTPException(422, f"malformed multipart form: {exc.message}") from None
    try:
        files = form.getlist("audio")
        unknown = sorted({k for k in form.keys() if k not in ("audio", "id") and _field(k) not in text_fields})
        if unknown:
            known = ", ".join(["audio", "id", *text_fields])
            raise HTTPException(422, f"unknown form field(s) {', '.join(unknown)}; expected: {known}")
        if any(not isinstance(f, UploadFile) for f in files):
            raise HTTPException(422, "form field 'audio': expected a file upload, got a plain value")
        texts = {_field(k): [str(v) for v in form.getlist(k)] for k in form.keys() if k not in ("audio", "id")}
        ids = [str(v) for v in form.getlist("id")]
        counts = {len(files)} if files else set()
        counts |= {len(v) for v in texts.values()}
        if ids:
            counts.add(len(ids))
        if len(counts) > 1:
            raise HTTPException(422, f"form fields disagree on the number of items: {_counts(files, texts, ids)}")
        n = counts.pop() if counts else 0
        if n == 0:
            raise HTTPException(422, "expected an 'audio' file and/or text fields, got an empty form")
        if not batch and n > 1:
            raise HTTPException(422, f"/score takes one item, got {n}; use /score/batch for several")
        if n > limits.max_batch_items:
            raise HTTPException(413, f"expected at most {limits.max_batch_items} items per batch, got {n}")
        if not ids:  # an upload's file name is its id (positions where names are missing or clash)
            names = [getattr(f, "filename", None) or "" for f in files]
            ids = names if files and all(names) and len(set(names)) == len(names) else [str(i) for i in range(n)]
        items = []
        for i in range(n):
            where = f"item {i}" if batch else "request"
            audio = None
            if files:
                data = await files[i].read()
                name = files[i].filename or "upload"
                audio = await run_in_threadpool(decode_audio, data, f"{where} audio '{name}'", limits.max_duration_s)
            items.append(Item(id=ids[i], audio=audio, texts={k: v[i] for k, v in texts.items()}))
        return items
    finally:
        await form.close()


def _field(name: str) -> str:
    return name[len("text.") :] if name.startswith("text.") else name


def _counts(files, texts, ids) -> str:
    parts = [f"audio: {len(files)}"] + [f"{k}: {len(v)}" for k, v in texts.items()]
    if ids:
        parts.append(f"id: {len(ids)}")
    return ", ".join(parts)


def decode_audio(data: bytes, where: str, max_duration_s: float) -> tuple[np.ndarray, int]:
    """Uploaded bytes -> (waveform (C, T) float32, sample rate), after sniffing and a duration check.

    415 for bytes that are not WAV/FLAC/Ogg/MP3 (judged from the first bytes); 413 for audio longer
    than ``max_duration_s`` (judged from the header, before decoding); 422 for audio that does not decode.
    """
    import soundfile as sf

    from scorecast.data.audio import sniff_audio_format

    kind = sniff_audio_format(data[:16])
    if kind not in READABLE_AUDIO:
        got = f"{kind.upper()} audio, which is not supported" if kind else "bytes that are not audio"
        raise HTTPException(415, f"{where}: expected WAV, FLAC, Ogg or MP3 audio, got {got}")
    try:
        info = sf.info(io.BytesIO(data))
        if info.samplerate > 0 and info.frames / info.samplerate > max_duration_s:
            seconds = info.frames / info.samplerate
            raise HTTPException(413, f"{where}: {seconds:.1f} s of audio exceeds the limit of {max_duration_s:g} s")
        wave, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise HTTPException(422, f"{where}: looks like {kind.upper()} but cannot be decoded ({exc})") from None
    if wave.shape[0] / sr > max_duration_s:  # headers of some formats under-report
        raise HTTPException(
            413, f"{where}: {wave.shape[0] / sr:.1f} s of audio exceeds the limit of {max_duration_s:g} s"
        )
    if wave.shape[0] == 0:
        raise HTTPException(422, f"{where}: holds zero samples; expected audio")
    return np.ascontiguousarray(wave.T), int(sr)


def openapi_body(batch: bool) -> dict[str, Any]:
    """The ``requestBody`` of ``/score`` (``batch`` false) or ``/score/batch`` for the OpenAPI docs."""
    item = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "text": {"type": "object", "additionalProperties": {"type": "string"}},
            "vectors": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "number"}}},
            "audio_base64": {"type": "string", "description": "WAV/FLAC/Ogg/MP3 file bytes, base64"},
        },
        "additionalProperties": False,
    }
    form = {
        "type": "object",
        "properties": {
            "audio": {"type": "array", "items": {"type": "string", "format": "binary"}}
            if batch
            else {"type": "string", "format": "binary"},
        },
        "additionalProperties": {"type": "string", "description": "a text input of the bundle, by field name"},
    }
    json_schema = {"type": "array", "items": item} if batch else item
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": json_schema},
                "multipart/form-data": {"schema": form},
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "additionalProperties": {"type": "string"}}
                },
            },
        }
    }
