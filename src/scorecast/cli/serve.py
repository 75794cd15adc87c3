"""``scorecast serve BUNDLE``: an HTTP server that scores with a trained scorer (see scorecast.serve.app).

The bundle and its encoders are loaded (and the encoders' models warmed up) before the server binds
its port, so a bad bundle fails here with a message and exit code 2, and the first request is as
fast as the others. Bound to 127.0.0.1 unless ``--host`` says otherwise.
"""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path
from typing import Annotated

import typer

from scorecast.serve.microbatch import DEFAULT_MAX_BATCH, DEFAULT_WAIT_MS


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        bundle: Annotated[Path, typer.Argument(help="Scorer bundle folder (RUN/bundle).")],
        host: Annotated[
            str, typer.Option("--host", help="Address to bind (127.0.0.1: this machine only).")
        ] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
        token: Annotated[
            str | None,
            typer.Option(
                "--token",
                envvar="SCORECAST_TOKEN",
                help="Bearer token every route but /healthz requires (or $SCORECAST_TOKEN).",
                show_default=False,
            ),
        ] = None,
        max_upload_mb: Annotated[
            float, typer.Option("--max-upload-mb", help="Largest request body, in MiB (413 above).")
        ] = 20.0,
        max_duration_s: Annotated[
            float, typer.Option("--max-duration-s", help="Longest audio accepted, in seconds (413 above).")
        ] = 60.0,
        timeout_s: Annotated[
            float, typer.Option("--timeout-s", help="Longest a request may take, in seconds (504 above).")
        ] = 30.0,
        batch_wait_ms: Annotated[
            float, typer.Option("--batch-wait-ms", help="How long a request waits for others to share a batch.")
        ] = DEFAULT_WAIT_MS,
        max_batch: Annotated[
            int, typer.Option("--max-batch", help="Most items scored in one call (1: no batching).")
        ] = DEFAULT_MAX_BATCH,
        cache: Annotated[
            Path | None,
            typer.Option("--cache", help="Embedding cache folder (default: in memory only, nothing written)."),
        ] = None,
        encoder_path: Annotated[
            list[str] | None,
            typer.Option(
                "--encoder-path", help="OLD=NEW: a model folder the bundle names, and where it is here; repeatable."
            ),
        ] = None,
        log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
        max_decoded_mb: Annotated[
            float,
            typer.Option(
                "--max-decoded-mb", help="Largest decoded clip (frames x channels x 4 bytes), MiB (413 above)."
            ),
        ] = 64.0,
        max_inflight_mb: Annotated[
            float,
            typer.Option(
                "--max-inflight-mb", help="Memory all requests in flight may hold together, MiB (503 when full)."
            ),
        ] = 256.0,
        body_timeout_s: Annotated[
            float, typer.Option("--body-timeout-s", help="Time a client has to send its body, in seconds (408 above).")
        ] = 30.0,
        header_timeout_s: Annotated[
            float,
            typer.Option("--header-timeout-s", help="Time a client has to send its headers, in seconds (408 above)."),
        ] = 10.0,
    ) -> None:
        """Serve a scorer over HTTP: POST /score, POST /score/batch, GET /model, GET /healthz, /docs."""
        from rich.console import Console

        console = Console(stderr=True)
        start = time.perf_counter()
        from scorecast.inference.predictor import Predictor, parse_encoder_paths

        predictor = Predictor.from_path(bundle, cache_dir=cache, encoder_paths=parse_encoder_paths(encoder_path))
        import uvicorn

        from scorecast.serve.app import create_app

        api = create_app(
            token=token,
            max_upload_mb=max_upload_mb,
            max_duration_s=max_duration_s,
            timeout_s=timeout_s,
            batch_wait_ms=batch_wait_ms,
            max_batch=max_batch,
            predictor=predictor,
            max_decoded_mb=max_decoded_mb,
            max_inflight_mb=max_inflight_mb,
            body_timeout_s=body_timeout_s,
            header_timeout_s=header_timeout_s,
        )
        if not _is_loopback(host) and token is None:
            console.print(
                f"[yellow]warning:[/] serving on {host} (reachable from other machines) without a token; set --token or $SCORECAST_TOKEN"
            )
        console.print(
            f"loaded {bundle} in {time.perf_counter() - start:.1f} s; targets {', '.join(predictor.target_names)}; "
            f"inputs: {predictor.inputs.expected()}; auth: {'bearer token' if token else 'none'}"
        )
        from scorecast.serve.http import header_timeout_protocol

        uvicorn.run(api, host=host, port=port, log_level=log_level, http=header_timeout_protocol(header_timeout_s))
