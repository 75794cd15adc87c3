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
anything is parsed or decoded) and must arrive within ``body_timeout_s`` (408; the headers' own limit,
``header_timeout_s``, is kept by the protocol ``scorecast serve`` runs uvicorn with:
:mod:`scorecast.serve.http`); audio longer than ``max_duration_s`` or decoding to more than
``max_decoded_mb`` (frames x channels from the header) is refused (413) before decoding, and decoded
in blocks (mixed down, resampled to the encoders' rate); bytes that are not WAV/FLAC/Ogg/MP3 are
refused (415) from their first bytes; every request reserves its body and decoded audio in one
memory budget shared by all requests in flight (``max_inflight_mb``; 503 with Retry-After when full:
:mod:`scorecast.serve.limits`); scoring that takes longer than ``timeout_s`` gets 504; malformed JSON
or form data and missing or unknown fields get 422. In ``/score/batch`` each item gets its own result
or its own error (``status``, ``index``, ``id``, ``file``). Results carry ``flags`` for inputs unlike
the training data (:mod:`scorecast.inference.novelty`). An unexpected error answers 500 and the server
keeps serving. Reading and checking request bodies lives in :mod:`scorecast.serve.requests`, audio uploads in
:mod:`scorecast.serve.uploads`.
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
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from scorecast.data.items import Item
from scorecast.errors import DataError, ScorecastError
from scorecast.serve.limits import Limits, MemoryBudget
from scorecast.serve.microbatch import DEFAULT_MAX_BATCH, DEFAULT_WAIT_MS, MicroBatcher
from scorecast.serve.requests import (
    FORM_TYPES,
    BatchIn,
    ItemIn,
    RawItem,
    build_item,
    declared_length,
    form_entries,
    json_entries,
    openapi_body,
    parse_json_items,
    read_body,
)
from scorecast.serve.uploads import READABLE_AUDIO, decode_audio

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
    max_decoded_mb: float = 64.0,
    body_timeout_s: float = 30.0,
    header_timeout_s: float = 10.0,
    max_inflight_mb: float = 256.0,
    queue_wait_s: float = 2.0,
) -> FastAPI:
    """Build the app for the bundle at ``bundle_path`` (or an already loaded ``predictor``)."""
    from scorecast.inference.predictor import Predictor

    if predictor is None and bundle_path is None:
        raise ScorecastError("create_app: expected a bundle path or a loaded predictor, got neither")
    limits = Limits(
        max_upload_mb=max_upload_mb,
        max_duration_s=max_duration_s,
        timeout_s=timeout_s,
        max_batch_items=max_batch_items,
        max_decoded_mb=max_decoded_mb,
        body_timeout_s=body_timeout_s,
        header_timeout_s=header_timeout_s,
        max_inflight_mb=max_inflight_mb,
        queue_wait_s=queue_wait_s,
    )
    budget = MemoryBudget(int(max_inflight_mb * 1024 * 1024), wait_s=queue_wait_s)
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
        budget.bind_to_running_loop()
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
    app.state.budget = budget
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
        info["memory"] = budget.stats.as_dict(budget.limit)
        return info

    @app.get("/openapi.json", include_in_schema=False, dependencies=auth)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    assets = swagger_assets()
    if assets is not None:
        app.mount("/docs-assets", StaticFiles(directory=str(assets)), name="docs-assets")

    @app.get("/docs", include_in_schema=False, dependencies=auth)
    async def docs():
        if assets is None:
            raise HTTPException(404, "API docs need the swagger-ui-bundle package (pip install swagger-ui-bundle)")
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="scorecast API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )

    @app.post("/score", tags=["scoring"], dependencies=auth, openapi_extra=openapi_body(batch=False))
    async def score(request: Request) -> dict[str, Any]:
        """Score one item: multipart (`audio` file + text fields) or JSON (`text`, `vectors`, `audio_base64`)."""
        (result,) = await _score_request(request, batch=False)
        return result

    @app.post("/score/batch", tags=["scoring"], dependencies=auth, openapi_extra=openapi_body(batch=True))
    async def score_batch(request: Request) -> dict[str, Any]:
        """Score several items: JSON list (or {"items": [...]}), or multipart with several `audio` files and
        repeated text fields (the i-th value of each field goes with the i-th file). Each item gets its own
        result or its own ``error`` (with ``status``, ``index`` and ``file``); the others are scored."""
        results = await _score_request(request, batch=True)
        return {"results": results, "errors": sum(1 for r in results if "error" in r)}

    async def _score_request(request: Request, batch: bool) -> list[dict[str, Any]]:
        """Reserve the body's bytes, read it (408 when slow), then parse, decode and score under the scoring limit."""
        async with budget.holding() as hold:
            size = declared_length(request, limits.max_upload_bytes)
            await hold.add(size if size is not None else limits.max_upload_bytes, "the request body")
            body = await read_body(request, limits.max_upload_bytes, limits.body_timeout_s)
            return await _with_timeout(_score_body(request, body, batch, hold), limits.timeout_s)

    async def _score_body(request: Request, body: bytes, batch: bool, hold) -> list[dict[str, Any]]:
        pred = state["predictor"]
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "application/json":
            raws = json_entries(parse_json_items(body, batch, limits.max_batch_items), batch)
        elif kind in FORM_TYPES:
            raws = await form_entries(request, body, batch, pred.inputs.texts, limits, multipart=kind == FORM_TYPES[0])
        else:
            raise HTTPException(
                415, f"expected Content-Type application/json, {' or '.join(FORM_TYPES)}, got '{kind or 'none'}'"
            )
        rate = audio_rate(pred)
        results: list[dict[str, Any] | None] = [None] * len(raws)
        ready = []
        for raw in raws:
            try:
                item = await build_item(raw, limits, hold, rate)
                pred.inputs.check(item, where=raw.where)
                ready.append((raw, item))
            except (HTTPException, DataError) as exc:
                if not batch:
                    raise
                results[raw.index] = item_error(raw, exc)
        scored = await asyncio.gather(*(batcher.submit(item) for _, item in ready), return_exceptions=True)
        for (raw, item), out in zip(ready, scored, strict=True):
            if isinstance(out, BaseException):
                if not batch or not isinstance(out, Exception):
                    raise out
                log.warning("batch item %d failed: %s: %s", raw.index, type(out).__name__, out)
                results[raw.index] = item_error(raw, out)
            else:
                results[raw.index] = with_flags(out, item)
        return [r for r in results if r is not None]

    return app


def swagger_assets():
    """The folder of the Swagger UI files the swagger-ui-bundle package ships (None where it is absent)."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    return swagger_ui_path


def audio_rate(pred: Any) -> int | None:
    """The highest sample rate the bundle's audio encoders read (uploads above it are resampled down while decoding)."""
    encoders = getattr(pred, "encoders", None) or {}
    specs = getattr(pred, "specs", None) or []
    rates = [int(getattr(encoders.get(s.feature_name), "sample_rate", 0) or 0) for s in specs if s.input == "audio"]
    return max(rates) if rates and min(rates) > 0 else None


def item_error(raw: RawItem, exc: BaseException) -> dict[str, Any]:
    """A batch item's own error: HTTP status, message, its index, id and file name."""
    if isinstance(exc, HTTPException):
        status, detail = exc.status_code, str(exc.detail)
    elif isinstance(exc, DataError):
        status, detail = 422, str(exc)
    elif isinstance(exc, ScorecastError):
        status, detail = 500, f"{type(exc).__name__}: {exc}"
    else:
        status, detail = 500, f"internal error: {type(exc).__name__}: {exc}"
    if not detail.startswith(raw.where):
        detail = f"{raw.where}{f' ({raw.name})' if raw.name else ''}: {detail}"
    return {"index": raw.index, "id": raw.id, "file": raw.name, "status": status, "error": detail}


def with_flags(result: dict[str, Any], item: Item) -> dict[str, Any]:
    """The scorer's result plus what decoding noticed about the item (e.g. a truncated upload) in ``flags``."""
    noticed = list(item.meta.get("flags") or [])
    if noticed:
        result = {**result, "flags": list(result.get("flags") or []) + noticed}
    return result


async def _with_timeout(coro, timeout_s: float):
    try:
        async with asyncio.timeout(timeout_s):
            return await coro
    except TimeoutError:
        raise HTTPException(504, f"scoring took longer than the server's limit of {timeout_s:g} s") from None
