"""The built-in demo: a scored speech corpus made on the spot, then embed -> cv -> report -> predict.

:func:`make_corpus` writes ``n`` speech-like clips (:mod:`scorecast.demo.synth`), each put through one
impairment condition (:mod:`scorecast.demo.impairments`) at a random severity, and a table ``corpus.csv``::

    id, audio (path relative to the table), score (1-5), stoi, condition, level, params, voice, duration_s

Clips are 32-bit float WAVs at 16 kHz, so the samples on disk are exactly the ones labelled (STOI
of a band-limited clip depends on what is left far above the cut-off, which 16-bit rounding alters).

``score`` is :func:`scorecast.impairments.stoi_to_score` of the clip's STOI against its clean original,
a label the model never sees the inputs of. The table reads with the generic ``table`` reader
(:data:`TABLE_OPTIONS`; ``condition`` is the item group, so system-level metrics are per condition).

:func:`run_demo` embeds the clips with eGeMAPS (openSMILE), cross-validates a heteroscedastic MLP
(5 folds, stratified by score), writes the report, and scores fresh clips through the trained
bundle with the Python API.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scorecast.demo.impairments import IMPAIRMENTS, impair, quality_score
from scorecast.demo.synth import SAMPLE_RATE, Voice, make_voices, synth_speech
from scorecast.errors import ConfigError

CORPUS_FILE = "corpus.csv"
TABLE_OPTIONS: dict[str, Any] = {
    "id": "id",
    "audio": "audio",
    "targets": "score",
    "group": "condition",
    "meta": ["voice", "level", "stoi"],
}
#: the voices of the corpus; the fresh clips of :func:`run_demo` use a voice outside this set
CORPUS_VOICES = 8


@dataclass
class Clip:
    """One made clip: the impaired waveform, its label, and how it was made."""

    waveform: np.ndarray
    score: float
    stoi: float
    condition: str
    params: dict[str, float]
    voice: str

    @property
    def level(self) -> float | None:
        name = IMPAIRMENTS[self.condition].level
        return None if name is None else float(self.params[name])

    def describe(self) -> str:
        if not self.params:
            return self.condition
        parts = ", ".join(f"{k}={v:g}" for k, v in self.params.items() if k != "pink")
        return f"{self.condition} ({parts})"


def make_clip(
    voice: Voice,
    condition: str,
    params: dict[str, float] | None = None,
    *,
    seed: int | list[int] = 0,
    duration_s: float | None = None,
) -> Clip:
    """A fresh clip of ``voice`` under ``condition`` (severity ``params``, drawn when None), labelled.
    The same arguments give the same clip."""
    rng = np.random.default_rng(seed)
    duration = float(rng.uniform(2.0, 4.0)) if duration_s is None else float(duration_s)
    clean = synth_speech(voice, duration, rng)
    impaired, used = impair(clean, condition, params, rng)
    peak = float(np.max(np.abs(impaired)))
    if peak > 0.99:  # keep the WAV within range; STOI ignores the overall gain
        impaired = (impaired * (0.99 / peak)).astype(np.float32)
    score, stoi = quality_score(clean, impaired)
    return Clip(impaired, score, stoi, condition, used, voice.id)


def _corpus_row(args: tuple[int, str, Voice, int, str]) -> dict[str, Any]:
    """Make, write and describe clip ``index``."""
    import soundfile as sf

    index, condition, voice, seed, audio_dir = args
    clip = make_clip(voice, condition, seed=[seed, index])
    name = f"clip{index:04d}"
    sf.write(
        Path(audio_dir) / f"{name}.wav", clip.waveform, SAMPLE_RATE, subtype="FLOAT"
    )  # exactly the labelled samples
    return {
        "id": name,
        "audio": f"audio/{name}.wav",
        "score": round(clip.score, 4),
        "stoi": round(clip.stoi, 4),
        "condition": condition,
        "level": "" if clip.level is None else round(clip.level, 4),
        "params": json.dumps({k: round(v, 4) for k, v in clip.params.items()}),
        "voice": clip.voice,
        "duration_s": round(len(clip.waveform) / SAMPLE_RATE, 3),
    }


def _map(fn: Callable, jobs: list, workers: int):
    """``map(fn, jobs)`` in order, in ``workers`` forked processes where there are several (as the
    encoding pipeline's pool does; fork shares the loaded modules instead of re-importing them)."""
    import multiprocessing as mp

    if workers <= 1 or len(jobs) < 2 * workers or "fork" not in mp.get_all_start_methods():
        yield from map(fn, jobs)
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
        yield from pool.map(fn, jobs, chunksize=max(1, len(jobs) // (4 * workers)))


def make_corpus(
    out_dir: str | os.PathLike,
    n: int = 160,
    seed: int = 0,
    *,
    conditions: list[str] | None = None,
    voices: int = CORPUS_VOICES,
    workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write ``n`` labelled clips under ``out_dir/audio`` and the table ``out_dir/corpus.csv``; returns
    the table's path. Conditions take turns in a seeded shuffled order, so each appears about
    ``n / len(conditions)`` times; voices take turns too. Clip ``i`` depends only on ``(seed, i)``,
    so ``workers`` (processes making clips in parallel; 0: this process) does not change the output."""
    import pandas as pd

    conditions = list(conditions or IMPAIRMENTS)
    unknown = [c for c in conditions if c not in IMPAIRMENTS]
    if unknown:
        raise ConfigError(f"make_corpus: unknown condition(s) {unknown}; expected some of: {', '.join(IMPAIRMENTS)}")
    if n < len(conditions):
        raise ConfigError(f"make_corpus: expected n >= {len(conditions)} (one clip per condition), got {n}")
    out = Path(out_dir)
    audio_dir = out / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 1])
    order = np.concatenate([rng.permutation(len(conditions)) for _ in range(-(-n // len(conditions)))])[:n]
    voice_list = make_voices(voices, seed)
    jobs = [(i, conditions[order[i]], voice_list[i % voices], seed, str(audio_dir)) for i in range(n)]
    if workers < 0:
        raise ConfigError(f"make_corpus: expected workers >= 0, got {workers}")
    rows: list[dict[str, Any]] = []
    for row in _map(_corpus_row, jobs, workers):
        rows.append(row)
        if progress:
            progress(len(rows), n)
    table = out / CORPUS_FILE
    pd.DataFrame(rows).to_csv(table, index=False)
    return table


def demo_recipe(
    table: str | os.PathLike,
    *,
    quick: bool = False,
    cache_dir: str | None = None,
    encoders: tuple[str, ...] = ("egemaps",),
) -> Any:
    """The demo's recipe (a :class:`scorecast.config.Recipe`): ``encoders`` -> concat MLP ->
    heteroscedastic head trained with Gaussian NLL mixed with MAE, plus MSE, early stopping on the
    validation loss; 5-fold CV stratified by score, folds weighted by LCC. ``quick`` trains fewer
    epochs and draws fewer bootstrap resamples."""
    from scorecast.config import load_recipe

    return load_recipe(
        {
            "name": "demo",
            "description": "Synthetic speech under controlled impairments, labelled by STOI mapped to 1-5.",
            "data": {"reader": "table", "path": str(table), "options": dict(TABLE_OPTIONS)},
            "targets": [{"name": "score", "low": 1.0, "high": 5.0, "step": 0.5}],
            "encoders": [{"name": name, "input": "audio", "alias": name} for name in encoders],
            "model": {
                "fusion": {"name": "concat", "params": {"hidden": [64], "dropout": 0.3}},
                "head": {"name": "heteroscedastic", "params": {"bounded": True}},
            },
            "losses": [
                {"name": "gaussian-nll", "weight": 1.0, "params": {"mae_weight": 0.3}},
                {"name": "mse", "weight": 0.5},
            ],
            "training": {
                "max_epochs": 30 if quick else 150,
                "batch_size": 16,
                "lr": 2e-3,
                "weight_decay": 0.1,
                # stopping on the validation loss (Gaussian NLL) keeps the predicted spread honest;
                # stopping on LCC gains ~0.02 LCC but lets the spread shrink ~20x too small
                "early_stopping": {"monitor": "val_loss", "patience": 10 if quick else 30},
                "val_fraction": 0.15,
                "seed": 0,
            },
            "cv": {"folds": 5, "kind": "stratified", "ensemble": "weighted", "weight_metric": "lcc", "seeds": [0]},
            "evaluate": {
                "metrics": ["lcc", "srcc", "ktau", "rmse", "mae"],
                "system_level": True,
                "bootstrap": 200 if quick else 1000,
            },
            "cache_dir": cache_dir,
        }
    )


@dataclass
class DemoResult:
    """What :func:`run_demo` made and measured."""

    out_dir: Path
    table: Path
    run_dir: Path
    report: Path
    metrics: dict[str, Any]
    fresh: list[dict[str, Any]] = field(default_factory=list)  # the new clips: made vs predicted
    seconds: dict[str, float] = field(default_factory=dict)  # wall time of each step


#: the fresh clips scored at the end: (condition, severity)
FRESH_CLIPS: list[tuple[str, dict[str, float]]] = [
    ("clean", {}),
    ("noise", {"snr_db": 5.0, "pink": 0.0}),
    ("lowpass", {"cutoff_hz": 700.0}),
]


def run_demo(
    out_dir: str | os.PathLike = "demo-run",
    *,
    n: int = 160,
    quick: bool = False,
    seed: int = 0,
    encoders: tuple[str, ...] = ("egemaps",),
    workers: int | None = None,
    log: Callable[[str], None] = print,
) -> DemoResult:
    """Make the corpus, embed it, cross-validate, write the report, and score fresh clips.

    Everything goes under ``out_dir``: ``corpus/`` (clips + table), ``cache/`` (embeddings),
    ``run/`` (the run folder: metrics, out-of-fold predictions, ``bundle/``, ``report/``).
    ``workers`` processes make and embed the clips (default: up to 2, one per core).
    """
    from scorecast.cache.store import EmbeddingCache
    from scorecast.data.readers import read_items
    from scorecast.encoders.pipeline import build_features_with_report
    from scorecast.report.page import write_report
    from scorecast.runs.cv import run_cv

    out = Path(out_dir)
    seconds: dict[str, float] = {}
    workers = min(2, os.cpu_count() or 1) if workers is None else workers

    t = time.perf_counter()
    table = make_corpus(out / "corpus", n=n, seed=seed, workers=workers)
    seconds["corpus"] = time.perf_counter() - t
    log(f"made {n} clips ({len(IMPAIRMENTS)} conditions, {CORPUS_VOICES} voices), labelled by STOI -> 1-5: {table}")

    t = time.perf_counter()
    recipe = demo_recipe(table, quick=quick, cache_dir=str(out / "cache"), encoders=encoders)
    items = read_items(recipe.data)
    features, reports = build_features_with_report(
        items, recipe.encoders, EmbeddingCache(recipe.cache_dir), workers=workers if workers > 1 else 0
    )
    if list(features.ids) != list(items.ids):
        raise ConfigError(f"demo: {len(items) - len(features)} clip(s) could not be encoded")
    seconds["embed"] = time.perf_counter() - t
    dims = ", ".join(f"{k} ({v}-d)" for k, v in features.dims().items())
    log(f"embedded {len(features)} clips: {dims}; cache: {recipe.cache_dir}")

    t = time.perf_counter()
    run_dir = out / "run"
    identities = {name: rep.identity for name, rep in reports.items()}
    result = run_cv(recipe, items, features, run_dir, encoder_identities=identities)
    seconds["cv"] = time.perf_counter() - t
    log(f"cross-validated ({recipe.cv.folds} folds, {len(result.members)} members): {run_dir}")

    t = time.perf_counter()
    report = write_report(run_dir)
    seconds["report"] = time.perf_counter() - t
    log(f"wrote the report: {report}")

    t = time.perf_counter()
    fresh = score_fresh_clips(run_dir / "bundle", seed=seed)
    seconds["predict"] = time.perf_counter() - t
    return DemoResult(out, table, run_dir, report, result.metrics, fresh, seconds)


def score_fresh_clips(bundle: str | os.PathLike, seed: int = 0) -> list[dict[str, Any]]:
    """Make :data:`FRESH_CLIPS` with a voice the corpus does not have and score them with
    ``scorecast.load(bundle).predict(audio=[(waveform, rate), ...])``."""
    import scorecast.api as api

    voice = make_voices(CORPUS_VOICES + 1, seed + 1000)[CORPUS_VOICES // 2]
    voice = Voice("fresh", voice.f0_hz, voice.formant_scale)
    clips = [
        make_clip(voice, cond, params, seed=[seed, 10_000 + i], duration_s=3.0)
        for i, (cond, params) in enumerate(FRESH_CLIPS)
    ]
    scorer = api.load(bundle, cache=False)
    pred = scorer.predict(
        audio=[(c.waveform, SAMPLE_RATE) for c in clips], ids=[f"fresh{i}" for i in range(len(clips))]
    )
    rows = []
    for i, clip in enumerate(clips):
        rows.append(
            {
                "clip": clip.describe(),
                "true": clip.score,
                "stoi": clip.stoi,
                "pred": float(pred.mean[i, 0]),
                "std": None if pred.std is None else float(pred.std[i, 0]),
            }
        )
    return rows
