"""Turning an HTTP request of :mod:`scorecast.serve.app` into items: the body (read under a size and a
time limit), the JSON and form bodies as :class:`RawItem` (one per item, with its own refusal where it
has one), their audio decoded by :mod:`scorecast.serve.uploads` after its memory is reserved, and the
request-body schema shown in the OpenAPI docs.

Every refusal is an ``HTTPException`` whose status says why (400 bad Content-Length, 408 slow body,
413 too large, 415 not audio, 422 malformed or unknown fields) and whose detail names the item and field.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser

from scorecast.data.items import Item
from scorecast.serve.limits import Limits
from scorecast.serve.uploads import audio_header, decode_blocks, decoded_bytes

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


def declared_length(request: Request, limit: int) -> int | None:
    """The Content-Length a request declares (400 if not an integer, 413 above ``limit``), or None."""
    declared = request.headers.get("content-length")
    if declared is None:
        return None
    try:
        size = int(declared)
    except ValueError:
        raise HTTPException(400, f"Content-Length: expected an integer, got '{declared}'") from None
    if size < 0:
        raise HTTPException(400, f"Content-Length: expected a size >= 0, got {size}")
    if size > limit:
        raise HTTPException(413, f"request body of {size} bytes exceeds the limit of {limit} bytes")
    return size


async def read_body(request: Request, limit: int, timeout_s: float | None = None) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit`` bytes, and with
    408 when it has not all arrived within ``timeout_s`` seconds."""
    declared_length(request, limit)
    chunks, total = [], 0

    async def receive() -> None:
        nonlocal total
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise HTTPException(413, f"request body exceeds the limit of {limit} bytes")
            chunks.append(chunk)

    try:
        async with asyncio.timeout(timeout_s):
            await receive()
    except TimeoutError:
        raise HTTPException(
            408,
            f"the upload did not arrive within the server's limit of {timeout_s:g} s "
            f"({total} bytes received); send the request body promptly",
            headers={"Connection": "close"},
        ) from None
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


@dataclass
class RawItem:
    """One item of a request before its audio is decoded: what the client sent, and where it sits
    (``index`` in the request, ``name`` of its audio: the upload's file name or ``audio_base64``).
    ``error`` holds a refusal that belongs to this item alone (a batch answers it in the item's place)."""

    index: int
    id: str
    where: str
    texts: dict[str, str] = field(default_factory=dict)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    audio: bytes | None = None
    name: str | None = None
    error: HTTPException | None = None


def json_entries(items: list[ItemIn], batch: bool) -> list[RawItem]:
    """The items of a JSON body as :class:`RawItem` (base64 audio decoded to bytes, not yet to samples)."""
    out = []
    for index, it in enumerate(items):
        where = f"item {index}" if batch else "request"
        raw = RawItem(index, it.id or str(index), where, name="audio_base64" if it.audio_base64 is not None else None)
        out.append(raw)
        if it.text is not None and it.texts is not None:
            raw.error = HTTPException(422, f"{where}: give text fields under 'text' or 'texts', not both")
            continue
        if it.audio_base64 is not None:
            try:
                raw.audio = base64.b64decode(it.audio_base64, validate=True)
            except (binascii.Error, ValueError) as exc:
                raw.error = HTTPException(
                    422, f"{where}: audio_base64: expected base64 data, got invalid input ({exc})"
                )
                continue
        raw.texts = dict(it.text or it.texts or {})
        raw.vectors = {k: np.asarray(v, dtype=np.float32) for k, v in (it.vectors or {}).items()}
    return out


async def form_entries(
    request: Request, body: bytes, batch: bool, text_fields, limits: Limits, multipart: bool
) -> list[RawItem]:
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
            raw = RawItem(i, ids[i], f"item {i}" if batch else "request")
            raw.texts = {k: v[i] for k, v in texts.items()}
            if files:
                raw.audio = await files[i].read()
                raw.name = files[i].filename or "upload"
            items.append(raw)
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


async def build_item(raw: RawItem, limits: Limits, hold: Any, target_rate: int | None = None) -> Item:
    """A :class:`RawItem` as an :class:`Item`: its audio checked from the header, the decoded size
    reserved in the server's memory budget (``hold``, :class:`scorecast.serve.limits.Hold`), then
    decoded in blocks (mixed down, and resampled to ``target_rate`` where the upload's rate is higher)."""
    if raw.error is not None:
        raise raw.error
    audio, flags = None, []
    if raw.audio is not None:
        where = f"{raw.where} audio '{raw.name}'"
        header = audio_header(raw.audio, where, limits)
        await hold.add(decoded_bytes(header, target_rate), where)
        wave, sr, flags = await run_in_threadpool(decode_blocks, raw.audio, header, where, limits, target_rate)
        audio = (wave, sr)
    meta: dict[str, Any] = {"index": raw.index, "upload": raw.name}
    if flags:
        meta["flags"] = flags
    return Item(id=raw.id, audio=audio, texts=dict(raw.texts), vectors=dict(raw.vectors), meta=meta)


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
