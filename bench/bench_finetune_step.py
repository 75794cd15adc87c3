"""CPU time of one optimiser step of end-to-end fine-tuning: recipes/stsb.yaml [mpnet-finetune] (one
shared all-mpnet-base-v2 on both sentences, siamese cosine -> regression head) with the top k
blocks trainable, on batches of ``--batch`` STS-B training pairs; and of one no-gradient forward of a
batch (what validation and prediction cost). Each k runs twice: the whole model forward in every
step, and with ``finetune_cache_frozen`` (the frozen blocks' states computed once, timed per
sentence; a step runs the top k blocks only). Runs the real fine-tuning module (scorecast.adapt):
the batches' tokenisation is outside the timed step, as in a data loader. Plans a fine-tuning run's
length before starting it. Prints a table and writes bench/results/finetune_step.json.

    .venv/bin/python bench/bench_finetune_step.py [--top-k 2,4] [--batch 16] [--steps 4] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import accuracy_lib as lib  # noqa: E402

REPO = lib.REPO


def time_steps(data: Path, top_k: int, batch: int, steps: int, cache: bool) -> dict[str, float]:
    import torch

    from scorecast.adapt.finetune import build_parts, split_encoders
    from scorecast.runs.cv import training_targets

    overrides = {
        f"encoders.{i}.params.{k}": v
        for i in (0, 1)
        for k, v in (("finetune_top_k", top_k), ("finetune_cache_frozen", cache))
    }
    overrides.update({"training.batch_size": batch, "training.calibrate_head": False})
    recipe = lib.load("stsb.yaml", data / "stsb", "mpnet-finetune", overrides=overrides)
    items = lib.read_subset(recipe.data, batch * (steps + 1), seed=0)
    targets = training_targets(recipe, items)
    idx = np.arange(len(items))
    start = time.perf_counter()
    parts = build_parts(recipe, items, *split_encoders(recipe), targets, idx, idx[:0], None)
    build_s = time.perf_counter() - start  # loading the model (+ the frozen states of 2 x len(items) sentences)
    module = parts.module
    module.train()
    opt = torch.optim.AdamW(module.param_group_specs())
    batches = list(parts.train_loader)[: steps + 1]
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    seconds = []
    for b in batches:  # the first step (allocations, lazy set-up) is not counted
        start = time.perf_counter()
        loss, _ = module.loss(module(b), b["target"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        seconds.append(time.perf_counter() - start)
    module.eval()
    forward = []
    with torch.no_grad():
        for b in batches[:2]:
            start = time.perf_counter()
            module(b)
            forward.append(time.perf_counter() - start)
    return {
        "top_k": top_k,
        "cache_frozen": cache,
        "build_s": build_s,
        "trainable_params": trainable,
        "step_s_median": statistics.median(seconds[1:]),
        "step_s": [round(s, 3) for s in seconds],
        "eval_forward_s": statistics.median(forward),
    }


def main(argv: list[str] | None = None) -> list[dict[str, float]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path(os.environ.get("SCORECAST_DATA", REPO.parent / "shared" / "data")))
    p.add_argument("--top-k", default="2,4", help="comma-separated numbers of trained blocks")
    p.add_argument("--batch", type=int, default=16, help="pairs per step")
    p.add_argument("--steps", type=int, default=4, help="timed steps per k (after one untimed)")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "finetune_step.json")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    rows = []
    for k in (int(x) for x in args.top_k.split(",")):
        for cache in (False, True):
            rows.append(time_steps(args.data, k, args.batch, args.steps, cache))
            r = rows[-1]
            print(
                f"top_k={k} cache_frozen={cache}: set-up {r['build_s']:.1f} s, "
                f"{r['trainable_params'] / 1e6:.1f} M trained parameters, step {r['step_s_median']:.2f} s "
                f"(median of {args.steps}; all {r['step_s']}), no-gradient forward {r['eval_forward_s']:.2f} s "
                f"per {args.batch} pairs",
                flush=True,
            )
    meta = {"date": lib.now_iso(), "machine": lib.machine_info(), "git": lib.git_commit(), "batch_pairs": args.batch}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    return rows


if __name__ == "__main__":
    main()
