"""Encode items through the cache: look every input up first, encode only the misses, in batches.

    result = encode_items(items, EncoderSpec(name="sentence", input="text.response"), cache)
    result.pooled      # (N, D) float32, rows aligned with result.ids
    features = build_features(items, recipe.encoders, cache)   # FeatureSet

The encoder is built only when something must be encoded, where its class can say its identity
without being built (an optional ``identity_for(**params)`` classmethod returning the same dict as
``identity()``); otherwise it is built to learn its identity (constructors should defer loading
model weights to the first ``encode_batch``). Waveforms are loaded one batch at a time and each
finished entry is written at once, so memory stays flat and a killed run resumes where it stopped.
``shard=(i, n)`` encodes only the items whose key falls in shard i of n, so n machines fill one cache.

Speed, as a user meets it: the inputs still to encode are sorted longest first across the whole
extraction (not per batch), so batches pad little; a batch is the encoder's own ``batch_size``
unless one is given; the cache keeps sequences only for specs that ask for them (``sequence: true``,
for fusions that read them); one encoder instance (one model in memory) serves every spec of the
same configuration in a process (:func:`build_encoder`); per-clip CPU extractors (``parallel_safe``)
use a worker process per core by default (:mod:`scorecast.encoders.sharing`).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scorecast.cache.protocol import Cache
from scorecast.cache.store import hash_identity, make_key
from scorecast.config import EncoderSpec
from scorecast.data.features import FeatureSet
from scorecast.data.items import Item, ItemSet
from scorecast.encoders.base import Encoded, Encoder
from scorecast.encoders.building import (  # re-exported: callers import them from here
    build_encoder,
    constructor_params,
    resolve_encoder_class,
    spec_identity,
)
from scorecast.encoders.item_inputs import content_hash, naming_item  # content_hash re-exported
from scorecast.encoders.pipeline_batches import (  # re-exported: callers import them from here
    AudioPair,
    OnError,
    by_size,
    chunks,
    encode_batch_checked,
    load_input,
    progress_bar,
    reference_field,
    to_store,
    usable,
)
from scorecast.encoders.sharing import clear_shared_encoders, default_batch_size, default_workers
from scorecast.errors import ConfigError, DataError

__all__ = [
    "AudioPair",
    "EncodePlan",
    "EncodeResult",
    "OnError",
    "build_encoder",
    "build_features",
    "build_features_with_report",
    "clear_shared_encoders",
    "constructor_params",
    "content_hash",
    "encode_batch_checked",
    "encode_items",
    "ensure_encoder",
    "finish_plan",
    "in_shard",
    "load_input",
    "parse_shard",
    "plan_encoding",
    "progress_bar",
    "reference_field",
    "resolve_encoder_class",
    "spec_identity",
]


@dataclass
class EncodeResult:
    """What :func:`encode_items` produced. Unpacks as ``pooled, sequences = result``."""

    ids: list[str]  # the items encoded (or found), in input order
    indices: np.ndarray  # (N,) their positions in the input
    pooled: np.ndarray  # (N, D) float32
    sequences: list[np.ndarray] | None  # N arrays (T_i, D) where the spec keeps sequences
    skipped: dict[str, str] = field(default_factory=dict)  # item id -> why it was left out
    identity: dict[str, Any] = field(default_factory=dict)
    identity_hash: str = ""
    encoded: int = 0  # distinct inputs encoded by this call
    cached: int = 0  # items served from the cache
    seconds: float = 0.0
    rank: int = 0  # the process's global rank under distributed extraction

    def __iter__(self) -> Iterator[Any]:
        yield self.pooled
        yield self.sequences

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class EncodePlan:
    """Items resolved to cache keys, split into hits and the distinct inputs still to encode."""

    spec: EncoderSpec
    items: list[Item]
    identity: dict[str, Any]
    identity_hash: str
    refs: list[tuple[int, str]]  # (position in items, key) of every item in the shard
    todo: dict[str, Any]  # key -> payload (path, text or vector) still to encode
    found: dict[str, Encoded]
    skipped: dict[str, str]
    encoder: Encoder | None = None


def in_shard(key: str, shard: tuple[int, int] | None) -> bool:
    if shard is None:
        return True
    i, n = shard
    return int(key[:15], 16) % n == i


def plan_encoding(
    items: Sequence[Item] | ItemSet,
    spec: EncoderSpec,
    cache: Cache,
    on_error: OnError = "raise",
    shard: tuple[int, int] | None = None,
    encoder: Encoder | None = None,
    device: str | None = None,
    lookup: bool = True,
) -> EncodePlan:
    """Resolve items to keys and look them up; build the encoder only if its identity needs it."""
    items = list(items)
    _check_args(on_error, shard)
    if encoder is None:
        cls = resolve_encoder_class(spec.name)
        hook = getattr(cls, "identity_for", None)
        identity = hook(**constructor_params(spec)) if callable(hook) else None
        if identity is None:
            encoder = build_encoder(spec, device)
    if encoder is not None:
        identity = encoder.identity()
    ih = cache.register(identity, encoder=spec.name)
    refs: list[tuple[int, str]] = []
    payloads: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for pos, item in enumerate(items):
        try:
            chash, payload = content_hash(item, spec)
        except DataError as exc:
            if on_error == "raise":
                raise
            skipped[item.id] = str(exc)
            continue
        key = make_key(chash, ih)
        if in_shard(key, shard):
            refs.append((pos, key))
            payloads.setdefault(key, payload)
    found = usable(cache.get_many(ih, payloads, sequence=spec.sequence), spec) if lookup else {}
    todo = {k: p for k, p in payloads.items() if k not in found}
    return EncodePlan(spec, items, identity, ih, refs, todo, found, skipped, encoder)


def ensure_encoder(plan: EncodePlan, device: str | None = None) -> Encoder:
    """The plan's encoder, built now if it was not needed for the identity (checked against it)."""
    if plan.encoder is None:
        plan.encoder = build_encoder(plan.spec, device)
        got = plan.encoder.identity()
        if hash_identity(got) != plan.identity_hash:
            raise ConfigError(
                f"encoder '{plan.spec.name}': identity_for() gave {plan.identity} but the built encoder has {got}; "
                "the two must agree (a bug in the encoder class)"
            )
    return plan.encoder


def encode_items(
    items: Sequence[Item] | ItemSet,
    spec: EncoderSpec,
    cache: Cache,
    batch_size: int | None = None,
    workers: int | None = None,
    device: str | None = None,
    on_error: OnError = "raise",
    progress: bool = True,
    shard: tuple[int, int] | None = None,
    encoder: Encoder | None = None,
) -> EncodeResult:
    """Encode one input of every item with one encoder, through the cache.

    Returns pooled (N, D) float32 rows (and (T_i, D) sequences where ``spec.sequence``) for the items
    that were not skipped (``on_error="skip"``) and fall in ``shard``. ``workers > 0`` encodes in
    that many processes when the encoder class sets ``parallel_safe = True`` (CPU feature
    extractors); None picks :func:`default_workers`. ``batch_size`` None: :func:`default_batch_size`.
    ``device`` is passed to encoders that take a ``device`` parameter.
    """
    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"batch_size: expected >= 1, got {batch_size}")
    if workers is not None and workers < 0:
        raise ConfigError(f"workers: expected >= 0, got {workers}")
    start = time.perf_counter()
    plan = plan_encoding(items, spec, cache, on_error, shard, encoder, device)
    n_done = 0
    if plan.todo:
        cls = resolve_encoder_class(spec.name)
        batch_size = batch_size or default_batch_size(cls, spec.params)
        workers = default_workers(cls, len(plan.todo)) if workers is None else workers
        parallel = workers > 0 and bool(getattr(cls, "parallel_safe", False))
        if workers > 0 and not parallel:
            warnings.warn(
                f"encoder '{spec.name}' is not marked parallel_safe; encoding in this process (workers suit CPU feature extractors)",
                stacklevel=2,
            )
        with progress_bar(progress, len(plan.todo), f"{spec.feature_name} ({len(plan.found)} cached)") as advance:
            todo = by_size(plan.todo, spec)
            if parallel:
                from scorecast.encoders.distributed import encode_in_pool

                # small batches, longest first: the pool's workers finish close together
                size = max(1, min(batch_size, math.ceil(len(todo) / (4 * workers))))
                stream = encode_in_pool(plan, chunks(todo, size), workers, device, on_error)
            else:
                enc = ensure_encoder(plan, device)
                stream = (encode_batch_checked(enc, spec, b, on_error) for b in chunks(todo, batch_size))
            try:
                for done, failed in stream:
                    n_done += len(done)
                    for key, out in done:
                        cache.put(plan.identity_hash, key, to_store(out, spec))
                        plan.found[key] = _keep(out, spec)
                    for key, reason in failed:
                        plan.found.pop(key, None)
                        _skip_key(plan, key, reason)
                    advance(len(done) + len(failed))
            except DataError as exc:
                raise naming_item(plan, exc) from exc
    return finish_plan(plan, encoded=n_done, seconds=time.perf_counter() - start)


def _keep(out: Encoded, spec: EncoderSpec) -> Encoded:
    pooled = np.asarray(out.pooled, dtype=np.float32)
    seq = np.asarray(out.sequence, dtype=np.float32) if spec.sequence and out.sequence is not None else None
    return Encoded(pooled, seq)


def _skip_key(plan: EncodePlan, key: str, reason: str) -> None:
    for pos, k in plan.refs:
        if k == key:
            plan.skipped[plan.items[pos].id] = reason


def finish_plan(plan: EncodePlan, encoded: int = 0, seconds: float = 0.0, rank: int = 0) -> EncodeResult:
    """Assemble the result rows from ``plan.found`` (items whose key is absent are skipped)."""
    spec = plan.spec
    rows, ids, idx, seqs = [], [], [], []
    for pos, key in plan.refs:
        item_id = plan.items[pos].id
        out = plan.found.get(key)
        if out is None:
            plan.skipped.setdefault(item_id, "not encoded")
            continue
        if spec.sequence and out.sequence is None:
            raise ConfigError(f"encoder '{spec.name}' gives no sequences, but the spec asks for them (sequence: true)")
        rows.append(out.pooled)
        ids.append(item_id)
        idx.append(pos)
        if spec.sequence:
            seqs.append(out.sequence)
    dims = {r.shape[0] for r in rows}
    if len(dims) > 1:
        raise ConfigError(f"encoder '{spec.name}': pooled vectors of different sizes {sorted(dims)} under one identity")
    pooled = np.stack(rows).astype(np.float32, copy=False) if rows else np.zeros((0, 0), np.float32)
    cached = sum(1 for _, k in plan.refs if k not in plan.todo and k in plan.found)
    return EncodeResult(
        ids,
        np.asarray(idx, dtype=int),
        pooled,
        seqs if spec.sequence else None,
        dict(plan.skipped),
        plan.identity,
        plan.identity_hash,
        encoded,
        cached,
        seconds,
        rank,
    )


def build_features(
    items: Sequence[Item] | ItemSet, specs: Iterable[EncoderSpec], cache: Cache, **kwargs: Any
) -> FeatureSet:
    """Encode every spec and return a :class:`FeatureSet` of the items no encoder skipped."""
    return build_features_with_report(items, specs, cache, **kwargs)[0]


def build_features_with_report(
    items: Sequence[Item] | ItemSet, specs: Iterable[EncoderSpec], cache: Cache, **kwargs: Any
) -> tuple[FeatureSet, dict[str, EncodeResult]]:
    """:func:`build_features` plus each encoder's :class:`EncodeResult` (skips, counts), by feature name."""
    items = list(items)
    specs = list(specs)
    names = [s.feature_name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"encoders: feature names must differ, got {', '.join(dupes)} more than once (set alias)")
    results = {s.feature_name: encode_items(items, s, cache, **kwargs) for s in specs}
    features, skipped = join_results(items, results)
    if skipped:
        first = next(iter(skipped.items()))
        from scorecast.errors import SkippedRowsWarning, skipped_row

        rows = [skipped_row(reason, id=item_id) for item_id, reason in skipped.items()]
        warnings.warn(
            SkippedRowsWarning(
                f"left out {len(skipped)} item(s) no encoder could encode; the first: {first[0]}: {first[1]}", rows
            ),
            stacklevel=2,
        )
    return features, results


def join_results(
    items: Sequence[Item], results: dict[str, EncodeResult], empty_dims: dict[str, int] | None = None
) -> tuple[FeatureSet, dict[str, str]]:
    """Join each feature's :class:`EncodeResult` into one :class:`FeatureSet` of the items that every
    encoder encoded (in item order), and {item id: why} for the items left out. ``empty_dims`` gives
    the width of a feature when no item is left (else 0)."""
    keep = set(range(len(items)))
    for res in results.values():
        keep &= set(res.indices.tolist())
    order = sorted(keep)
    pooled, sequences = {}, {}
    for name, res in results.items():
        row_of = {p: r for r, p in enumerate(res.indices.tolist())}
        rows = np.array([row_of[p] for p in order], dtype=int)
        width = res.pooled.shape[1] if res.pooled.size else (empty_dims or {}).get(name, 0)
        pooled[name] = res.pooled[rows] if len(rows) else np.zeros((0, width), np.float32)
        if res.sequences is not None:
            sequences[name] = [res.sequences[r] for r in rows]
    skipped = {i: r for res in results.values() for i, r in res.skipped.items()}
    return FeatureSet([items[p].id for p in order], pooled, sequences), skipped


# ------------------------------------------------------------------------ helpers


def _check_args(on_error: str, shard: tuple[int, int] | None) -> None:
    if on_error not in ("raise", "skip"):
        raise ConfigError(f"on_error: expected 'raise' or 'skip', got {on_error!r}")
    if shard is not None:
        i, n = shard
        if not (n >= 1 and 0 <= i < n):
            raise ConfigError(f"shard: expected I/N with 0 <= I < N, got {i}/{n}")


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"I/N"`` -> (I, N)."""
    if text is None:
        return None
    try:
        i, n = (int(p) for p in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard: expected I/N (e.g. 0/4), got {text!r}") from None
    _check_args("raise", (i, n))
    return i, n
