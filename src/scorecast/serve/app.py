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

Requests are micro-batched (:mod:`scorecast.serve.microbatch`): concurrent items are scored in one call
of up to ``max_batch`` items, waiting at most ``batch_wait_ms`` for company.

Limits: an optional bearer token (every route but ``/healthz`` answers 401 without it); the request
body is limited to ``max_upload_mb`` (413, checked from Content-Length and while reading, before
anything is parsed or decoded); audio longer than ``max_duration_s`` is refused (413) from its
header before decoding; bytes that are not WAV/FLAC/Ogg/MP3 are refused (415) from their first
bytes; a request taking longer than ``timeout_s`` gets 504; malformed JSON or form data and missing
or unknown fields get 422. An unexpected error answers 500 and the server keeps serving. Reading and
checking request bodies lives in :mod:`scorecast.serve.requests`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from scorecast.data.items import Item
from scorecast.errors import DataError, ScorecastError
from scorecast.serve.microbatch import DEFAULT_MAX_BATCH, DEFAULT_WAIT_MS, MicroBatcher
from scorecast.serve.requests import (
    FORM_TYPES,
    READABLE_AUDIO,
    BatchIn,
    ItemIn,
    Limits,
    decode_audio,
    form_items,
    json_item,
    openapi_body,
    parse_json_items,
    read_body,
)

__all__ = ["FORM_TYPES", "READABLE_AUDIO", "BatchIn", "ItemIn", "Limits", "create_app", "decode_audio"]

log = logging.getLogger("scorecast.serve.app")


def create_app(
    bundle_path: str | None = None,
    token: str | None = None,
    max_upload_mb: float = 20.0,
    max_duration_s: float = 60.0,
    timeout_s: float = 30.0,
    batch_wait_ms: float = DEFAULT_WAIT_MS,
    max_batch: int = DEFAULT_MAX_BATCH,
    *,
    cache_dir: str | None = None,
    encoder_paths: dict[str, str] | None = None,
    predictor: Any = None,
    max_batch_items: int = 256,
) -> FastAPI:
    """Build the app for the bundle at ``bundle_path`` (or an already loaded ``predictor``)."""
    from scorecast.inference.predictor import Predictor

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

    @app.post("/score", tags=["scoring"], dependencies=auth, openapi_extra=openapi_body(batch=False))
    async def score(request: Request) -> dict[str, Any]:
        """Score one item: multipart (`audio` file + text fields) or JSON (`text`, `vectors`, `audio_base64`)."""
        (result,) = await _with_timeout(_score_request(request, batch=False), limits.timeout_s)
        return result

    @app.post("/score/batch", tags=["scoring"], dependencies=auth, openapi_extra=openapi_body(batch=True))
    async def score_batch(request: Request) -> dict[str, Any]:
        """Score several items: JSON list (or {"items": [...]}), or multipart with several `audio` files and
        repeated text fields (the i-th value of each field goes with the i-th file)."""
        results = await _with_timeout(_score_request(request, batch=True), limits.timeout_s)
        return {"results": results}

    async def _score_request(request: Request, batch: bool) -> list[dict[str, Any]]:
        pred = state["predictor"]
        body = await read_body(request, limits.max_upload_bytes)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "application/json":
            raw_items = parse_json_items(body, batch, limits.max_batch_items)
            items = await _json_items(raw_items, limits, batch)
        elif kind in FORM_TYPES:
            items = await form_items(request, body, batch, pred.inputs.texts, limits, multipart=kind == FORM_TYPES[0])
        else:
            raise HTTPException(
                415, f"expected Content-Type application/json, {' or '.join(FORM_TYPES)}, got '{kind or 'none'}'"
            )
        for i, item in enumerate(items):
            pred.inputs.check(item, where=f"item {i}" if batch else "request")
        return list(await asyncio.gather(*(batcher.submit(item) for item in items)))

    return app


async def _json_items(raw_items: list[ItemIn], limits: Limits, batch: bool) -> list[Item]:
    """Items of a JSON request: text and vectors are built on the event loop (microseconds: a thread
    hop per item cost more than the work and did not shrink with micro-batching); a request with
    base64 audio is decoded in one worker-thread call for all its items, off the loop."""
    if all(it.audio_base64 is None for it in raw_items):
        return [json_item(it, i, limits, batch) for i, it in enumerate(raw_items)]
    return await run_in_threadpool(lambda: [json_item(it, i, limits, batch) for i, it in enumerate(raw_items)])


async def _with_timeout(coro, timeout_s: float):
    try:
        async with asyncio.timeout(timeout_s):
            return await coro
    except TimeoutError:
        raise HTTPException(504, f"scoring took longer than the server's limit of {timeout_s:g} s") from None
