"""Peak memory of embedding a table against a table 10x larger: streamed extraction stays flat.

Writes synthetic 8 s, 16 kHz WAV clips to a temporary folder, reads them through the ``table``
reader, and embeds them with a cheap spectral-statistics audio encoder (registered by this script
as ``bench-spectral``) through ``encode_items`` into an empty cache. Each run is a fresh subprocess:

* ``streamed``: ``encode_items`` (waveforms loaded one batch at a time);
* ``all-in-memory`` (the baseline it is compared with): the naive way, every waveform loaded into a
  list first, then encoded.

For each, the peak RSS (``resource.getrusage``) above the RSS after imports, and the peak of
traced Python/numpy allocations (``tracemalloc``, in a separate run) are measured for N and 10 N
clips. Writes bench/results/memory.json and memory.md.

    .venv/bin/python bench/bench_memory.py [--n 30] [--seconds 8]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def register_encoder() -> None:
    import numpy as np

    from scorecast.encoders.base import ENCODERS, Encoded, Encoder

    class SpectralStats(Encoder):
        """Mean and std of the log power spectrum over 512-sample frames (514 values)."""

        modality = "audio"

        def identity(self):
            return {"name": "bench-spectral", "frame": 512, "sample_rate": self.sample_rate}

        def encode_batch(self, inputs):
            out = []
            for wave in inputs:
                frames = wave[: len(wave) // 512 * 512].reshape(-1, 512)
                spec = np.log1p(np.abs(np.fft.rfft(frames * np.hanning(512), axis=1)) ** 2)
                out.append(Encoded(np.concatenate([spec.mean(0), spec.std(0)]).astype(np.float32)))
            return out

    if "bench-spectral" not in ENCODERS:
        ENCODERS.register("bench-spectral")(SpectralStats)


def rss_peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def child(args: argparse.Namespace) -> None:
    import numpy as np  # noqa: F401  (imports first: the baseline RSS includes them)

    from scorecast.cache.store import EmbeddingCache
    from scorecast.config import DataConfig, EncoderSpec
    from scorecast.data.audio import load_audio
    from scorecast.data.readers import read_items
    from scorecast.encoders.pipeline import build_encoder, encode_items

    register_encoder()
    items = read_items(DataConfig(reader="table", path=args.table, options={"audio": "path"}))
    spec = EncoderSpec(name="bench-spectral")
    if args.trace:
        import tracemalloc

        tracemalloc.start()
    base = rss_peak_mb()
    t0 = time.perf_counter()
    if args.mode == "streamed":
        res = encode_items(items, spec, EmbeddingCache(args.cache), batch_size=16, progress=False)
        n = len(res.ids)
    else:
        waves = [load_audio(it.audio, 16000) for it in items]
        enc = build_encoder(spec)
        pooled = np.stack([e.pooled for i in range(0, len(waves), 16) for e in enc.encode_batch(waves[i : i + 16])])
        n = len(pooled)
    seconds = time.perf_counter() - t0
    out = {
        "mode": args.mode,
        "items": n,
        "seconds": seconds,
        "rss_after_imports_mb": base,
        "rss_peak_mb": rss_peak_mb(),
    }
    if args.trace:
        out["traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    print("RESULT " + json.dumps(out))


def run_child(table: Path, cache: Path, mode: str, trace: bool) -> dict:
    cmd = [sys.executable, __file__, "--child", "--table", str(table), "--cache", str(cache), "--mode", mode]
    if trace:
        cmd.append("--trace")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def write_table(folder: Path, n: int, seconds: float) -> Path:
    import numpy as np
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(n)
    rows = ["id,path"]
    t = np.arange(int(seconds * 16000)) / 16000
    for i in range(n):
        wave = 0.3 * np.sin(2 * np.pi * (100 + 7 * i) * t) + 0.05 * rng.standard_normal(t.size)
        sf.write(folder / f"clip{i:05d}.wav", wave.astype(np.float32), 16000, subtype="PCM_16")
        rows.append(f"clip{i:05d},clip{i:05d}.wav")
    table = folder / "items.csv"
    table.write_text("\n".join(rows) + "\n")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30, help="clips in the small table (the large one has 10x)")
    parser.add_argument("--seconds", type=float, default=8.0, help="clip length")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--table", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="streamed", help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        tables = {n: write_table(Path(tmp) / f"t{n}", n, args.seconds) for n in (args.n, 10 * args.n)}
        for mode in ("streamed", "all-in-memory"):
            for n, table in tables.items():
                rss = run_child(table, Path(tmp) / f"cache-{mode}-{n}-rss", mode, trace=False)
                traced = run_child(table, Path(tmp) / f"cache-{mode}-{n}-trace", mode, trace=True)
                rss["traced_peak_mb"] = traced["traced_peak_mb"]
                rss["rss_growth_mb"] = rss["rss_peak_mb"] - rss["rss_after_imports_mb"]
                rss["clips"] = n
                runs.append(rss)
                print(json.dumps(rss))

    def pick(mode: str, n: int) -> dict:
        return next(r for r in runs if r["mode"] == mode and r["clips"] == n)

    small, large = args.n, 10 * args.n
    ratios = {}
    for mode in ("streamed", "all-in-memory"):
        a, b = pick(mode, small), pick(mode, large)
        ratios[mode] = {
            "rss_peak_ratio": round(b["rss_peak_mb"] / a["rss_peak_mb"], 3),
            "rss_growth_ratio": round(b["rss_growth_mb"] / max(a["rss_growth_mb"], 1e-6), 3),
            "traced_peak_ratio": round(b["traced_peak_mb"] / a["traced_peak_mb"], 3),
        }
    audio_mb = args.seconds * 16000 * 4 / 2**20
    result = {
        "benchmark": "peak memory, table vs 10x table",
        "encoder": "bench-spectral (log-spectrum mean/std, 514 values)",
        "clip_seconds": args.seconds,
        "float32_mb_per_clip": round(audio_mb, 3),
        "tables": [small, large],
        "runs": runs,
        "ratios_large_over_small": ratios,
        "flat": ratios["streamed"]["traced_peak_ratio"] < 1.5 and ratios["streamed"]["rss_peak_ratio"] < 1.2,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "memory.json").write_text(json.dumps(result, indent=2) + "\n")
    md = [
        "# Peak memory: a table vs a table 10x larger",
        "",
        f"`bench/bench_memory.py`, {result['date']}, {result['cpus']} CPUs. Synthetic {args.seconds:g} s 16 kHz clips "
        f"({audio_mb:.2f} MB each as float32), {small} vs {large} clips, encoder {result['encoder']}, batch size 16, "
        "each run a fresh subprocess. Baseline: the naive all-in-memory loop.",
        "",
        "| mode | clips | seconds | peak RSS MB | RSS growth MB | traced peak MB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        md.append(
            f"| {r['mode']} | {r['clips']} | {r['seconds']:.2f} | {r['rss_peak_mb']:.0f} | {r['rss_growth_mb']:.1f} | {r['traced_peak_mb']:.1f} |"
        )
    md += [
        "",
        "| mode | peak RSS ratio 10x/1x | RSS growth ratio | traced peak ratio |",
        "|---|---:|---:|---:|",
    ]
    for mode, r in ratios.items():
        md.append(
            f"| {mode} | {r['rss_peak_ratio']:.2f} | {r['rss_growth_ratio']:.2f} | {r['traced_peak_ratio']:.2f} |"
        )
    md += [
        "",
        f"Streamed peak stays flat: **{'yes' if result['flat'] else 'NO'}** "
        "(traced peak ratio < 1.5 and peak RSS ratio < 1.2).",
        "",
    ]
    (args.out / "memory.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
