"""Micro-batching for the HTTP server: many concurrent requests, one batched predict call.

    batcher = MicroBatcher(predict_many, max_batch=32, wait_ms=10)
    await batcher.start()
    result = await batcher.submit(item)        # from any number of concurrent requests
    await batcher.stop()

A single worker task takes the first waiting request, then keeps collecting until ``max_batch``
requests are in hand or ``wait_ms`` milliseconds have passed since the first one, and runs
``predict_many(list_of_items) -> list_of_results`` once in a worker thread (one thread: the model
is never called concurrently). Each request's future is resolved with its own result.

Failure isolation: if the batched call raises, the items are retried one by one so that one bad
item fails only its own request. A request whose caller has gone (cancelled, timed out) before its
batch starts is dropped from the batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from scorecast.errors import ConfigError

In = TypeVar("In")
Out = TypeVar("Out")

log = logging.getLogger("scorecast.serve.microbatch")


@dataclass
class BatchStats:
    """Counters for /model and the benchmarks: how many calls, how many items, the largest batch."""

    batches: int = 0
    items: int = 0
    largest: int = 0
    retried_alone: int = 0
    dropped: int = 0
    sizes: dict[int, int] = field(default_factory=dict)

    def record(self, size: int) -> None:
        self.batches += 1
        self.items += size
        self.largest = max(self.largest, size)
        self.sizes[size] = self.sizes.get(size, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        mean = self.items / self.batches if self.batches else 0.0
        return {
            "batches": self.batches,
            "items": self.items,
            "mean_batch": round(mean, 3),
            "largest_batch": self.largest,
            "retried_alone": self.retried_alone,
            "dropped": self.dropped,
        }


#: serve's defaults: the most items in one call, and how long the first request of a batch waits for company
DEFAULT_MAX_BATCH = 32
DEFAULT_WAIT_MS = 10.0


class MicroBatcher(Generic[In, Out]):
    """Collects concurrent :meth:`submit` calls into batches for ``fn`` (see the module docstring).

    ``fn(items) -> results`` must return one result per item, in order. ``max_batch=1`` turns
    batching off (each request is its own call), which the benchmarks use as the baseline.
    """

    def __init__(
        self,
        fn: Callable[[list[In]], Sequence[Out]],
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        wait_ms: float = DEFAULT_WAIT_MS,
        name: str = "predict",
    ) -> None:
        if max_batch < 1:
            raise ConfigError(f"max_batch: expected an integer >= 1, got {max_batch}")
        if wait_ms < 0:
            raise ConfigError(f"batch wait: expected milliseconds >= 0, got {wait_ms}")
        self.fn = fn
        self.max_batch = int(max_batch)
        self.wait_s = float(wait_ms) / 1000.0
        self.name = name
        self.stats = BatchStats()
        self._queue: asyncio.Queue[tuple[In, asyncio.Future[Out]]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def running(self) -> bool:
        return self._worker is not None and not self._worker.done()

    async def start(self) -> None:
        """Start the worker task (call from inside the running event loop)."""
        if self.running:
            return
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"scorecast-{self.name}")
        self._worker = asyncio.get_running_loop().create_task(self._run(), name=f"microbatch-{self.name}")

    async def stop(self) -> None:
        """Stop the worker; requests still waiting get a RuntimeError."""
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None
        if self._queue is not None:
            while not self._queue.empty():
                _, fut = self._queue.get_nowait()
                if not fut.done():
                    fut.set_exception(RuntimeError("the server is shutting down"))
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def submit(self, item: In) -> Out:
        """Queue one item and wait for its result (raises what ``fn`` raised for this item)."""
        if not self.running or self._queue is None:
            raise RuntimeError("the micro-batcher is not running; call start() inside the event loop first")
        fut: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        await self._queue.put((item, fut))
        return await fut

    async def _collect(self) -> list[tuple[In, asyncio.Future[Out]]]:
        assert self._queue is not None
        batch = [await self._queue.get()]
        deadline = time.monotonic() + self.wait_s
        while len(batch) < self.max_batch:
            # Take whatever is already queued without waiting, then wait for more until the deadline.
            try:
                batch.append(self._queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), timeout=remaining))
            except TimeoutError:
                break
        return batch

    async def _run(self) -> None:
        while True:
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a bug here must not stop the server from answering
                log.exception("micro-batcher %s: unexpected error; carrying on", self.name)

    async def _step(self) -> None:
        """Collect one batch, score it, resolve its futures."""
        loop = asyncio.get_running_loop()
        batch = await self._collect()
        live = [(item, fut) for item, fut in batch if not fut.done()]
        self.stats.dropped += len(batch) - len(live)
        if not live:
            return
        items = [item for item, _ in live]
        self.stats.record(len(items))
        try:
            results = await loop.run_in_executor(self._executor, self._call, items)
        except asyncio.CancelledError:
            for _, fut in live:
                if not fut.done():
                    fut.set_exception(RuntimeError("the server is shutting down"))
            raise
        except Exception as exc:  # noqa: BLE001 - isolate the failing item, below
            if len(items) == 1:
                _resolve(live[0][1], exc=exc)
                return
            log.info("batch of %d failed (%s); retrying items one by one", len(items), exc)
            self.stats.retried_alone += len(items)
            for item, fut in live:
                if fut.done():
                    continue
                try:
                    (result,) = await loop.run_in_executor(self._executor, self._call, [item])
                except asyncio.CancelledError:
                    raise
                except Exception as one_exc:  # noqa: BLE001 - handed to the caller's future
                    _resolve(fut, exc=one_exc)
                else:
                    _resolve(fut, result=result)
            return
        for (_, fut), result in zip(live, results, strict=True):
            _resolve(fut, result=result)

    def _call(self, items: list[In]) -> list[Out]:
        results = list(self.fn(items))
        if len(results) != len(items):
            raise RuntimeError(f"{self.name}: expected {len(items)} results from the batched call, got {len(results)}")
        return results


def _resolve(fut: asyncio.Future[Any], *, result: Any = None, exc: BaseException | None = None) -> None:
    if fut.done():  # the caller timed out or went away
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)
