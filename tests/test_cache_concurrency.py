"""Two processes writing (and packing) one cache at the same time leave it consistent."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from scorecast.cache.store import EmbeddingCache, make_key, text_hash

WRITER = textwrap.dedent(
    """
    import sys, numpy as np
    from scorecast.cache.store import EmbeddingCache, make_key, text_hash
    from scorecast.encoders.base import Encoded
    root, order, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    cache = EmbeddingCache(root)
    ih = cache.register({"name": "concurrent", "dim": 64}, encoder="concurrent")
    idx = list(range(n)) if order == "up" else list(range(n))[::-1]
    for rep in range(3):
        for i in idx:
            k = make_key(text_hash(f"item {i}"), ih)
            v = np.random.default_rng(i).standard_normal(64).astype(np.float32)
            cache.put(ih, k, Encoded(v, np.tile(v, (i % 5 + 1, 1))))
            got = cache.get(ih, k)
            if got is not None and not np.array_equal(got.pooled, v):
                sys.exit(f"read back a wrong vector for item {i}")
        cache.pack(ih)
    print("ok")
    """
)


def expected(i: int) -> np.ndarray:
    return np.random.default_rng(i).standard_normal(64).astype(np.float32)


def test_two_concurrent_writers_leave_a_consistent_cache(tmp_path: Path):
    n = 150
    procs = [
        subprocess.Popen(
            [sys.executable, "-W", "error::UserWarning", "-c", WRITER, str(tmp_path), order, str(n)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for order in ("up", "down")
    ]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert out.strip() == "ok"
    cache = EmbeddingCache(tmp_path)
    report = cache.verify(remove=False)
    assert report.checked == n and report.corrupt == [] and report.bad_packs == []
    assert not list(tmp_path.rglob(".tmp-*"))
    (ih,) = cache.identities()
    keys = [make_key(text_hash(f"item {i}"), ih) for i in range(n)]
    got = cache.get_many(ih, keys)
    assert len(got) == n
    for i, k in enumerate(keys):
        np.testing.assert_array_equal(got[k].pooled, expected(i))
        full = cache.get(ih, k)
        np.testing.assert_array_equal(full.sequence, np.tile(expected(i), (i % 5 + 1, 1)))
