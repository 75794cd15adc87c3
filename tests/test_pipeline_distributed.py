"""Distributed extraction: a 2-process CPU DDP run (in a subprocess: ddp re-launches its command)
fills the cache with every item, each rank writing its own share, equal to a single-process run."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from pipeline_toys import count, pids, register_toys, unregister_toys
from scorecast.cache.store import EmbeddingCache
from scorecast.config import EncoderSpec
from scorecast.data.items import Item
from scorecast.encoders.distributed import encode_items_distributed
from scorecast.encoders.pipeline import encode_items

TESTS = Path(__file__).resolve().parent

SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from pipeline_toys import register_toys
    register_toys()
    from scorecast.cache.store import EmbeddingCache
    from scorecast.config import EncoderSpec
    from scorecast.data.items import Item
    from scorecast.encoders.distributed import encode_items_distributed
    items = [Item(id=str(i), texts={"t": f"sentence {i % 37}"}) for i in range(50)]
    items.append(Item(id="no-text"))
    spec = EncoderSpec(name="toy-text", input="text.t", params={"counter": sys.argv[3]})
    res = encode_items_distributed(items, spec, EmbeddingCache(sys.argv[2]), devices=2, batch_size=4,
                                   on_error="skip", progress=False)
    out = {"rank": res.rank, "encoded": res.encoded, "ids": res.ids, "skipped": res.skipped,
           "pooled": res.pooled.tolist()}
    with open(f"{sys.argv[4]}.{res.rank}", "w") as fh:
        json.dump(out, fh)
    from scorecast.runs.folder import close_distributed
    close_distributed()
    """
)


def items() -> list[Item]:
    return [Item(id=str(i), texts={"t": f"sentence {i % 37}"}) for i in range(50)] + [Item(id="no-text")]


@pytest.mark.slow
def test_two_process_cpu_ddp_fills_the_cache_like_one_process(tmp_path):
    root, counter, out = tmp_path / "cache", tmp_path / "calls", tmp_path / "result"
    script = tmp_path / "embed_ddp.py"  # a file: ddp re-launches `python script.py ...` for rank 1
    script.write_text(SCRIPT)
    run = subprocess.run(
        [sys.executable, str(script), str(TESTS), str(root), str(counter), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    ranks = [json.loads(Path(f"{out}.{r}").read_text()) for r in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1]
    assert count(counter) == 37 and len(pids(counter)) == 2  # 37 distinct texts, split over 2 ranks
    assert ranks[0]["encoded"] == ranks[1]["encoded"] == 37
    register_toys()
    try:
        spec = EncoderSpec(name="toy-text", input="text.t")
        cache = EmbeddingCache(root)
        assert cache.verify(remove=False).corrupt == []
        single = encode_items(items(), spec, EmbeddingCache(tmp_path / "single"), on_error="skip", progress=False)
        warm = encode_items(items(), spec, cache, on_error="skip", progress=False)
        assert warm.cached == 50 and warm.encoded == 0
        for r in ranks:
            assert r["ids"] == single.ids and set(r["skipped"]) == {"no-text"}
            np.testing.assert_array_equal(np.asarray(r["pooled"], np.float32), single.pooled)
        np.testing.assert_array_equal(warm.pooled, single.pooled)
    finally:
        unregister_toys()


def test_fully_cached_distributed_run_returns_without_launching(tmp_path):
    register_toys()
    try:
        spec = EncoderSpec(name="toy-text", input="text.t")
        cache = EmbeddingCache(tmp_path)
        first = encode_items(items()[:50], spec, cache, progress=False)
        res = encode_items_distributed(items()[:50], spec, cache, devices=2)
        assert res.encoded == 0 and res.cached == 50 and res.rank == 0
        np.testing.assert_array_equal(res.pooled, first.pooled)
    finally:
        unregister_toys()
