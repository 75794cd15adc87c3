"""``MemoryCache``: the :class:`~scorecast.cache.protocol.Cache` protocol over a bounded in-memory LRU
(no folder, nothing on disk)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from scorecast.cache.store import hash_identity
from scorecast.data.features import Encoded

__all__ = ["MemoryCache"]


class MemoryCache:
    """A :class:`~scorecast.cache.protocol.Cache` that keeps entries in memory (LRU, bounded in bytes)
    and writes nothing to disk: the server's default, so uploads never pile up on disk. It has no
    folder to inspect, verify, pack or prune (``root`` is None)."""

    root = None

    def __init__(self, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.dtype = "float32"
        self.max_bytes = int(max_bytes)
        self._entries: OrderedDict[tuple[str, str], Encoded] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryCache({len(self._entries)} entries, {self._bytes} bytes)"

    def register(self, identity: dict[str, Any], encoder: str | None = None) -> str:
        return hash_identity(identity)

    def contains(self, identity_hash: str, key: str) -> bool:
        return (identity_hash, key) in self._entries

    def put(self, identity_hash: str, key: str, encoded: Encoded) -> None:
        pooled = np.array(encoded.pooled, dtype=np.float32)
        seq = np.array(encoded.sequence, dtype=np.float32) if encoded.sequence is not None else None
        size = pooled.nbytes + (seq.nbytes if seq is not None else 0)
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop((identity_hash, key), None)
            if old is not None:
                self._bytes -= _nbytes(old)
            self._entries[(identity_hash, key)] = Encoded(pooled, seq)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= _nbytes(dropped)

    def get(self, identity_hash: str, key: str, sequence: bool = True) -> Encoded | None:
        with self._lock:
            hit = self._entries.get((identity_hash, key))
            if hit is not None:
                self._entries.move_to_end((identity_hash, key))
        if hit is None:
            return None
        return Encoded(hit.pooled.copy(), hit.sequence.copy() if sequence and hit.sequence is not None else None)

    def get_many(self, identity_hash: str, keys, sequence: bool = False) -> dict[str, Encoded]:
        found = {}
        for k in dict.fromkeys(keys):
            hit = self.get(identity_hash, k, sequence=sequence)
            if hit is not None:
                found[k] = hit
        return found


def _nbytes(e: Encoded) -> int:
    return e.pooled.nbytes + (e.sequence.nbytes if e.sequence is not None else 0)
