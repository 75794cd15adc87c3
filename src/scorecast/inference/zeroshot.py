"""Scoring audio without training: ``scorecast score FILES... --model dnsmos|distillmos|BUNDLE``.

A zero-shot model is an encoder whose first outputs already are quality scores (the encoders and
their weights are the ones training uses, so their results come through the same embedding cache):

| model | encoder | columns |
|---|---|---|
| ``dnsmos`` | ``dnsmos`` (DNSMOS P.835 + P.808, ONNX from ``speechmos``) | sig, bak, ovrl, p808 (1-5) |
| ``distillmos`` | ``distillmos`` (weights in the ``distillmos`` wheel) | mos (1-5) |

Any trained scorer bundle whose only input is audio works too (its targets are the columns). A new
model subclasses :class:`ZeroShotModel` and registers itself in ``ZERO_SHOT``. (``xls-r-sqa`` is not
offered: its package ships the heads, but the XLS-R models they read are not available offline.)
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from scorecast.config import EncoderSpec
from scorecast.errors import ConfigError
from scorecast.registry import Registry


class ZeroShotModel:
    """An encoder whose first ``len(columns)`` outputs are scores, named by ``columns``."""

    encoder: ClassVar[str]
    params: ClassVar[dict[str, Any]] = {}
    columns: ClassVar[tuple[str, ...]]

    def spec(self) -> EncoderSpec:
        return EncoderSpec(name=self.encoder, input="audio", params=dict(self.params), alias=self.registry_name)

    @property
    def registry_name(self) -> str:
        return type(self).registry_name  # type: ignore[attr-defined]


ZERO_SHOT: Registry[type[ZeroShotModel]] = Registry("zero-shot model")


@ZERO_SHOT.register("dnsmos")
class DNSMOSScores(ZeroShotModel):
    encoder = "dnsmos"
    params = {"features": False}
    columns = ("sig", "bak", "ovrl", "p808")


@ZERO_SHOT.register("distillmos")
class DistillMOSScores(ZeroShotModel):
    encoder = "distillmos"
    params = {"embedding": False}
    columns = ("mos",)


def is_bundle(model: str | os.PathLike) -> bool:
    return (Path(model) / "scorecast.json").is_file()


def score_audio(
    model: str,
    paths: Sequence[str | os.PathLike],
    *,
    cache: Any = None,
    batch_size: int = 16,
    on_error: str = "raise",
    progress: bool = True,
) -> dict[str, Any]:
    """Score the audio files named or found under the folders in ``paths`` with a zero-shot model
    (by name) or a scorer bundle (a folder). ``cache``: an EmbeddingCache, or None (memory only).

    Returns {"frame": DataFrame (id = the file path, one column per score), "skipped": {id: why},
    "seconds"}."""
    import pandas as pd

    from scorecast.cache.memory import MemoryCache
    from scorecast.inference.sources import find_audio

    start = time.perf_counter()
    files = find_audio(paths)
    cache = cache if cache is not None else MemoryCache()
    if model in ZERO_SHOT:
        from scorecast.data.items import Item
        from scorecast.encoders.pipeline import encode_items

        zero = ZERO_SHOT.build(model)
        items = [Item(id=f, audio=str(Path(f).resolve())) for f in files]
        res = encode_items(items, zero.spec(), cache, batch_size=batch_size, on_error=on_error, progress=progress)
        frame = pd.DataFrame({"id": list(res.ids)})
        for j, col in enumerate(zero.columns):
            frame[col] = res.pooled[:, j].astype(float)
        skipped = dict(res.skipped)
    elif is_bundle(model):
        frame, skipped = _score_with_bundle(Path(model), files, cache, batch_size, on_error, progress)
    else:
        raise ConfigError(
            f"--model {model}: expected a zero-shot model ({', '.join(ZERO_SHOT.names())}) "
            f"or a scorer bundle folder (holding scorecast.json)"
        )
    return {"frame": frame, "skipped": skipped, "seconds": time.perf_counter() - start}


def _score_with_bundle(path: Path, files: list[str], cache, batch_size: int, on_error: str, progress: bool):
    from scorecast.inference.bundle import load_bundle
    from scorecast.inference.frames import prediction_frame
    from scorecast.inference.predictor import Predictor
    from scorecast.inference.sources import items_from_sources

    bundle = load_bundle(path)
    predictor = Predictor(bundle, cache=cache, batch_size=batch_size, progress=progress)
    if predictor.inputs.texts or predictor.inputs.vectors:
        raise ConfigError(
            f"--model {path}: this scorer reads {predictor.inputs.expected()}; `score` gives audio only: "
            f"use `scorecast predict {path} ...` with --text or a table"
        )
    items = items_from_sources(predictor.inputs, files)
    ids, pred, skipped = predictor.predict_report(items, on_error=on_error)
    return prediction_frame(ids, predictor.target_names, pred.mean, pred.std, pred_prefix=""), skipped
