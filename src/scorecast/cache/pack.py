"""Packs: the pooled vectors of one encoder identity in one memory-mappable (N, D) matrix.

Files in ``<identity_hash>/``: ``pack.json`` (the pointer: tag, rows, dim, dtype) and
``pack-<tag>.npy`` (the matrix), ``pack-<tag>.keys.npy`` (N keys, S64) and ``pack-<tag>.crc.npy``
(N CRC32s, one per row). A new pack is written under a new tag and the pointer moved last, so a
reader sees either the old pack or the new one; packs other than the newest are removed once a
minute old. :class:`scorecast.cache.EmbeddingCache` decides when to pack, open and drop.
"""

from __future__ import annotations

import json
import os
import time
import uuid
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from scorecast.cache.entry import atomic_write

PackView = tuple[dict[str, int], np.ndarray, np.ndarray]
"""(key -> row, the (N, D) matrix as a memory map, the (N,) row checksums)."""


class CorruptPackRow(Exception):
    """A packed row failed its checksum (the message names the row and key)."""


def row_intact(row: np.ndarray, crc: int) -> bool:
    """Whether a packed row still matches its stored CRC32."""
    return zlib.crc32(np.asarray(row).tobytes()) == int(crc)


def write_pack(folder: Path, rows: dict[str, np.ndarray], fsync: bool = False) -> int:
    """Write ``rows`` (key -> pooled (D,), all of one D; not empty) as a new pack of ``folder``,
    point ``pack.json`` at it and remove older packs. Returns the number of rows."""
    store = np.result_type(*{v.dtype for v in rows.values()})
    keys = sorted(rows)
    matrix = np.stack([rows[k].astype(store) for k in keys])
    crcs = np.array([zlib.crc32(row.tobytes()) for row in matrix], dtype=np.uint32)
    tag = uuid.uuid4().hex[:12]
    for suffix, arr in ((".npy", matrix), (".keys.npy", np.array(keys, dtype="S64")), (".crc.npy", crcs)):
        tmp = folder / f".tmp-{tag}{suffix}"
        np.save(tmp, arr)
        os.replace(tmp, folder / f"pack-{tag}{suffix}")
    pointer = {"tag": tag, "rows": len(keys), "dim": int(matrix.shape[1]), "dtype": str(store)}
    atomic_write(folder / "pack.json", json.dumps(pointer).encode(), fsync)
    _remove_old_packs(folder, keep=tag)
    return len(keys)


def load_pack(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(matrix (N, D) memory-mapped, keys (N,) S64, crcs (N,))`` of the pack ``pack.json`` points at.

    Raises FileNotFoundError when a file is missing; ValueError, KeyError, OSError or
    json.JSONDecodeError when the pointer or the arrays are unreadable or disagree in shape."""
    pointer = json.loads((folder / "pack.json").read_text())
    base = folder / f"pack-{pointer['tag']}"
    matrix = np.load(f"{base}.npy", mmap_mode="r")
    keys = np.load(f"{base}.keys.npy")
    crcs = np.load(f"{base}.crc.npy")
    n, d = int(pointer["rows"]), int(pointer["dim"])
    if matrix.shape != (n, d) or keys.shape != (n,) or crcs.shape != (n,):
        raise ValueError(f"expected {n} rows of {d}, got {matrix.shape}, {keys.shape} keys, {crcs.shape} checksums")
    return matrix, keys, crcs


def pack_index(keys: np.ndarray) -> dict[str, int]:
    """key -> row of a pack's keys array."""
    return {k.decode(): i for i, k in enumerate(keys.tolist())}


def read_packed_rows(pack: PackView, keys: Iterable[str]) -> dict[str, np.ndarray]:
    """The packed rows of those ``keys`` the pack holds, read in one gather from the memory map and
    each checked against its CRC32. Raises :class:`CorruptPackRow` at the first row that fails."""
    index, matrix, crcs = pack
    rows = [(k, index[k]) for k in keys if k in index]
    if not rows:
        return {}
    block = np.asarray(matrix[np.array([r for _, r in rows])])
    found = {}
    for (k, r), vec in zip(rows, block):
        if zlib.crc32(vec.tobytes()) != int(crcs[r]):
            raise CorruptPackRow(f"row {r} (key {k}) fails its checksum")
        found[k] = vec
    return found


def _remove_old_packs(folder: Path, keep: str) -> None:
    now = time.time()
    for p in folder.glob("pack-*.npy"):
        if not p.name.startswith(f"pack-{keep}.") and now - p.stat().st_mtime > 60:
            p.unlink(missing_ok=True)
