"""The micro-batcher: batches form, results go back to the right caller, one bad item fails alone."""

from __future__ import annotations

import asyncio
import threading

import pytest

from scorecast.errors import ConfigError
from scorecast.serve.microbatch import MicroBatcher


def _run(coro):
    return asyncio.run(coro)


def test_concurrent_requests_are_batched_and_results_go_to_their_callers():
    calls: list[list[int]] = []

    def double(xs):
        calls.append(list(xs))
        return [x * 2 for x in xs]

    async def main():
        b = MicroBatcher(double, max_batch=4, wait_ms=200)
        await b.start()
        try:
            return await asyncio.gather(*(b.submit(i) for i in range(10))), b.stats
        finally:
            await b.stop()

    results, stats = _run(main())
    assert results == [i * 2 for i in range(10)]
    assert [len(c) for c in calls] == [4, 4, 2]
    assert sorted(x for c in calls for x in c) == list(range(10))
    assert stats.batches == 3 and stats.items == 10 and stats.largest == 4


def test_max_batch_one_calls_once_per_item():
    calls: list[list[int]] = []

    def ident(xs):
        calls.append(list(xs))
        return list(xs)

    async def main():
        b = MicroBatcher(ident, max_batch=1, wait_ms=50)
        await b.start()
        try:
            return await asyncio.gather(*(b.submit(i) for i in range(5)))
        finally:
            await b.stop()

    assert _run(main()) == list(range(5))
    assert [len(c) for c in calls] == [1] * 5


def test_a_failing_item_fails_only_its_own_request():
    def checked(xs):
        if any(x < 0 for x in xs):
            raise ValueError(f"negative input in {xs}")
        return [x + 1 for x in xs]

    async def main():
        b = MicroBatcher(checked, max_batch=8, wait_ms=100)
        await b.start()
        try:
            return await asyncio.gather(*(b.submit(x) for x in [1, -1, 2]), return_exceptions=True), b.stats
        finally:
            await b.stop()

    (a, bad, c), stats = _run(main())
    assert a == 2 and c == 3
    assert isinstance(bad, ValueError) and "negative" in str(bad)
    assert stats.retried_alone == 3


def test_wrong_number_of_results_is_an_error_for_the_caller():
    async def main():
        b = MicroBatcher(lambda xs: [], max_batch=2, wait_ms=0)
        await b.start()
        try:
            with pytest.raises(RuntimeError, match="expected 1 results"):
                await b.submit(1)
        finally:
            await b.stop()

    _run(main())


def test_a_caller_that_timed_out_is_dropped_and_the_worker_keeps_going():
    gate = threading.Event()
    seen: list[list[int]] = []

    def slow(xs):
        seen.append(list(xs))
        gate.wait(5)
        return list(xs)

    async def main():
        b = MicroBatcher(slow, max_batch=1, wait_ms=0)
        await b.start()
        try:
            first = asyncio.ensure_future(b.submit(1))  # occupies the worker thread
            await asyncio.sleep(0.05)
            with pytest.raises((asyncio.TimeoutError, TimeoutError)):
                await asyncio.wait_for(b.submit(2), timeout=0.05)  # gives up while queued
            gate.set()
            assert await first == 1
            assert await b.submit(3) == 3
            return b.stats
        finally:
            await b.stop()

    stats = _run(main())
    assert seen == [[1], [3]]
    assert stats.dropped == 1


def test_submit_before_start_and_bad_settings_are_refused():
    b = MicroBatcher(lambda xs: xs)
    with pytest.raises(RuntimeError, match="not running"):
        _run(b.submit(1))
    with pytest.raises(ConfigError, match="max_batch: expected an integer >= 1, got 0"):
        MicroBatcher(lambda xs: xs, max_batch=0)
