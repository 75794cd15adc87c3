"""Small training sets: STS-B cut to 80, 160 and 320 training pairs (dev and test as usual).

For each size and each draw of the training pairs, ``scorecast train`` (``run_train``) trains the
recipes/stsb.yaml scorer on the cut training set, early-stops on the whole dev split, and scores the
test split once. The anchor, measured in the same run on the same test pairs: the cosine similarity
of the very same frozen MiniLM embeddings (zero-shot). The goal: the trained model is never below
the cosine beyond noise, i.e. at every size and draw the paired-bootstrap interval of
(model - cosine) test Spearman reaches 0 or above. ``--select`` adds the same runs with the recipe's
variants chosen by an inner CV on the training pairs (``recipe.select``).

Writes bench/results/small_data.json and .md and the ``small-data`` section of bench/RESULTS.md.

    .venv/bin/python bench/bench_small_data.py [--sizes 80,160,320] [--draws 3] [--select]
        [--quick] [--data DIR] [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import accuracy_lib as lib  # noqa: E402

REPO = lib.REPO
SECTION = "small-data"


def _run_meta(start: float) -> dict:
    """When, where and how long: the meta block every report of this script starts with."""
    return {
        "date": lib.now_iso(),
        "machine": lib.machine_info(),
        "git": lib.git_commit(),
        "seconds": time.perf_counter() - start,
        "load_average": list(os.getloadavg()),
    }


def cosine(features, left: str, right: str) -> np.ndarray:
    a, b = features.pooled[left].astype(np.float64), features.pooled[right].astype(np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def one_run(recipe, train, dev, test, work: Path, n_boot: int, left: str, right: str) -> dict[str, Any]:
    """Train on ``train`` (early stopping on ``dev``), score ``test``; the model against the cosine."""
    from scorecast.runs.cv import run_train, training_targets

    t0 = time.perf_counter()
    res = run_train(recipe, *train, work, val=dev, test=test)
    seconds = time.perf_counter() - t0
    truth = training_targets(recipe, test[0])[:, 0]
    pred = res.predictions["pred.score"].to_numpy(float)
    cos = cosine(test[1], left, right)
    out = {
        "seconds": seconds,
        "model": lib.scores(pred, truth, ["srcc", "lcc"], n_boot)["utterance"],
        "cosine": lib.scores(cos, truth, ["srcc", "lcc"], n_boot)["utterance"],
        "diff": {m: lib.paired_difference(m, pred, cos, truth, n_boot) for m in ("srcc", "lcc")},
        "dev_baselines": {
            name: {"kind": e["kind"], "srcc": e["utterance"]["srcc"], "diff": e["model_vs"]["utterance"]["srcc"]}
            for name, e in res.metrics["baselines"]["targets"]["score"]["baselines"].items()
        },
        "warnings": res.metrics.get("warnings", []),
        "epochs": [f.get("epochs") for f in res.metrics.get("folds", [])],
    }
    if "selection" in res.metrics:
        out["chosen"] = [r["chosen"] for r in res.metrics["selection"]["per_fold"]]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="80,160,320")
    p.add_argument("--draws", type=int, default=3)
    p.add_argument("--select", action="store_true", help="also run the recipe with select: (inner-CV choice)")
    p.add_argument("--quick", action="store_true", help="tiny dev/test and few resamples: checks the machinery only")
    p.add_argument("--data", type=Path, default=Path(os.environ.get("SCORECAST_DATA", REPO.parent / "shared" / "data")))
    p.add_argument("--cache", type=Path, default=None)
    p.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "small_data.json")
    p.add_argument("--md", type=Path, default=REPO / "bench" / "results" / "small_data.md")
    p.add_argument("--results", type=Path, default=REPO / "bench" / "RESULTS.md")
    p.add_argument(
        "--cv",
        action="store_true",
        help="instead: `scorecast cv` on the first draw of each size (writes small_data_cv.json/.md and its section)",
    )
    args = p.parse_args()
    root = args.data / "stsb"
    if not (root / "sts-train.csv").is_file():
        raise SystemExit(f"STS-B not found at {root} (set --data or SCORECAST_DATA)")
    from scorecast.cache.store import EmbeddingCache
    from scorecast.config import DataConfig, SelectConfig

    start = time.perf_counter()
    n_boot = 50 if args.quick else 1000
    overrides = {"training.threads": 1, "evaluate.bootstrap": n_boot}
    base = lib.load("stsb.yaml", root, overrides=overrides)
    left, right = (e.feature_name for e in base.encoders)
    limit = 60 if args.quick else None
    sizes = [int(x) for x in args.sizes.split(",")]
    everything = lib.read_subset(base.data, None)
    picks = {  # the training pairs of each (size, draw); only these are encoded
        (size, draw): np.sort(np.random.default_rng(1000 + draw).choice(len(everything), size, replace=False))
        for size in sizes
        for draw in range(args.draws)
    }
    used = np.unique(np.concatenate(list(picks.values())))
    read = {
        "train": everything.subset(used.tolist()),
        "dev": lib.read_subset(DataConfig(reader="stsb", path=str(root / "sts-dev.csv")), limit),
        "test": lib.read_subset(base.test_data, limit),
    }
    split = lib.featurize_splits(base, read, EmbeddingCache(args.cache))
    where = {int(i): k for k, i in enumerate(used)}
    if args.cv:
        return cv_cuts(args, base, split, {s: np.array([where[int(i)] for i in picks[(s, 0)]]) for s in sizes}, start)
    configs = [("stsb", base)]
    if args.select:
        configs.append(("stsb --select", base.model_copy(update={"select": SelectConfig()})))
    rows = []
    with tempfile.TemporaryDirectory(prefix="scorecast-small-") as tmp:
        for size in sizes:
            for draw in range(args.draws):
                pick = np.array([where[int(i)] for i in picks[(size, draw)]])
                train = (split["train"][0].subset(pick.tolist()), split["train"][1].subset(pick))
                for label, recipe in configs:
                    work = Path(tmp) / f"{label.replace(' ', '')}-{size}-{draw}"
                    r = one_run(recipe, train, split["dev"], split["test"], work, n_boot, left, right)
                    rows.append({"system": label, "size": size, "draw": draw, **r})
                    d = r["diff"]["srcc"]
                    print(
                        f"{label} n={size} draw {draw}: test srcc {r['model']['srcc']['value']:.4f} vs cosine "
                        f"{r['cosine']['srcc']['value']:.4f}, diff {d['value']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] "
                        f"({r['seconds']:.1f} s)",
                        flush=True,
                    )
    report = {
        "meta": {
            **_run_meta(start),
            "bootstrap": n_boot,
            "quick": args.quick,
            "sizes": sizes,
            "draws": args.draws,
            "dev": len(split["dev"][0]),
            "test": len(split["test"][0]),
        },
        "rows": rows,
    }
    for label, _ in configs:
        mine = [r for r in rows if r["system"] == label]
        report.setdefault("goal", {})[label] = all(r["diff"]["srcc"]["high"] >= 0 for r in mine)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=float) + "\n")
    text = render(report)
    args.md.write_text(text)
    lib.replace_section(args.results, SECTION, text)
    print(text)


def cv_cuts(args, base, split, picks: dict[int, np.ndarray], start: float) -> None:
    """``scorecast cv`` (5 folds, as a new user would run it) on each size's first draw: pooled
    out-of-fold figures, the baselines on the same folds, each fold's validation figure and weight."""
    from scorecast.runs.cv import run_cv

    rows = []
    with tempfile.TemporaryDirectory(prefix="scorecast-small-cv-") as tmp:
        for size, pick in picks.items():
            items, features = split["train"][0].subset(pick.tolist()), split["train"][1].subset(pick)
            t0 = time.perf_counter()
            res = run_cv(base, items, features, Path(tmp) / str(size))
            m = res.metrics
            info = m["baselines"]["targets"]["score"]
            best = info["best"]
            rows.append(
                {
                    "size": size,
                    "seconds": time.perf_counter() - t0,
                    "oof": m["targets"]["score"]["utterance"],
                    "best_baseline": best,
                    "baseline": info["baselines"][best]["utterance"],
                    "diff": info["baselines"][best]["model_vs"]["utterance"],
                    "folds": [
                        {k: f.get(k) for k in ("fold", "n", "epochs", "steps", "patience_epochs", "flags")}
                        | {"srcc": f["score"]["srcc"], "lcc": f["score"]["lcc"]}
                        for f in m["folds"]
                    ],
                    "weights": [r["weight"] for r in m["ensemble"]["members"]],
                    "warnings": m.get("warnings", []),
                }
            )
            print(
                f"cv n={size}: oof srcc {rows[-1]['oof']['srcc']['value']:.4f} ({rows[-1]['seconds']:.1f} s)",
                flush=True,
            )
    report = {
        "meta": {
            **_run_meta(start),
        },
        "rows": rows,
    }
    f = lib.fmt_entry
    meta = report["meta"]
    lines = [
        "## STS-B cut small, cross-validated (`scorecast cv`, 5 folds)",
        "",
        f"Written by `bench/bench_small_data.py --cv` on {meta['date']}; commit `{(meta['git']['commit'] or 'unknown')[:12]}`"
        f"{' (with uncommitted changes)' if meta['git']['dirty'] else ''}; {meta['seconds']:.0f} s; load average at the end "
        f"{meta['load_average'][0]:.1f}. The first draw of each size; out-of-fold figures pooled over the folds; the best "
        "baseline of the run's own baselines block (same folds, same items), diff = model - baseline (paired bootstrap).",
        "",
        "| pairs | OOF Spearman | OOF Pearson | best baseline | its Spearman | diff Spearman | fold val. Spearman | epochs | weights |",
        "|---:|---:|---:|---|---:|---:|---|---|---|",
    ]
    for r in rows:
        fold_srcc = ", ".join(f"{x['srcc']:.2f}" for x in r["folds"])
        lines.append(
            f"| {r['size']} | {f(r['oof']['srcc'])} | {f(r['oof']['lcc'])} | {r['best_baseline']} | {f(r['baseline']['srcc'])} | "
            f"{f(r['diff']['srcc'], 4)} | {fold_srcc} | "
            f"{', '.join(str(x['epochs']) for x in r['folds'])} | {', '.join(f'{w:.2f}' for w in r['weights'])} |"
        )
    warned = [f"- n={r['size']}: {w}" for r in rows for w in r["warnings"]]
    if warned:
        lines += ["", "Warnings the runs gave:", *warned]
    text = "\n".join(lines) + "\n"
    (args.json.parent / "small_data_cv.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    (args.md.parent / "small_data_cv.md").write_text(text)
    lib.replace_section(args.results, "small-data-cv", text)
    print(text)


def render(report: dict[str, Any]) -> str:
    meta = report["meta"]
    f = lib.fmt_entry
    lines = [
        "## STS-B with small training sets (80 / 160 / 320 pairs)",
        "",
        f"Written by `bench/bench_small_data.py` on {meta['date']}{' in --quick mode (not results)' if meta['quick'] else ''}; "
        f"commit `{(meta['git']['commit'] or 'unknown')[:12]}`{' (with uncommitted changes)' if meta['git']['dirty'] else ''}; "
        f"{meta['seconds']:.0f} s; load average at the end {meta['load_average'][0]:.1f} on {meta['machine']['cores']} cores.",
        f"`scorecast train` on a random cut of sts-train ({meta['draws']} draws per size), early stopping on sts-dev "
        f"({meta['dev']} pairs), scored once on sts-test ({meta['test']} pairs). Anchor (same run, same test pairs): the "
        "cosine of the same frozen MiniLM embeddings, zero-shot. diff = model - cosine, paired bootstrap "
        f"({meta['bootstrap']} resamples). Dev baselines: the run's own baselines block (best by dev Spearman).",
        "",
        "| system | pairs | draw | test Spearman | cosine | diff Spearman | diff Pearson | best dev baseline | epochs | time (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in report["rows"]:
        best = max(r["dev_baselines"].items(), key=lambda kv: kv[1]["srcc"]["value"])
        chosen = f" chose {', '.join(r['chosen'])}" if r.get("chosen") else ""
        lines.append(
            f"| {r['system']}{chosen} | {r['size']} | {r['draw']} | {f(r['model']['srcc'])} | {f(r['cosine']['srcc'])} | "
            f"{f(r['diff']['srcc'], 4)} | {f(r['diff']['lcc'], 4)} | {best[0]}: {f(best[1]['diff'], 4)} | "
            f"{', '.join(str(e) for e in r['epochs'])} | {r['seconds']:.1f} |"
        )
    for label, met in report["goal"].items():
        lines += [
            "",
            f"Goal for `{label}` (never below the cosine beyond noise: every diff interval reaches 0 or above): "
            f"**{'met' if met else 'not met'}**.",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
