"""Time of a 5-fold CV on cached features, and how it grows from 1x to 2x to 4x the rows.

Features: the STS-B MiniLM embeddings (sentence1, sentence2: two 384-d vectors per pair) of the
first 1x / 2x / 4x ``--base`` rows of sts-train.csv, read through the embedding cache (encoded
once if the cache lacks them); ``--synthetic`` uses random unit vectors of the same shape with a
known target instead (no data needed). Each size runs ``scorecast.training.cv.run_cv`` with
recipes/stsb.yaml (siamese fusion + regression head), its bilinear variant (bilinear fusion + MLP:
the heaviest head) and its ridge variant, each for a fixed number of epochs (early stopping off, so
every size trains the same number of epochs and time should grow linearly with the rows). The median of ``--repeats`` runs is reported, with the time ratio to
1x and the time per row. Writes bench/results/training.json and training.md.

    .venv/bin/python bench/bench_training.py [--base 1000] [--epochs 5] [--repeats 2] [--synthetic]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import accuracy_lib as lib  # noqa: E402

REPO = lib.REPO
RESULTS = REPO / "bench" / "results"
SCALES = (1, 2, 4)


def real_features(data: Path, n: int, cache_dir: Path | None):
    """(items, features) of the first n STS-B training pairs, through the cache."""
    from scorecast.cache.store import EmbeddingCache

    recipe = lib.load("stsb.yaml", data / "stsb")
    items = lib.read_subset(recipe.data, None)
    if n > len(items):
        raise SystemExit(f"--base x {SCALES[-1]} = {n} rows, but sts-train.csv has {len(items)}; lower --base")
    return lib.featurize(recipe, items.subset(list(range(n))), EmbeddingCache(cache_dir))


def synthetic_features(n: int, dim: int = 384, seed: int = 0):
    """Two random unit vectors per item; target = 2.5 + 2.5 * cosine-like score, clipped to [0, 5]."""
    from scorecast.data.features import FeatureSet
    from scorecast.data.items import Item, ItemSet

    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, dim)).astype(np.float32)
    b = (0.6 * a + rng.normal(size=(n, dim))).astype(np.float32)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    y = np.clip(2.5 + 5.0 * (a * b).sum(1) + rng.normal(0, 0.3, n), 0, 5)
    ids = [f"pair{i:06d}" for i in range(n)]
    items = ItemSet([Item(id=i, targets={"score": float(t)}) for i, t in zip(ids, y)], "synthetic", ["score"])
    return items, FeatureSet(ids, {"s1": a, "s2": b})


def time_cv(recipe, items, features, repeats: int) -> list[float]:
    from scorecast.runs.cv import run_cv

    out = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            t = time.perf_counter()
            run_cv(recipe, items, features, Path(tmp) / "run")
            out.append(time.perf_counter() - t)
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", type=int, default=1000, help="rows at 1x")
    p.add_argument("--epochs", type=int, default=5, help="epochs per fold (early stopping off)")
    p.add_argument("--repeats", type=int, default=2, help="runs per size (median reported)")
    p.add_argument("--synthetic", action="store_true", help="random features of the same shape instead of STS-B")
    p.add_argument("--data", type=Path, default=Path(os.environ.get("SCORECAST_DATA", REPO.parent / "shared" / "data")))
    p.add_argument("--cache", type=Path, default=None)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1, as run_accuracy trains; 0 = torch's choice)"
    )
    args = p.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    synthetic = args.synthetic or not (args.data / "stsb" / "sts-train.csv").is_file()
    n_max = args.base * SCALES[-1]
    items, features = synthetic_features(n_max) if synthetic else real_features(args.data, n_max, args.cache)
    overrides = {"training.max_epochs": args.epochs, "training.early_stopping": None, "cv.seeds": [0], "cv.folds": 5}
    recipes = {
        "siamese + regression (recipes/stsb.yaml)": lib.load("stsb.yaml", args.data / "stsb", overrides=overrides),
        "bilinear + regression (recipes/stsb.yaml [bilinear])": lib.load(
            "stsb.yaml", args.data / "stsb", "bilinear", overrides=overrides
        ),
        "ridge (recipes/stsb.yaml [ridge])": lib.load("stsb.yaml", args.data / "stsb", "ridge", overrides=overrides),
    }
    load_before = os.getloadavg()
    results = {}
    for label, recipe in recipes.items():
        time_cv(
            recipe, items.subset(list(range(args.base // 4))), features.subset(np.arange(args.base // 4)), 1
        )  # warm-up
        rows = []
        for scale in SCALES:
            n = args.base * scale
            times = time_cv(recipe, items.subset(list(range(n))), features.subset(np.arange(n)), args.repeats)
            rows.append({"scale": scale, "rows": n, "seconds": statistics.median(times), "runs": times})
            print(f"{label}: {n} rows: {statistics.median(times):.2f} s", flush=True)
        base_s = rows[0]["seconds"]
        for prev, r in zip([None] + rows[:-1], rows):
            r["ratio"] = r["seconds"] / base_s
            r["ms_per_row"] = 1000 * r["seconds"] / r["rows"]
            r["ratio_per_row"] = r["ratio"] / r["scale"]  # 1.0 = exactly linear through the origin
            if prev is not None:  # the cost of the added rows alone: equal at each step when linear
                r["ms_per_added_row"] = 1000 * (r["seconds"] - prev["seconds"]) / (r["rows"] - prev["rows"])
        slope, fixed = np.polyfit([r["rows"] for r in rows], [r["seconds"] for r in rows], 1)
        results[label] = {"rows": rows, "fit": {"fixed_s": float(fixed), "ms_per_row": float(1000 * slope)}}
    report = {
        "what": "time of one 5-fold run_cv (one seed, fixed epochs, no early stopping) on cached features",
        "features": "synthetic (2 x 384-d unit vectors)"
        if synthetic
        else "STS-B MiniLM embeddings (2 x 384-d), from the cache",
        "epochs": args.epochs,
        "folds": 5,
        "repeats": args.repeats,
        "base_rows": args.base,
        "date": lib.now_iso(),
        "machine": lib.machine_info(),
        "git": lib.git_commit(),
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "training.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "training.md").write_text(render(report))
    print(render(report))
    return report


def render(report: dict) -> str:
    m = report["machine"]
    lines = [
        "# Training time of a 5-fold CV against the number of rows",
        "",
        f"Written by `bench/bench_training.py` on {report['date']}; {m['cores']} CPU cores ({m['cpu']}), torch "
        f"{m['torch']} with {m['torch_threads']} threads; commit `{(report['git']['commit'] or 'unknown')[:12]}`; "
        f"load average before/after {report['load_average']['before'][0]:.1f}/{report['load_average']['after'][0]:.1f}.",
        f"{report['what']}; features: {report['features']}; {report['epochs']} epochs per fold; "
        f"median of {report['repeats']} run(s) per size.",
        "`ratio` = time / time at 1x; `ratio per row` = ratio / scale (1.00 = linear through the origin; below 1 = "
        "a fixed per-run cost (Lightning set-up, the bundle, bootstrap metrics) is amortised); `ms per added row` = "
        "the extra time over the previous size per extra row (about equal at each step when time grows linearly).",
    ]
    for label, res in report["results"].items():
        rows, fit = res["rows"], res["fit"]
        lines += [
            "",
            f"## {label}",
            "",
            "| scale | rows | seconds | ratio | ms per row | ratio per row | ms per added row |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['scale']}x | {r['rows']} | {r['seconds']:.2f} | {r['ratio']:.2f} | {r['ms_per_row']:.3f} | "
            f"{r['ratio_per_row']:.2f} | {r['ms_per_added_row']:.3f} |"
            if "ms_per_added_row" in r
            else f"| {r['scale']}x | {r['rows']} | {r['seconds']:.2f} | {r['ratio']:.2f} | {r['ms_per_row']:.3f} | "
            f"{r['ratio_per_row']:.2f} | – |"
            for r in rows
        ]
        lines += ["", f"Least-squares line: {fit['fixed_s']:.2f} s fixed + {fit['ms_per_row']:.3f} ms per row."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
