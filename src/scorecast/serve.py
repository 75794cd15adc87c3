"""The HTTP server: a FastAPI app that scores audio and text with one loaded scorer bundle.

Routes: ``POST /score`` (one item), ``POST /score/batch`` (several), ``GET /healthz`` (no auth),
``GET /model`` (model card, targets, inputs, encoders), ``GET /docs`` and ``GET /openapi.json``.

An item comes as multipart form data (an ``audio`` file and one form field per text input of the
bundle, named as the bundle names it, e.g. ``caption``) or as JSON
``{"text": {"caption": "..."}, "vectors": {...}, "audio_base64": "..."}`` (``texts`` is accepted
for ``text``). JSON never carries a path: the server never opens a file a client names.

Start-up: the bundle and its encoders are loaded once, before the first request is accepted
(in the lifespan, or by ``scorecast serve`` before the server binds), so the first request does
not pay for model loading; only the encoders the bundle uses are imported (no Lightning).

Requests are micro-batched (:mod:`scorecast.microbatch`): concurrent items are scored in one call
of up to ``max_batch`` items, waiting at most ``batch_wait_ms`` for company.

Limits: an optional bearer token (every route but ``/healthz`` answers 401 without it); the request
body is limited to ``max_upload_mb`` (413, checked from Content-Length and while reading, before
anything is parsed or decoded); audio longer than ``max_duration_s`` is refused (413) from its
header before decoding; bytes that are not WAV/FLAC/Ogg/MP3 are refused (415) from their first
bytes; a request taking longer than ``timeout_s`` gets 504; malformed JSON or form data and missing
or unknown fields get 422. An unexpected error answers 500 and the server keeps serving.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import logging
import secrets
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser

from scorecast.data.items import Item
from scorecast.errors import DataError, ScorecastError
from scorecast.microbatch import MicroBatcher

log = logging.getLogger("scorecast.serve")

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


def create_app(
    bundle_path: str | None = None,
    token: str | None = None,
    max_upload_mb: float = 20.0,
    max_duration_s: float = 60.0,
    timeout_s: float = 30.0,
    batch_wait_ms: float = 5.0,
    max_batch: int = 32,
    *,
    cache_dir: str | None = None,
    encoder_paths: dict[str, str] | None = None,
    predictor: Any = None,
    max_batch_items: int = 256,
) -> FastAPI:
    """Build the app for the bundle at ``bundle_path`` (or an already loaded ``predictor``)."""
    from scorecast.predictor import Predictor

    if predictor is None and bundle_path is None:
        raise ScorecastError("create_app: expected a bundle path or a loaded predictor, got neither")
    limits = Limits(
        max_upload_mb=max_upload_mb, max_duration_s=max_duration_s, timeout_s=timeout_s, max_batch_items=max_batch_items
    )
    state: dict[str, Any] = {"predictor": predictor}

    def score_items(items: list[Item]) -> list[dict[str, Any]]:
        return state["predictor"].score_records(items)

    batcher: MicroBatcher[Item, dict[str, Any]] = MicroBatcher(score_items, max_batch=max_batch, wait_ms=batch_wait_ms)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if state["predictor"] is None:
            state["predictor"] = await run_in_threadpool(
                Predictor.from_path, bundle_path, cache_dir=cache_dir, encoder_paths=encoder_paths
            )
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(
        title="scorecast",
        description="Predicts the scores people give to audio and text with a trained scorecast bundle.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.limits = limits
    app.state.batcher = batcher
    app.state.holder = state
    bearer = HTTPBearer(auto_error=False, description="the server's token (--token or $SCORECAST_TOKEN)")

    def require_token(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if token is None:
            return
        if creds is None or not secrets.compare_digest(creds.credentials.encode(), token.encode()):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    auth = [Depends(require_token)]

    @app.exception_handler(ScorecastError)
    async def _scorecast_error(request: Request, exc: ScorecastError) -> JSONResponse:
        # bad data in the request (DataError, AudioError) is the client's; anything else is the server's
        if isinstance(exc, DataError):
            return JSONResponse({"detail": str(exc)}, status_code=422)
        log.error("%s on %s %s: %s", type(exc).__name__, request.method, request.url.path, exc)
        return JSONResponse({"detail": f"{type(exc).__name__}: {exc}"}, status_code=500)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)

    @app.get("/healthz", tags=["service"])
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "ready": state["predictor"] is not None and batcher.running}

    @app.get("/model", tags=["service"], dependencies=auth)
    async def model() -> dict[str, Any]:
        info = state["predictor"].describe()
        info["limits"] = limits.model_dump() | {"max_batch": batcher.max_batch, "batch_wait_ms": batcher.wait_s * 1000}
        info["batching"] = batcher.stats.as_dict()
        return info

    @app.get("/openapi.json", include_in_schema=False, dependencies=auth)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=auth)
    async def docs():
        return get_swagger_ui_html(openapi_url="/openapi.json", title="scorecast API")

    @app.post("/score", tags=["scoring"], dependencies=auth, openapi_extra=_body_doc(batch=False))
    async def score(request: Request) -> dict[str, Any]:
        """Score one item: multipart (`audio` file + text fields) or JSON (`text`, `vectors`, `audio_base64`)."""
        (result,) = await _with_timeout(_score_request(request, batch=False), limits.timeout_s)
        return result

    @app.post("/score/batch", tags=["scoring"], dependencies=auth, openapi_extra=_body_doc(batch=True))
    async def score_batch(request: Request) -> dict[str, Any]:
        """Score several items: JSON list (or {"items": [...]}), or multipart with several `audio` files and
        repeated text fields (the i-th value of each field goes with the i-th file)."""
        results = await _with_timeout(_score_request(request, batch=True), limits.timeout_s)
        return {"results": results}

    async def _score_request(request: Request, batch: bool) -> list[dict[str, Any]]:
        pred = state["predictor"]
        body = await _read_body(request, limits.max_upload_bytes)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "application/json":
            raw_items = _parse_json(body, batch, limits.max_batch_items)
            items = [await run_in_threadpool(_json_item, it, i, limits, batch) for i, it in enumerate(raw_items)]
        elif kind in FORM_TYPES:
            items = await _form_items(request, body, batch, pred.inputs.texts, limits, multipart=kind == FORM_TYPES[0])
        else:
            raise HTTPException(
                415, f"expected Content-Type application/json, {' or '.join(FORM_TYPES)}, got '{kind or 'none'}'"
            )
        for i, item in enumerate(items):
            pred.inputs.check(item, where=f"item {i}" if batch else "request")
        return list(await asyncio.gather(*(batcher.submit(item) for item in items)))

    return app


async def _with_timeout(coro, timeout_s: float):
    try:
        async with asyncio.timeout(timeout_s):
            return await coro
    except TimeoutError:
        raise HTTPException(504, f"scoring took longer than the server's limit of {timeout_s:g} s") from None


async def _read_body(request: Request, limit: int) -> bytes:
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


def _parse_json(body: bytes, batch: bool, max_items: int) -> list[ItemIn]:
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HTTPException(422, f"malformed JSON: {exc}") from None
    try:
        if not batch:
            return [ItemIn.model_validate(data)]
        items = BatchIn.model_validate({"items": data} if isinstance(data, list) else data).items
    except ValidationError as exc:
        raise HTTPException(422, _validation_text(exc)) from None
    if not items:
        raise HTTPException(422, "expected at least one item, got an empty list")
    if len(items) > max_items:
        raise HTTPException(413, f"expected at most {max_items} items per batch, got {len(items)}")
    return items


def _validation_text(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{loc}: {err['msg']}")
    return "invalid request: " + "; ".join(parts)


def _json_item(it: ItemIn, index: int, limits: Limits, batch: bool) -> Item:
    where = f"item {index}" if batch else "request"
    if it.text is not None and it.texts is not None:
        raise HTTPException(422, f"{where}: give text fields under 'text' or 'texts', not both")
    audio = None
    if it.audio_base64 is not None:
        try:
            data = base64.b64decode(it.audio_base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise HTTPException(422, f"{where}: audio_base64: expected base64 data, got invalid input ({exc})") from None
        audio = decode_audio(data, f"{where} audio_base64", limits.max_duration_s)
    vectors = {k: np.asarray(v, dtype=np.float32) for k, v in (it.vectors or {}).items()}
    return Item(id=it.id or str(index), audio=audio, texts=dict(it.text or it.texts or {}), vectors=vectors)


async def _form_items(request: Request, body: bytes, batch: bool, text_fields, limits: Limits, multipart: bool) -> list[Item]:
    async def once():
        yield body

    if multipart:
        parser: MultiPartParser | FormParser = MultiPartParser(
            request.headers, once(), max_files=limits.max_batch_items if batch else 1, max_part_size=limits.max_upload_bytes
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
            where = f"item {i}" if batch else "request"
            audio = None
            if files:
                data = await files[i].read()
                name = files[i].filename or "upload"
                audio = await run_in_threadpool(decode_audio, data, f"{where} audio '{name}'", limits.max_duration_s)
            items.append(
                Item(id=ids[i] if ids else str(i), audio=audio, texts={k: v[i] for k, v in texts.items()})
            )
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
        raise HTTPException(413, f"{where}: {wave.shape[0] / sr:.1f} s of audio exceeds the limit of {max_duration_s:g} s")
    if wave.shape[0] == 0:
        raise HTTPException(422, f"{where}: holds zero samples; expected audio")
    return np.ascontiguousarray(wave.T), int(sr)


def _body_doc(batch: bool) -> dict[str, Any]:
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
                "application/x-www-form-urlencoded": {"schema": {"type": "object", "additionalProperties": {"type": "string"}}},
            },
        }
    }
