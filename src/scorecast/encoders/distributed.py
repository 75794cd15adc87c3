"""Encoding across processes: a local process pool (``workers``) and Lightning's distributed predict
(``devices``), where N devices (or nodes) fill one shared cache.

    result = encode_items_distributed(items, spec, cache, devices=4, accelerator="gpu")

``Trainer(accelerator, devices, num_nodes, strategy="ddp").predict`` runs over a dataset of every
distinct input key (the same list on every rank, whatever the cache holds, so the sampler splits
it identically); each rank skips keys already cached, encodes the rest of its share with its own
copy of the encoder on its own device, and writes its entries straight into the shared cache. After
a barrier every rank reads the whole result back from the cache.

With ``strategy="ddp"`` Lightning re-launches the running command once per extra local device
(``python script.py ...`` or ``scorecast embed ...``), so call this from a script or the CLI, not
from an interactive session; only the process with ``result.rank == 0`` should print or write files.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

from scorecast.cache.protocol import Cache
from scorecast.config import EncoderSpec
from scorecast.data.items import Item, ItemSet
from scorecast.encoders.pipeline import (
    EncodePlan,
    EncodeResult,
    build_encoder,
    ensure_encoder,
    finish_plan,
    plan_encoding,
)
from scorecast.encoders.pipeline_batches import OnError, encode_batch_checked, to_store, usable
from scorecast.errors import ConfigError


def _collate_list(batch: list) -> list:
    return batch


def _launched_rank() -> bool:
    """True in a process Lightning launched for a rank other than the first of its node or job."""
    return int(os.environ.get("LOCAL_RANK", "0")) > 0 or int(os.environ.get("NODE_RANK", "0")) > 0


def encode_items_distributed(
    items: Sequence[Item] | ItemSet,
    spec: EncoderSpec,
    cache: Cache,
    devices: int = 2,
    accelerator: str = "cpu",
    num_nodes: int = 1,
    strategy: str = "ddp",
    batch_size: int = 16,
    on_error: OnError = "raise",
    progress: bool = True,
) -> EncodeResult:
    """:func:`~scorecast.encoders.pipeline.encode_items` across ``devices`` x ``num_nodes`` processes."""
    if devices < 1 or num_nodes < 1 or batch_size < 1:
        raise ConfigError(
            f"distributed encoding: expected devices, num_nodes, batch_size >= 1, got {devices}, {num_nodes}, {batch_size}"
        )
    start = time.perf_counter()
    plan = plan_encoding(items, spec, cache, on_error, lookup=False)
    all_keys = list(plan.todo.items())  # every distinct input: identical on every rank
    if num_nodes == 1 and not _launched_rank():
        present = usable(cache.get_many(plan.identity_hash, plan.todo, sequence=spec.sequence), spec)
        if len(present) == len(plan.todo):
            plan.found, plan.todo = present, {}
            return finish_plan(plan, 0, time.perf_counter() - start)
    import lightning as L
    import torch

    class Inputs(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(all_keys)

        def __getitem__(self, i: int) -> tuple[str, Any]:
            return all_keys[i]

    module = _make_module(plan, cache, on_error)
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=devices,
        num_nodes=num_nodes,
        strategy=strategy,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=progress,
    )
    loader = torch.utils.data.DataLoader(Inputs(), batch_size=batch_size, shuffle=False, collate_fn=_collate_list)
    outputs = trainer.predict(module, loader, return_predictions=True) or []
    encoded = sum(o["encoded"] for o in outputs)
    failed = [f for o in outputs for f in o["failed"]]
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        gathered: list[Any] = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(gathered, (encoded, failed))
        encoded = sum(g[0] for g in gathered)
        failed = [f for g in gathered for f in g[1]]
    trainer.strategy.barrier("scorecast-encode-done")
    failed_keys = dict(failed)
    plan.found = usable(cache.get_many(plan.identity_hash, plan.todo, sequence=spec.sequence), spec)
    missing = [(k, p) for k, p in plan.todo.items() if k not in plan.found and k not in failed_keys]
    if missing:  # written by another process meanwhile but unreadable, or lost: encode here
        done, more = encode_batch_checked(ensure_encoder(plan), spec, missing, on_error)
        for key, out in done:
            cache.put(plan.identity_hash, key, to_store(out, spec))
        plan.found.update(cache.get_many(plan.identity_hash, [k for k, _ in done], sequence=spec.sequence))
        failed_keys.update(dict(more))
    for key, reason in failed_keys.items():
        for pos, k in plan.refs:
            if k == key:
                plan.skipped[plan.items[pos].id] = reason
    result = finish_plan(plan, encoded, time.perf_counter() - start, rank=trainer.global_rank)
    return result


def _module_class():
    import lightning as L

    class EncodeModule(L.LightningModule):
        """Wraps an encoder for ``Trainer.predict``; each step writes its entries to the cache."""

        def __init__(self, plan: EncodePlan, cache: Cache, on_error: OnError) -> None:
            super().__init__()
            self.plan, self.cache, self.on_error = plan, cache, on_error
            self.ready = False

        def predict_step(self, batch: list[tuple[str, Any]], batch_idx: int) -> dict[str, Any]:
            ih = self.plan.identity_hash
            spec = self.plan.spec
            if spec.sequence:  # an entry written without its sequence does not serve this spec
                todo = [(k, p) for k, p in batch if not usable(self.cache.get_many(ih, [k], sequence=True), spec)]
            else:
                todo = [(k, p) for k, p in batch if not self.cache.contains(ih, k)]
            if not todo:
                return {"encoded": 0, "failed": []}
            device = _device_name(self.device)
            if not self.ready and device != "cpu":
                self.plan.encoder = None  # rebuilt on this rank's device (identity checked again)
            self.ready = True
            encoder = ensure_encoder(self.plan, device)
            done, failed = encode_batch_checked(encoder, self.plan.spec, todo, self.on_error)
            for key, out in done:
                self.cache.put(ih, key, to_store(out, self.plan.spec))
            return {"encoded": len(done), "failed": failed}

    return EncodeModule


def _device_name(device: Any) -> str:
    text = str(device)
    return "cpu" if text.startswith("cpu") else text


def _make_module(plan: EncodePlan, cache: Cache, on_error: OnError):
    return _module_class()(plan, cache, on_error)


# ------------------------------------------------------------------------ local process pool (workers)

_WORKER: dict[str, Any] = {}


def _worker_init(spec_json: str, device: str | None, identity_hash: str) -> None:
    spec = EncoderSpec.model_validate_json(spec_json)
    encoder = build_encoder(spec, device)
    if encoder.identity_hash != identity_hash:
        raise ConfigError(
            f"encoder '{spec.name}' built in a worker has identity {encoder.identity()}, not the planned one"
        )
    _WORKER["spec"] = spec
    _WORKER["encoder"] = encoder


def _worker_run(batch: list[tuple[str, Any]], on_error: OnError):
    return encode_batch_checked(_WORKER["encoder"], _WORKER["spec"], batch, on_error)


def encode_in_pool(plan: EncodePlan, batches: Iterator[list], workers: int, device: str | None, on_error: OnError):
    """Yield (done, failed) per batch from ``workers`` processes, each building its own encoder (for
    ``parallel_safe`` CPU feature extractors); at most 2 batches per worker in flight (bounded memory)."""
    import multiprocessing as mp

    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
    with ProcessPoolExecutor(
        workers,
        mp_context=ctx,
        initializer=_worker_init,
        initargs=(plan.spec.model_dump_json(), device, plan.identity_hash),
    ) as pool:
        pending = set()
        for batch in batches:
            pending.add(pool.submit(_worker_run, batch, on_error))
            if len(pending) >= 2 * workers:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    yield fut.result()
        for fut in pending:
            yield fut.result()
