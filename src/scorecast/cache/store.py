"""The content-addressed embedding cache: every (input, encoder) pair is encoded once.

Layout under the cache root (``$SCORECAST_CACHE`` or ``~/.cache/scorecast`` by default)::

    <identity_hash>/identity.json        the encoder's identity dict (what the hash stands for)
    <identity_hash>/last_used            touched on every run that uses the identity (for prune)
    <identity_hash>/<key[:2]>/<key>.emb  one entry: pooled (D,) and optional sequence (T, D)
    <identity_hash>/pack.json            optional: a packed (N, D) matrix of pooled vectors, read by
    <identity_hash>/pack-<id>.npy/.keys.npy/.crc.npy      memory map for fast bulk reads

A key is ``sha256(content hash + identity hash)``, so the same file in two data sets is encoded once.
Entries are written to a temporary file in the same folder and moved into place with
``os.replace``: a crash never leaves a partial entry under its final name, and several processes may
write at once (two writers of one key write the same bytes). Each entry holds its lengths and CRC32
checksums; a truncated or corrupted entry is detected on read, warned about, deleted and reported as
a miss, so it gets recomputed; it is never returned as data.

The entry format lives in :mod:`scorecast.cache.entry`, the packs in :mod:`scorecast.cache.pack`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scorecast.cache.entry import (
    MAGIC,
    CacheCorruptionWarning,
    CorruptEntry,
    atomic_write,
    entry_bytes,
    hash_identity,
    make_key,
    read_entry,
    text_hash,
    vector_hash,
)
from scorecast.cache.pack import (
    CorruptPackRow,
    PackView,
    load_pack,
    pack_index,
    read_packed_rows,
    row_intact,
    write_pack,
)
from scorecast.data.features import Encoded
from scorecast.errors import CacheError

__all__ = [  # the key helpers and the warning live in cache_entry; re-exported here, where callers import them
    "MAGIC",
    "CacheCorruptionWarning",
    "EmbeddingCache",
    "IdentityInfo",
    "VerifyReport",
    "default_cache_dir",
    "hash_identity",
    "make_key",
    "text_hash",
    "vector_hash",
]

_IDENTITY_DIR = re.compile(r"^[0-9a-f]{16}$")
_KEY = re.compile(r"^[0-9a-f]{64}$")
_STALE_TMP_S = 3600.0
_DTYPES = ("float32", "float16")


def default_cache_dir() -> Path:
    """``$SCORECAST_CACHE`` or ``~/.cache/scorecast``."""
    env = os.environ.get("SCORECAST_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "scorecast"


@dataclass
class IdentityInfo:
    """What the cache holds for one encoder identity."""

    identity_hash: str
    identity: dict[str, Any] | None
    encoder: str | None
    entries: int
    bytes: int
    packed_rows: int
    last_used: float | None
    tmp_files: int = 0


@dataclass
class VerifyReport:
    checked: int = 0
    corrupt: list[str] = field(default_factory=list)
    bad_packs: list[str] = field(default_factory=list)
    removed_tmp: int = 0


class EmbeddingCache:
    """Content-addressed store of encoder outputs (see the module docstring for the layout).

    ``dtype="float16"`` halves the storage; reads always return float32. A float32 cache treats a
    float16 entry as a miss (it is recomputed at full precision and overwritten).
    """

    def __init__(self, root: str | os.PathLike | None = None, dtype: str = "float32", fsync: bool = False) -> None:
        if dtype not in _DTYPES:
            raise CacheError(f"cache dtype: expected one of {', '.join(_DTYPES)}, got {dtype!r}")
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self._root_str = str(self.root)
        self.dtype = dtype
        self.fsync = fsync
        self._packs: dict[str, tuple[float, dict[str, int], np.ndarray, np.ndarray] | None] = {}
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheError(f"cannot create the cache folder {self.root}: {exc}") from exc

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.root)!r}, dtype={self.dtype!r})"

    # ---------------------------------------------------------------- identities

    def register(self, identity: dict[str, Any], encoder: str | None = None) -> str:
        """Record an encoder identity (once) and mark it used now; returns its hash."""
        ih = hash_identity(identity)
        folder = self.root / ih
        folder.mkdir(parents=True, exist_ok=True)
        meta = folder / "identity.json"
        if not meta.exists():
            blob = json.dumps({"identity": identity, "encoder": encoder, "created": time.time()}, indent=2, default=str)
            self._atomic_write(meta, blob.encode())
        (folder / "last_used").touch()
        return ih

    def identities(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _IDENTITY_DIR.match(p.name))

    def identity_of(self, identity_hash: str) -> dict[str, Any] | None:
        """The recorded ``{"identity", "encoder", "created"}`` record of a hash, or None."""
        meta = self.root / identity_hash / "identity.json"
        try:
            return json.loads(meta.read_text())
        except (OSError, json.JSONDecodeError):
            return None

    # ---------------------------------------------------------------- entries

    def entry_path(self, identity_hash: str, key: str) -> Path:
        return Path(self._entry_file(identity_hash, key))

    def _entry_file(self, identity_hash: str, key: str) -> str:
        return os.path.join(self._root_str, identity_hash, key[:2], key + ".emb")

    def contains(self, identity_hash: str, key: str) -> bool:
        """Whether an entry file exists (not checked; :meth:`get` checks)."""
        return os.path.isfile(self._entry_file(identity_hash, key))

    def put(self, identity_hash: str, key: str, encoded: Encoded) -> None:
        """Write one entry atomically, in the cache's dtype."""
        if not _KEY.match(key):
            raise CacheError(f"cache key: expected 64 hex characters, got {key!r}")
        pooled = np.ascontiguousarray(np.asarray(encoded.pooled), dtype=self.dtype)
        if pooled.ndim != 1:
            raise CacheError(f"cache entry {key}: expected a pooled vector of shape (D,), got {pooled.shape}")
        seq = None
        if encoded.sequence is not None:
            seq = np.ascontiguousarray(np.asarray(encoded.sequence), dtype=self.dtype)
            if seq.ndim != 2:
                raise CacheError(f"cache entry {key}: expected a sequence of shape (T, D), got {seq.shape}")
        self._atomic_write(self.entry_path(identity_hash, key), entry_bytes(key, pooled, seq, self.dtype))

    def get(self, identity_hash: str, key: str, sequence: bool = True) -> Encoded | None:
        """One entry as float32, or None when absent, stored at lower precision than asked, or corrupt
        (a corrupt entry is deleted with a :class:`CacheCorruptionWarning`)."""
        path = self._entry_file(identity_hash, key)
        try:
            dtype, pooled, seq = read_entry(path, key, sequence)
        except FileNotFoundError:
            return None
        except CorruptEntry as exc:
            self._discard(path, str(exc))
            return None
        if not self._acceptable(dtype):
            return None
        return Encoded(pooled.astype(np.float32), seq.astype(np.float32) if seq is not None else None)

    def get_many(self, identity_hash: str, keys: Iterable[str], sequence: bool = False) -> dict[str, Encoded]:
        """The entries present among ``keys`` (pooled from the pack where possible, by memory map)."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, Encoded] = {}
        pack = None if sequence else self._open_pack(identity_hash)
        if pack is not None:
            try:
                found = {k: Encoded(vec.astype(np.float32)) for k, vec in read_packed_rows(pack, keys).items()}
            except CorruptPackRow as exc:
                self._drop_pack(identity_hash, str(exc))
        for k in keys:
            if k not in found:
                enc = self.get(identity_hash, k, sequence=sequence)
                if enc is not None:
                    found[k] = enc
        return found

    def iter_keys(self, identity_hash: str) -> Iterator[str]:
        folder = self.root / identity_hash
        if not folder.is_dir():
            return
        for shard in sorted(os.scandir(folder), key=lambda e: e.name):
            if shard.is_dir() and len(shard.name) == 2:
                for entry in os.scandir(shard.path):
                    if entry.name.endswith(".emb") and not entry.name.startswith("."):
                        yield entry.name[:-4]

    # ---------------------------------------------------------------- packing

    def pack(self, identity_hash: str) -> int:
        """Write the pooled vectors of every entry of an identity into one memory-mappable matrix
        (rows already packed are reused). Returns the number of rows; 0 when there are no entries."""
        old = self._open_pack(identity_hash)
        rows: dict[str, np.ndarray] = {}
        for key in self.iter_keys(identity_hash):
            if old is not None and key in old[0]:
                r = old[0][key]
                vec = np.asarray(old[1][r])
                if row_intact(vec, old[2][r]):
                    rows[key] = vec
                    continue
            path = self.entry_path(identity_hash, key)
            try:
                _, pooled, _ = read_entry(path, key, sequence=False)
            except FileNotFoundError:
                continue
            except CorruptEntry as exc:
                self._discard(path, str(exc))
                continue
            rows[key] = pooled
        if not rows:
            return 0
        dims = {v.shape[0] for v in rows.values()}
        if len(dims) != 1:
            warnings.warn(
                f"cache identity {identity_hash}: entries have different sizes {sorted(dims)}; not packed", stacklevel=2
            )
            return 0
        n = write_pack(self.root / identity_hash, rows, self.fsync)
        self._packs.pop(identity_hash, None)
        return n

    def _open_pack(self, identity_hash: str) -> PackView | None:
        pointer_path = self.root / identity_hash / "pack.json"
        try:
            mtime = pointer_path.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        cached = self._packs.get(identity_hash)
        if cached is not None and cached[0] == mtime:
            return cached[1], cached[2], cached[3]
        try:
            matrix, keys, crcs = load_pack(self.root / identity_hash)
            if not self._acceptable(str(matrix.dtype)):
                return None
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, OSError, json.JSONDecodeError) as exc:
            self._drop_pack(identity_hash, str(exc))
            return None
        index = pack_index(keys)
        self._packs[identity_hash] = (mtime, index, matrix, crcs)
        return index, matrix, crcs

    def _drop_pack(self, identity_hash: str, reason: str) -> None:
        warnings.warn(
            f"embedding cache: the pack of identity {identity_hash} is corrupt ({reason}); removed it, entries are read one by one",
            CacheCorruptionWarning,
            stacklevel=3,
        )
        self._packs.pop(identity_hash, None)
        try:
            os.remove(self.root / identity_hash / "pack.json")
        except FileNotFoundError:
            pass

    # ---------------------------------------------------------------- maintenance

    def info(self) -> list[IdentityInfo]:
        out = []
        for ih in self.identities():
            folder = self.root / ih
            entries = total = tmp = 0
            for dirpath, _, files in os.walk(folder):
                for name in files:
                    size = os.path.getsize(os.path.join(dirpath, name))
                    total += size
                    if name.startswith(".tmp-"):
                        tmp += 1
                    elif name.endswith(".emb"):
                        entries += 1
            record = self.identity_of(ih) or {}
            pack = self._open_pack(ih)
            last = folder / "last_used"
            used = last.stat().st_mtime if last.exists() else None
            rows = len(pack[0]) if pack is not None else 0
            out.append(IdentityInfo(ih, record.get("identity"), record.get("encoder"), entries, total, rows, used, tmp))
        return out

    def verify(self, remove: bool = True) -> VerifyReport:
        """Read every entry and pack row; report (and by default remove) the corrupt ones and stale temp files."""
        report = VerifyReport()
        now = time.time()
        for ih in self.identities():
            folder = self.root / ih
            for dirpath, _, files in os.walk(folder):
                for name in files:
                    path = Path(dirpath) / name
                    if name.startswith(".tmp-"):
                        if now - path.stat().st_mtime > _STALE_TMP_S:
                            report.removed_tmp += 1
                            if remove:
                                path.unlink(missing_ok=True)
                        continue
                    if not name.endswith(".emb"):
                        continue
                    report.checked += 1
                    try:
                        read_entry(path, name[:-4], sequence=True)
                    except FileNotFoundError:
                        continue
                    except CorruptEntry as exc:
                        report.corrupt.append(f"{path}: {exc}")
                        if remove:
                            path.unlink(missing_ok=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CacheCorruptionWarning)
                had_pointer = (folder / "pack.json").exists()
                pack = self._open_pack(ih)  # an unreadable pack is dropped here
            if had_pointer and pack is None and not (folder / "pack.json").exists():
                report.bad_packs.append(f"{ih}: unreadable pack (removed)")
            elif pack is not None:
                bad = sum(not row_intact(row, crc) for row, crc in zip(pack[1], pack[2]))
                if bad:
                    report.bad_packs.append(f"{ih}: {bad} of {len(pack[2])} packed rows fail their checksums")
                    if remove:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore", CacheCorruptionWarning)
                            self._drop_pack(ih, "rows fail their checksums")
        return report

    def prune(
        self,
        keep: Iterable[str] | None = None,
        older_than_days: float | None = None,
        encoder: str | None = None,
        dry_run: bool = False,
    ) -> list[IdentityInfo]:
        """Remove whole identities matching every criterion given: not in ``keep`` (hashes), not used
        for ``older_than_days``, or recorded under encoder name ``encoder``. Returns what was (or would be) removed."""
        if keep is None and older_than_days is None and encoder is None:
            raise CacheError("cache prune: expected at least one of keep, older_than_days or encoder; got none")
        keep_set = set(keep) if keep is not None else None
        cutoff = time.time() - older_than_days * 86400.0 if older_than_days is not None else None
        removed = []
        for info in self.info():
            if keep_set is not None and info.identity_hash in keep_set:
                continue
            if cutoff is not None and info.last_used is not None and info.last_used >= cutoff:
                continue
            if encoder is not None and info.encoder != encoder and (info.identity or {}).get("name") != encoder:
                continue
            removed.append(info)
            if not dry_run:
                shutil.rmtree(self.root / info.identity_hash, ignore_errors=True)
                self._packs.pop(info.identity_hash, None)
        return removed

    # ---------------------------------------------------------------- internals

    def _acceptable(self, stored_dtype: str) -> bool:
        return self.dtype == "float16" or stored_dtype == "float32"

    def _discard(self, path: str | Path, reason: str) -> None:
        warnings.warn(
            f"embedding cache: corrupt entry {path} ({reason}); deleted it, it will be recomputed",
            CacheCorruptionWarning,
            stacklevel=3,
        )
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    def _atomic_write(self, path: Path, data: bytes) -> None:
        atomic_write(path, data, self.fsync)
