"""Embedding-cache keys, the on-disk format of one entry, and the atomic file write the cache uses.

A key is ``sha256(content hash + identity hash)``; content hashes cover a file's bytes, a text's
UTF-8 bytes or a vector's float32 values.

Entry format (little-endian, 96-byte header): magic ``SCEMB\\x02\\n\\0``, dtype code u8 (0 float32,
1 float16), has-sequence u8, 2 pad bytes, the key (64 ASCII bytes), D u32, T u32, sequence width u32,
CRC32 of header+pooled u32, CRC32 of the sequence u32; then the pooled vector (D values) and the
sequence (T x width values).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

MAGIC = b"SCEMB\x02\n\x00"
_HEADER = struct.Struct("<8sBB2x64sIIIII")
_CRC_AT = _HEADER.size - 8  # the two checksums close the header; the CRC of header+pooled covers what precedes them
_CODES = {"float32": 0, "float16": 1}
_NAMES = {v: k for k, v in _CODES.items()}


class CacheCorruptionWarning(UserWarning):
    """A cache entry or pack failed its checks; it was removed and will be recomputed."""


def hash_identity(identity: dict[str, Any]) -> str:
    """The 16-hex identity hash of an encoder identity dict (the same as ``Encoder.identity_hash``)."""
    blob = json.dumps(identity, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def make_key(content_hash: str, identity_hash: str) -> str:
    """The cache key of one input (its content hash) under one encoder identity."""
    return hashlib.sha256(f"{content_hash}:{identity_hash}".encode()).hexdigest()


def text_hash(text: str) -> str:
    """Content hash of a text input (its UTF-8 bytes)."""
    return hashlib.sha256(b"text\0" + text.encode("utf-8")).hexdigest()


def vector_hash(vector: np.ndarray) -> str:
    """Content hash of a vector input (its float32 values)."""
    arr = np.ascontiguousarray(np.asarray(vector, dtype=np.float32))
    return hashlib.sha256(b"vector\0" + str(arr.shape).encode() + b"\0" + arr.tobytes()).hexdigest()


class CorruptEntry(Exception):
    """An entry file failed a check of :func:`read_entry` (the message says which)."""


def entry_bytes(key: str, pooled: np.ndarray, seq: np.ndarray | None, dtype: str) -> bytes:
    """The whole file of one entry: header with checksums, pooled (D,) and optional sequence (T, W),
    both already contiguous arrays of ``dtype``."""
    t, w = seq.shape if seq is not None else (0, 0)
    pooled_b = pooled.tobytes()
    seq_b = seq.tobytes() if seq is not None else b""
    head = _HEADER.pack(MAGIC, _CODES[dtype], seq is not None, key.encode(), pooled.shape[0], t, w, 0, 0)[:_CRC_AT]
    crcs = struct.pack("<II", zlib.crc32(pooled_b, zlib.crc32(head)), zlib.crc32(seq_b))
    return head + crcs + pooled_b + seq_b


def read_entry(path: str | Path, key: str, sequence: bool) -> tuple[str, np.ndarray, np.ndarray | None]:
    """``(stored dtype, pooled (D,), sequence (T, W) or None)`` of the entry file at ``path``.

    Raises FileNotFoundError when absent and :class:`CorruptEntry` when truncated, padded, of bad
    magic or header, failing a checksum, or naming another key. The sequence is read (and checked)
    only when ``sequence`` is true."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        raw = fh.read(_HEADER.size)
        if len(raw) < _HEADER.size:
            raise CorruptEntry(f"truncated: {size} bytes, shorter than the {_HEADER.size}-byte header")
        magic, code, has_seq, stored_key, d, t, w, crc_hp, crc_s = _HEADER.unpack(raw)
        if magic != MAGIC:
            raise CorruptEntry("not a scorecast cache entry (bad magic bytes)")
        dtype = _NAMES.get(code)
        if dtype is None:
            raise CorruptEntry(f"bad header: unknown dtype code {code}")
        itemsize = 4 if code == 0 else 2
        expected = _HEADER.size + itemsize * (d + t * w)
        if size != expected:
            raise CorruptEntry(f"truncated or padded: {size} bytes, expected {expected}")
        pooled_b = fh.read(itemsize * d)
        if zlib.crc32(pooled_b, zlib.crc32(raw[:_CRC_AT])) != crc_hp:
            raise CorruptEntry("header or pooled vector fails its checksum")
        seq_b = fh.read(itemsize * t * w) if sequence and has_seq else b""
    if seq_b and zlib.crc32(seq_b) != crc_s:
        raise CorruptEntry("sequence fails its checksum")
    if stored_key.decode("ascii", "replace") != key:
        raise CorruptEntry(f"bad header: the entry names key {stored_key[:16]!r}..., expected {key}")
    pooled = np.frombuffer(pooled_b, dtype=dtype)
    seq = np.frombuffer(seq_b, dtype=dtype).reshape(t, w) if sequence and has_seq else None
    return dtype, pooled, seq


def atomic_write(path: Path, data: bytes, fsync: bool = False) -> None:
    """Write ``data`` to a temporary file beside ``path`` and move it into place with ``os.replace``
    (a crash never leaves a partial file under the final name); the temporary file is removed on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
