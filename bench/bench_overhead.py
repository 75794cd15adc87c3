"""Training overhead: scorecast's Lightning path against a minimal PyTorch loop, same model, same steps.

Features: MiniLM embeddings of the SHL transcripts (recipes/shl-grammar-transcripts.yaml, 409 rows,
read through the embedding cache; encoded once where the cache lacks them). One fold's training
rows (4/5 of them) train, for a fixed number of epochs, with no validation and no early stopping:

* ``scorecast``: ``scorecast.training.trainer.fit_member`` (what ``cv``/``train`` run per member:
  feature scaling, the Lightning Trainer and module, the thread choice, the returned member);
* ``minimal``: the same ``build_model`` / ``build_loss`` / AdamW (same lr, weight decay, batch size,
  epochs), a plain loop over shuffled index batches of tensors already in memory.

Both run on the torch thread count the scorecast path picks by default (recorded), interleaved
(scorecast, minimal, scorecast, minimal, ...) ``--repeats`` times in this one process; the load
average is recorded before and after. Writes bench/results/overhead.json and overhead.md.

    .venv/bin/python bench/bench_overhead.py [--epochs 20] [--repeats 3] [--data ../shared/data]
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

RESULTS = lib.REPO / "bench" / "results"
GOAL = 1.5


def minimal_loop(recipe, features, targets: np.ndarray, train_idx: np.ndarray, epochs: int, seed: int) -> int:
    """Train the recipe's model with a bare loop; returns the optimiser steps taken."""
    import torch

    from scorecast.losses.combined import build_loss
    from scorecast.models.datasets import FeatureScaler
    from scorecast.models.scorer import build_model, feature_shapes

    torch.manual_seed(seed)
    cfg = recipe.training
    train = features.subset(train_idx)
    scaled = FeatureScaler.fit(train).transform(train)
    x = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in scaled.pooled.items()}
    y = torch.from_numpy(np.asarray(targets[train_idx], dtype=np.float32).reshape(len(train_idx), -1))
    model = build_model(recipe.model, feature_shapes(features), recipe.targets)
    loss = build_loss(recipe.losses, recipe.targets)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    model.train()
    n, bs, steps = len(y), min(cfg.batch_size, len(y)), 0
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        for s in range(0, n - (1 if n % bs == 1 else 0), bs):
            idx = order[s : s + bs]
            out = model({k: v[idx] for k, v in x.items()}, {}, {})
            total, _ = loss(out, y[idx], None, None)
            opt.zero_grad(set_to_none=True)
            total.backward()
            if cfg.gradient_clip_val:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.gradient_clip_val)
            opt.step()
            steps += 1
    return steps


def scorecast_fit(recipe, features, targets: np.ndarray, train_idx: np.ndarray, seed: int) -> tuple[int, int]:
    """(epochs run, torch threads it trained on)."""
    from scorecast.training.trainer import fit_member

    with tempfile.TemporaryDirectory() as tmp:
        member = fit_member(recipe, features, targets, train_idx, np.array([], dtype=int), seed=seed, log_dir=tmp)
    return len(member.history), int(member.history[-1]["threads"])


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--data", type=Path, default=Path(os.environ.get("SCORECAST_DATA", lib.REPO.parent / "shared/data"))
    )
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cache", type=Path, default=None, help="Embedding cache (default: $SCORECAST_CACHE or ~/.cache)")
    args = ap.parse_args(argv)
    folder = args.data / "shl-grammar"
    if not (folder / "train_with_transcripts.csv").is_file():
        raise SystemExit(f"skipped: the SHL transcripts are not at {folder} (set --data or $SCORECAST_DATA)")
    import torch

    from scorecast.cache.store import EmbeddingCache

    overrides = {"training.max_epochs": args.epochs, "training.early_stopping": None, "training.loggers": []}
    recipe = lib.load("shl-grammar-transcripts.yaml", folder.parent / "shl-grammar", overrides=overrides)
    items = lib.read_subset(recipe.data, None)
    items, features = lib.featurize(recipe, items, EmbeddingCache(args.cache))
    targets = np.asarray(items.targets("score"), dtype=np.float64).reshape(len(items), -1)
    train_idx = np.arange(len(items))[np.arange(len(items)) % 5 != 0]
    load_before = os.getloadavg()
    times: dict[str, list[float]] = {"scorecast": [], "minimal": []}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, threads = scorecast_fit(recipe, features, targets, train_idx, seed=0)  # first-call costs, untimed
        minimal_loop(recipe, features, targets, train_idx, 1, seed=0)
        old = torch.get_num_threads()
        torch.set_num_threads(threads)  # the minimal loop runs on the threads the scorecast path chose
        for r in range(args.repeats):
            t = time.perf_counter()
            epochs_run, _ = scorecast_fit(recipe, features, targets, train_idx, seed=r)
            times["scorecast"].append(time.perf_counter() - t)
            t = time.perf_counter()
            steps = minimal_loop(recipe, features, targets, train_idx, args.epochs, seed=r)
            times["minimal"].append(time.perf_counter() - t)
        torch.set_num_threads(old)
    ratios = [a / b for a, b in zip(times["scorecast"], times["minimal"])]
    report = {
        "written": lib.now_iso(),
        "machine": lib.machine_info(),
        "commit": lib.git_commit(),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "torch_threads": threads,
        "rows": len(train_idx),
        "epochs": args.epochs,
        "epochs_run_by_scorecast": epochs_run,
        "steps": steps,
        "batch_size": recipe.training.batch_size,
        "seconds": times,
        "ratio_per_repeat": ratios,
        "ratio_median": statistics.median(ratios),
        "ms_per_step": {k: 1000 * statistics.median(v) / steps for k, v in times.items()},
        "goal": GOAL,
        "met": statistics.median(ratios) <= GOAL,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "overhead.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "overhead.md").write_text(render(report))
    print(render(report))
    return report


def render(r: dict) -> str:
    fmt = ", ".join
    return "\n".join(
        [
            "# Training overhead: scorecast's Lightning path vs a minimal PyTorch loop",
            "",
            f"Written by `bench/bench_overhead.py` on {r['written']}; {r['machine'].get('cores', '?')} CPU cores; "
            f"commit `{(r['commit'].get('commit') or '?')[:12]}`{' (with uncommitted changes)' if r['commit'].get('dirty') else ''}; load average before/after {r['load_before'][0]} / "
            f"{r['load_after'][0]} (a shared machine: other sessions' jobs ran meanwhile); torch threads "
            f"{r['torch_threads']} (the scorecast default for this head).",
            "",
            f"SHL transcripts (MiniLM, from the cache), recipes/shl-grammar-transcripts.yaml model and losses; "
            f"{r['rows']} training rows, {r['epochs']} epochs of batch {r['batch_size']} = {r['steps']} steps, "
            "no validation; both in one process, interleaved, one row per repeat.",
            "",
            "| repeat | scorecast `fit_member` (s) | minimal loop (s) | ratio |",
            "|---:|---:|---:|---:|",
            *[
                f"| {i + 1} | {a:.2f} | {b:.2f} | {a / b:.2f} |"
                for i, (a, b) in enumerate(zip(r["seconds"]["scorecast"], r["seconds"]["minimal"]))
            ],
            "",
            f"Median ratio {r['ratio_median']:.2f} (goal <= {r['goal']}: {'met' if r['met'] else 'not met'}); "
            f"ms per step: {fmt(f'{k} {v:.2f}' for k, v in r['ms_per_step'].items())}.",
            "",
        ]
    )


if __name__ == "__main__":
    main()
