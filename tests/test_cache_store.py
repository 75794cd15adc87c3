"""EmbeddingCache: round trips, float16, corruption detection, packs, verify/prune/info."""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
import pytest

from scorecast.cache.store import (
    CacheCorruptionWarning,
    EmbeddingCache,
    default_cache_dir,
    hash_identity,
    make_key,
    text_hash,
)
from scorecast.encoders.base import Encoded, Encoder
from scorecast.errors import CacheError

IDENT = {"name": "unit", "dim": 6}


def vec(i: int, d: int = 6) -> np.ndarray:
    return np.random.default_rng(i).standard_normal(d).astype(np.float32)


def fill(cache: EmbeddingCache, n: int, seq: bool = False) -> tuple[str, list[str]]:
    ih = cache.register(IDENT, encoder="unit")
    keys = [make_key(text_hash(f"t{i}"), ih) for i in range(n)]
    for i, k in enumerate(keys):
        cache.put(ih, k, Encoded(vec(i), np.stack([vec(i), vec(i + 100)]) if seq else None))
    return ih, keys


def test_round_trip_is_bit_exact_with_sequences(tmp_path):
    cache = EmbeddingCache(tmp_path)
    ih, keys = fill(cache, 3, seq=True)
    got = cache.get(ih, keys[1])
    np.testing.assert_array_equal(got.pooled, vec(1))
    np.testing.assert_array_equal(got.sequence, np.stack([vec(1), vec(101)]))
    assert got.pooled.dtype == np.float32
    assert cache.get(ih, keys[1], sequence=False).sequence is None
    assert cache.get(ih, "0" * 64) is None
    assert not list(tmp_path.rglob(".tmp-*")), "temporary files left behind"


def test_identity_hash_matches_encoder_identity_hash():
    class Unit(Encoder):
        def identity(self):
            return dict(IDENT)

    assert hash_identity(IDENT) == Unit().identity_hash


def test_float16_round_trip_within_tolerance_and_float32_cache_treats_it_as_miss(tmp_path):
    half = EmbeddingCache(tmp_path, dtype="float16")
    ih, keys = fill(half, 4, seq=True)
    got = half.get(ih, keys[2])
    assert got.pooled.dtype == np.float32
    np.testing.assert_allclose(got.pooled, vec(2), rtol=1e-3, atol=1e-3)
    assert not np.array_equal(got.pooled, vec(2))  # really stored at half precision
    full = EmbeddingCache(tmp_path, dtype="float32")
    assert full.get(ih, keys[2]) is None
    assert half.pack(ih) == 4
    np.testing.assert_allclose(half.get_many(ih, keys)[keys[0]].pooled, vec(0), atol=1e-3)
    assert full.get_many(ih, keys) == {}


def test_float16_halves_entry_size(tmp_path):
    ih32, k32 = fill(EmbeddingCache(tmp_path / "a"), 1, seq=True)
    ih16, k16 = fill(EmbeddingCache(tmp_path / "b", dtype="float16"), 1, seq=True)
    s32 = os.path.getsize(EmbeddingCache(tmp_path / "a").entry_path(ih32, k32[0]))
    s16 = os.path.getsize(EmbeddingCache(tmp_path / "b").entry_path(ih16, k16[0]))
    assert s16 < s32 and (s32 - s16) == 3 * 6 * 2  # pooled + 2-row sequence, 2 bytes saved per value


def test_bad_dtype_is_an_error(tmp_path):
    with pytest.raises(CacheError, match="expected one of float32, float16, got 'int8'"):
        EmbeddingCache(tmp_path, dtype="int8")


@pytest.mark.parametrize("damage", ["truncate", "flip_pooled", "flip_sequence", "garbage", "empty"])
def test_corrupt_entry_is_warned_deleted_and_never_returned(tmp_path, damage):
    cache = EmbeddingCache(tmp_path)
    ih, keys = fill(cache, 2, seq=True)
    path = cache.entry_path(ih, keys[0])
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) - 5]
    elif damage == "flip_pooled":
        data[-(2 * 6 * 4) - 3] ^= 0x10  # inside the pooled vector (just before the 2x6 sequence)
    elif damage == "flip_sequence":
        data[-3] ^= 0x01
    elif damage == "garbage":
        data = bytearray(b"\x00" * len(data))
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    with pytest.warns(CacheCorruptionWarning, match=f"corrupt entry .*{keys[0]}.*recomputed"):
        assert cache.get(ih, keys[0]) is None
    assert not path.exists()
    np.testing.assert_array_equal(cache.get(ih, keys[1]).pooled, vec(1))


def test_entry_moved_under_another_key_is_detected(tmp_path):
    cache = EmbeddingCache(tmp_path)
    ih, keys = fill(cache, 2)
    other = cache.entry_path(ih, keys[1])
    other.write_bytes(cache.entry_path(ih, keys[0]).read_bytes())
    with pytest.warns(CacheCorruptionWarning, match="bad header"):
        assert cache.get(ih, keys[1]) is None


def test_get_many_from_pack_equals_entries_and_covers_new_entries(tmp_path):
    cache = EmbeddingCache(tmp_path)
    ih, keys = fill(cache, 20)
    assert cache.pack(ih) == 20
    extra = make_key(text_hash("late"), ih)
    cache.put(ih, extra, Encoded(vec(999)))
    fresh = EmbeddingCache(tmp_path)
    got = fresh.get_many(ih, keys + [extra, "f" * 64])
    assert set(got) == set(keys) | {extra}
    for i, k in enumerate(keys):
        np.testing.assert_array_equal(got[k].pooled, vec(i))
    np.testing.assert_array_equal(got[extra].pooled, vec(999))
    assert fresh.pack(ih) == 21  # incremental: the old rows are reused, the new entry added
    assert isinstance(fresh._open_pack(ih)[1], np.memmap)


def test_corrupt_pack_row_falls_back_to_entries_with_a_warning(tmp_path):
    cache = EmbeddingCache(tmp_path)
    ih, keys = fill(cache, 5)
    cache.pack(ih)
    npy = next(p for p in (tmp_path / ih).glob("pack-*.npy") if p.name.count(".") == 1)
    data = bytearray(npy.read_bytes())
    data[-2] ^= 0xFF
    npy.write_bytes(bytes(data))
    fresh = EmbeddingCache(tmp_path)
    with pytest.warns(CacheCorruptionWarning, match="pack .* is corrupt"):
        got = fresh.get_many(ih, keys)
    for i, k in enumerate(keys):
        np.testing.assert_array_equal(got[k].pooled, vec(i))
    assert not (tmp_path / ih / "pack.json").exists()


def test_verify_reports_a_pack_with_bad_rows(tmp_path):
    cache = EmbeddingCache(tmp_path)
    ih, keys = fill(cache, 5)
    cache.pack(ih)
    npy = next(p for p in (tmp_path / ih).glob("pack-*.npy") if p.name.count(".") == 1)
    data = bytearray(npy.read_bytes())
    data[-5] ^= 0x01
    npy.write_bytes(bytes(data))
    report = EmbeddingCache(tmp_path).verify()
    assert report.corrupt == [] and report.bad_packs == [f"{ih}: 1 of 5 packed rows fail their checksums"]
    assert not (tmp_path / ih / "pack.json").exists()
    assert EmbeddingCache(tmp_path).verify().bad_packs == []


def test_truncated_pack_is_dropped(tmp_path):
    cache = EmbeddingCache(tmp_path)
    ih, keys = fill(cache, 5)
    cache.pack(ih)
    npy = next(p for p in (tmp_path / ih).glob("pack-*.npy") if p.name.count(".") == 1)
    npy.write_bytes(npy.read_bytes()[:-40])
    with pytest.warns(CacheCorruptionWarning):
        got = EmbeddingCache(tmp_path).get_many(ih, keys)
    assert len(got) == 5


def test_verify_reports_and_removes_corrupt_entries_and_stale_temp_files(tmp_path):
    cache = EmbeddingCache(tmp_path)
    ih, keys = fill(cache, 4, seq=True)
    bad = cache.entry_path(ih, keys[3])
    bad.write_bytes(bad.read_bytes()[:-1])
    stale = bad.parent / ".tmp-dead"
    stale.write_bytes(b"partial")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    report = cache.verify(remove=False)
    assert report.checked == 4 and len(report.corrupt) == 1 and keys[3] in report.corrupt[0]
    assert bad.exists() and stale.exists()
    report = cache.verify()
    assert len(report.corrupt) == 1 and report.removed_tmp == 1
    assert not bad.exists() and not stale.exists()
    assert cache.verify().corrupt == []


def test_info_counts_entries_bytes_and_pack(tmp_path):
    cache = EmbeddingCache(tmp_path)
    ih, keys = fill(cache, 3)
    cache.pack(ih)
    (info,) = cache.info()
    assert (info.identity_hash, info.encoder, info.identity, info.entries, info.packed_rows) == (
        ih,
        "unit",
        IDENT,
        3,
        3,
    )
    assert info.bytes >= sum(os.path.getsize(cache.entry_path(ih, k)) for k in keys)


def test_prune_by_keep_age_and_encoder(tmp_path):
    cache = EmbeddingCache(tmp_path)
    a = cache.register({"name": "a"}, encoder="enc-a")
    b = cache.register({"name": "b"}, encoder="enc-b")
    c = cache.register({"name": "c"}, encoder="enc-b")
    old = time.time() - 10 * 86400
    os.utime(tmp_path / c / "last_used", (old, old))
    with pytest.raises(CacheError, match="expected at least one of"):
        cache.prune()
    assert [i.identity_hash for i in cache.prune(older_than_days=5, dry_run=True)] == [c]
    assert set(cache.identities()) == {a, b, c}
    assert [i.identity_hash for i in cache.prune(encoder="enc-b", keep=[b])] == [c]
    assert set(cache.identities()) == {a, b}
    assert [i.identity_hash for i in cache.prune(keep=[a])] == [b]
    assert cache.identities() == [a]


def test_default_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SCORECAST_CACHE", str(tmp_path / "cc"))
    assert default_cache_dir() == tmp_path / "cc"
    assert EmbeddingCache().root == tmp_path / "cc"
    monkeypatch.delenv("SCORECAST_CACHE")
    assert default_cache_dir().parts[-2:] == (".cache", "scorecast")


def test_put_rejects_bad_shapes(tmp_path):
    cache = EmbeddingCache(tmp_path)
    ih = cache.register(IDENT)
    with pytest.raises(CacheError, match=r"expected a pooled vector of shape \(D,\), got \(2, 3\)"):
        cache.put(ih, "a" * 64, Encoded(np.zeros((2, 3))))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cache.get(ih, "a" * 64) is None


@pytest.mark.parametrize("kind", ["disk", "memory"])
def test_both_stores_keep_the_cache_protocol(kind, tmp_path):
    from scorecast.cache.memory import MemoryCache
    from scorecast.cache.protocol import Cache
    from scorecast.cache.store import EmbeddingCache
    from scorecast.data.features import Encoded

    cache = EmbeddingCache(tmp_path / "c") if kind == "disk" else MemoryCache()
    K1 = "a" * 64  # noqa: N806
    assert isinstance(cache, Cache)
    ident = cache.register({"name": "toy", "dim": 3}, encoder="toy")
    assert not cache.contains(ident, K1) and cache.get(ident, K1) is None
    seq = np.arange(6, dtype=np.float32).reshape(2, 3)
    cache.put(ident, K1, Encoded(np.array([1.0, 2.0, 3.0], np.float32), seq))
    assert cache.contains(ident, K1)
    hit = cache.get(ident, K1)
    np.testing.assert_array_equal(hit.pooled, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(hit.sequence, seq)
    assert cache.get(ident, K1, sequence=False).sequence is None
    assert set(cache.get_many(ident, [K1, "f" * 64])) == {K1}
    if kind == "memory":  # a store with no folder has nothing to inspect, verify, pack or prune
        assert cache.root is None and not any(hasattr(cache, m) for m in ("info", "verify", "pack", "prune"))
