"""Process-level encoder sharing and the extraction defaults that fit the machine.

* :func:`shared_instance`: one encoder instance (one model in memory) per distinct configuration in
  a process; the pipeline's ``build_encoder`` keys it by the encoder name and constructor params, so
  the ``s1``/``s2`` specs of a sentence pair, or a ``train`` then its ``predict`` in one process,
  load MiniLM once. Encoders are frozen, so sharing is safe; the last :data:`SHARED_ENCODERS_MAX`
  configurations are kept.
* :func:`default_workers`: a worker process per core for per-clip CPU extractors.
* :func:`default_batch_size`: the encoder's own batch size where it has one.
"""

from __future__ import annotations

import inspect
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

SHARED_ENCODERS_MAX = 8
_SHARED: dict[str, Any] = {}
_LOCK = threading.Lock()


def shared_instance(key: str, factory: Callable[[], T]) -> T:
    """The instance kept under ``key``, made by ``factory()`` on first use (most recently used kept)."""
    with _LOCK:
        found = _SHARED.pop(key, None)
        if found is None:
            found = factory()
        _SHARED[key] = found
        while len(_SHARED) > SHARED_ENCODERS_MAX:
            _SHARED.pop(next(iter(_SHARED)))
    return found


def clear_shared_encoders() -> None:
    """Forget the process's shared encoder instances (their models are freed when no one holds them)."""
    with _LOCK:
        _SHARED.clear()


def shared_count() -> int:
    """How many encoder instances the process keeps for sharing."""
    return len(_SHARED)


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_workers(encoder_class: Any, n_inputs: int) -> int:
    """Worker processes when none are given: one per core (at most one per input) for a
    ``parallel_safe`` encoder (per-clip CPU extractors: egemaps, dnsmos, music) with at least two
    inputs on a machine with more than one core; 0 (encode in this process) otherwise."""
    if not getattr(encoder_class, "parallel_safe", False):
        return 0
    cores = usable_cores()
    return min(cores, n_inputs) if cores > 1 and n_inputs >= 2 else 0


def default_batch_size(encoder_class: Any, params: dict[str, Any]) -> int:
    """Inputs per batch when none is given: the spec's ``batch_size`` param, else the encoder class's
    own default ``batch_size`` (64 for ``sentence``, the size its forward passes are made for), else 16."""
    value = params.get("batch_size")
    if value is None:
        try:
            value = inspect.signature(encoder_class).parameters["batch_size"].default
        except (KeyError, TypeError, ValueError):
            value = None
    return int(value) if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else 16
