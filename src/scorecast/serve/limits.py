"""The server's limits (:class:`Limits`), and the bound on what it holds in memory for all requests in
flight together (:class:`MemoryBudget`).

Each request reserves, before it reads or decodes anything, the bytes it is about to hold: its body
(from Content-Length, or the upload limit when the length is not declared) and each clip's decoded
samples (from the audio header, before decoding). The reservations of all requests in flight share
one budget (``--max-inflight-mb``); a request that does not fit waits up to ``wait_s`` for others
to finish, then is answered 503 with ``Retry-After``. A request that alone needs more than the whole
budget is answered 413. Everything a request reserved is released when its answer is sent.

    budget = MemoryBudget(256 * 2**20, wait_s=2.0)
    async with budget.holding() as hold:
        await hold.add(len(body), "the request body")
        ...
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import HTTPException
from pydantic import BaseModel

from scorecast.errors import ConfigError

MiB = 1024 * 1024


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


@dataclass
class BudgetStats:
    """Counters for /model and the benchmark: bytes held now, the most held at once, refusals."""

    used: int = 0
    peak: int = 0
    refused_busy: int = 0
    refused_too_large: int = 0

    def as_dict(self, limit: int) -> dict[str, float]:
        return {
            "limit_mb": round(limit / MiB, 3),
            "used_mb": round(self.used / MiB, 3),
            "peak_mb": round(self.peak / MiB, 3),
            "refused_busy": self.refused_busy,
            "refused_too_large": self.refused_too_large,
        }


class MemoryBudget:
    """A byte budget shared by the requests in flight (see the module docstring)."""

    def __init__(self, limit_bytes: int, wait_s: float = 2.0, retry_after_s: float = 1.0) -> None:
        if limit_bytes <= 0:
            raise ConfigError(f"max_inflight_mb: expected a positive size, got {limit_bytes / MiB:g} MiB")
        if wait_s < 0:
            raise ConfigError(f"queue wait: expected seconds >= 0, got {wait_s}")
        self.limit = int(limit_bytes)
        self.wait_s = float(wait_s)
        self.retry_after_s = float(retry_after_s)
        self.stats = BudgetStats()
        self._cond: asyncio.Condition | None = None

    def bind_to_running_loop(self) -> None:
        """A fresh condition for the loop now running (an app may be served by one loop after another)."""
        self._cond = asyncio.Condition()

    def _condition(self) -> asyncio.Condition:
        if self._cond is None:
            self._cond = asyncio.Condition()
        return self._cond

    async def acquire(self, n: int, what: str) -> None:
        """Reserve ``n`` bytes, waiting up to ``wait_s``; 413 if ``n`` exceeds the budget, 503 if busy."""
        n = max(int(n), 0)
        if n > self.limit:
            self.stats.refused_too_large += 1
            raise HTTPException(
                413,
                f"{what} needs {n / MiB:.2f} MiB, more than the {self.limit / MiB:g} MiB the server holds "
                "for all requests together; send less audio (shorter, fewer channels or a lower rate)",
            )
        cond = self._condition()
        async with cond:
            try:
                await asyncio.wait_for(cond.wait_for(lambda: self.stats.used + n <= self.limit), self.wait_s)
            except TimeoutError:
                self.stats.refused_busy += 1
                raise HTTPException(
                    503,
                    f"the server is busy: requests in flight hold {self.stats.used / MiB:.1f} of "
                    f"{self.limit / MiB:g} MiB and {what} needs {n / MiB:.1f} MiB more; retry shortly",
                    headers={"Retry-After": str(max(1, math.ceil(self.retry_after_s)))},
                ) from None
            self.stats.used += n
            self.stats.peak = max(self.stats.peak, self.stats.used)

    async def release(self, n: int) -> None:
        if n <= 0:
            return
        cond = self._condition()
        async with cond:
            self.stats.used = max(self.stats.used - int(n), 0)
            cond.notify_all()

    @asynccontextmanager
    async def holding(self) -> AsyncIterator[Hold]:
        """A request's reservations, all released when the block ends (however it ends)."""
        hold = Hold(self)
        try:
            yield hold
        finally:
            await asyncio.shield(self.release(hold.total))


class Hold:
    """The bytes one request has reserved so far."""

    def __init__(self, budget: MemoryBudget) -> None:
        self.budget = budget
        self.total = 0

    async def add(self, n: int, what: str) -> None:
        if self.total + n > self.budget.limit:
            self.budget.stats.refused_too_large += 1
            raise HTTPException(
                413,
                f"this request needs {(self.total + n) / MiB:.2f} MiB with {what}, more than the "
                f"{self.budget.limit / MiB:g} MiB the server holds for all requests together; send less audio "
                "(shorter, fewer channels or a lower rate)",
            )
        await self.budget.acquire(n, what)
        self.total += max(int(n), 0)
