"""Turning an HTTP request of :mod:`scorecast.serve.app` into items: the JSON and form bodies, the audio
uploads (sniffed, length-checked, decoded) and the request-body schema shown in the OpenAPI docs.

Every refusal is an ``HTTPException`` whose status says why (400 bad Content-Length, 413 too large,
415 not audio, 422 malformed or unknown fields) and whose detail names the item and field.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
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
    """The server's limits (``scorecast serve`` flags of the same names)."""

    max_upload_mb: float = 20.0
    max_duration_s: float = 60.0
    timeout_s: float = 30.0
    max_batch_items: int = 256
    #: decoded samples of one clip, frames x channels x 4 bytes as its header declares (413 above)
    max_decoded_mb: float = 64.0
    #: the time a client has to send its body once the headers are in (408 above)
    body_timeout_s: float = 30.0
    #: the time a client has to send its headers (408 above; enforced by scorecast.serve.http)
    header_timeout_s: float = 10.0
    #: the memory all requests in flight may hold together: bodies and decoded audio (503 when full)
    max_inflight_mb: float = 256.0
    #: how long a request waits for room in that budget before the 503
    queue_wait_s: float = 2.0

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_decoded_bytes(self) -> int:
        return int(self.max_decoded_mb * 1024 * 1024)


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
    ``text.name``) and optional ``id`` fields, the i-th value of each field going with the i-th item."""

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
        items = []
        for i in range(n):
            raw = RawItem(i, ids[i] if ids else str(i), f"item {i}" if batch else "request")
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


@dataclass
class AudioHeader:
    """What an upload's header declares: container, frames, channels, rate."""

    kind: str
    frames: int
    channels: int
    samplerate: int

    @property
    def seconds(self) -> float:
        return self.frames / self.samplerate if self.samplerate > 0 else 0.0


#: frames decoded at a time: with 8 channels, 64 k frames are 2 MiB of float32
BLOCK_FRAMES = 1 << 16


def audio_header(data: bytes, where: str, limits: Limits) -> AudioHeader:
    """Sniff and read an upload's header; refuse it before decoding: 415 not audio, 422 unreadable,
    413 longer than ``max_duration_s`` or more decoded samples (frames x channels) than ``max_decoded_mb``."""
    import soundfile as sf

    from scorecast.data.audio import sniff_audio_format

    kind = sniff_audio_format(data[:16])
    if kind not in READABLE_AUDIO:
        got = f"{kind.upper()} audio, which is not supported" if kind else "bytes that are not audio"
        raise HTTPException(415, f"{where}: expected WAV, FLAC, Ogg or MP3 audio, got {got}")
    try:
        info = sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise HTTPException(422, f"{where}: looks like {kind.upper()} but cannot be decoded ({exc})") from None
    header = AudioHeader(kind, max(int(info.frames), 0), max(int(info.channels), 1), int(info.samplerate))
    if header.samplerate <= 0:
        raise HTTPException(422, f"{where}: the header declares a sample rate of {header.samplerate}; expected > 0")
    if header.seconds > limits.max_duration_s:
        raise HTTPException(
            413, f"{where}: {header.seconds:.1f} s of audio exceeds the limit of {limits.max_duration_s:g} s"
        )
    decoded = header.frames * header.channels * 4
    if decoded > limits.max_decoded_bytes:
        raise HTTPException(
            413,
            f"{where}: decodes to {decoded / 2**20:.1f} MiB ({header.frames} frames x {header.channels} channels "
            f"at {header.samplerate} Hz), more than the limit of {limits.max_decoded_mb:g} MiB; "
            "send mono audio at a lower rate",
        )
    return header


def decoded_bytes(header: AudioHeader, target_rate: int | None) -> int:
    """The memory decoding holds: the mono result at the output rate plus one block of all channels."""
    rate = min(header.samplerate, target_rate) if target_rate else header.samplerate
    out_frames = int(header.seconds * rate) + 1
    block = min(header.frames, BLOCK_FRAMES) * header.channels * 4
    return out_frames * 4 + 2 * block


def decode_blocks(
    data: bytes, header: AudioHeader, where: str, limits: Limits, target_rate: int | None = None
) -> tuple[np.ndarray, int, list[str]]:
    """Decode in blocks of :data:`BLOCK_FRAMES`, mixing each down to mono and (where the upload's rate is
    above ``target_rate``) resampling it with a streaming soxr resampler -> ((1, T) float32, rate, flags).

    The duration is checked again while decoding (headers of some formats under-report); a file that
    holds fewer frames than its header declares is decoded as far as it goes and flagged ``truncated``.
    """
    import soundfile as sf
    import soxr

    from scorecast.data.audio import wav_declared_frames

    rate = header.samplerate
    resampler = None
    if target_rate and target_rate < rate:
        resampler = soxr.ResampleStream(rate, target_rate, 1, dtype="float32", quality="HQ")
    parts, total = [], 0
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            for block in f.blocks(blocksize=BLOCK_FRAMES, dtype="float32", always_2d=True):
                total += block.shape[0]
                if total / rate > limits.max_duration_s:
                    raise HTTPException(
                        413, f"{where}: more than {limits.max_duration_s:g} s of audio (the header under-reports)"
                    )
                mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
                parts.append(resampler.resample_chunk(mono) if resampler is not None else np.array(mono))
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise HTTPException(422, f"{where}: looks like {header.kind.upper()} but cannot be decoded ({exc})") from None
    if total == 0:
        raise HTTPException(422, f"{where}: holds zero samples; expected audio")
    if resampler is not None:
        parts.append(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
    wave = np.concatenate(parts).astype(np.float32, copy=False)
    flags = []
    declared = wav_declared_frames(data[: 1 << 16]) if header.kind == "wav" else header.frames
    if declared and total < declared:
        flags.append(f"truncated: the header declares {declared} samples, the upload holds {total}")
    return wave[None, :], (target_rate if resampler is not None else rate), flags


def decode_audio(data: bytes, where: str, max_duration_s: float, max_decoded_mb: float = 64.0):
    """Uploaded bytes -> (waveform (1, T) float32 mono, sample rate): :func:`audio_header`'s checks, then
    :func:`decode_blocks` at the file's rate."""
    limits = Limits(max_duration_s=max_duration_s, max_decoded_mb=max_decoded_mb)
    header = audio_header(data, where, limits)
    wave, sr, _ = decode_blocks(data, header, where, limits)
    return wave, sr


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
