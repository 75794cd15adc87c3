"""What the encoder pipeline needs of an embedding cache: the :class:`Cache` protocol.

Two stores implement it: :class:`~scorecast.cache.store.EmbeddingCache` (content-addressed files on
disk, with packs, verification and pruning) and :class:`~scorecast.cache.memory.MemoryCache` (a
bounded in-memory LRU for the server). Code that encodes takes a ``Cache``; code that manages a
folder (``scorecast cache info|verify|pack|prune``) takes an ``EmbeddingCache``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from scorecast.data.features import Encoded


@runtime_checkable
class Cache(Protocol):
    """An embedding store keyed by (identity hash, content key).

    ``root`` is the folder on disk, or None for a store that keeps nothing on disk (ASR transcripts
    and augmented audio then need a folder of their own).
    """

    root: Path | None

    def register(self, identity: dict[str, Any], encoder: str | None = None) -> str:
        """Record an encoder identity; returns its hash (the namespace of its entries)."""
        ...

    def contains(self, identity_hash: str, key: str) -> bool: ...

    def put(self, identity_hash: str, key: str, encoded: Encoded) -> None: ...

    def get(self, identity_hash: str, key: str, sequence: bool = True) -> Encoded | None:
        """The entry, or None when absent (a corrupt entry counts as absent)."""
        ...

    def get_many(self, identity_hash: str, keys: Iterable[str], sequence: bool = False) -> dict[str, Encoded]:
        """{key: entry} for the keys present."""
        ...
