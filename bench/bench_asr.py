"""ASR on the SHL clips: word error rate of scorecast's ``faster-whisper`` backend (packaged Whisper
base and tiny.en) against the transcripts that come with the data, and CPU seconds per audio second.

The given transcripts are themselves machine transcripts (the dataset uploader's ASR, not gold
text), so the WER is a disagreement rate between two ASR systems, not an accuracy against truth.

* WER over all clips goes through the content-addressed transcript store of the cache
  (``<cache>/transcripts/``): the first run transcribes every clip (Whisper base: many CPU-minutes),
  later runs read the store and cost nothing.
* Speed is measured afresh on every run on the first ``--speed-clips`` clips with a temporary store
  (process CPU time, all threads, and wall time per audio second), beside the load average.

    .venv/bin/python bench/bench_asr.py [--models whisper-tiny.en,whisper-base:24] [--beam-size 1]
        [--speed-clips 4] [--data DIR] [--cache DIR]

``MODEL:N`` scores that model on the first N clips (by id) only, and puts the other models' WER on
the same N clips beside it (side by side, from the same store). The default decoding (greedy, VAD,
word timestamps) is recipes/grammar.yaml's, so the grammar bench and this one share transcripts.

Writes bench/results/asr.json, bench/results/asr.md and its section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def words_of(text: str) -> list[str]:
    """Lower-cased words without punctuation (the normalisation both sides get)."""
    return _WORD.findall(text.lower())


def edit_distance(hyp: list[str], ref: list[str]) -> int:
    """Levenshtein distance between two word lists (substitutions, insertions, deletions)."""
    prev = list(range(len(ref) + 1))
    for i, h in enumerate(hyp, start=1):
        cur = [i] + [0] * len(ref)
        for j, r in enumerate(ref, start=1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (h != r))
        prev = cur
    return prev[-1]


def corpus_wer(hyps: list[str], refs: list[str]) -> dict[str, float]:
    """Corpus WER (total edits / total reference words) and the median per-clip WER."""
    edits, total, per_clip = 0, 0, []
    for hyp, ref in zip(hyps, refs):
        h, r = words_of(hyp), words_of(ref)
        e = edit_distance(h, r)
        edits, total = edits + e, total + len(r)
        per_clip.append(e / max(len(r), 1))
    return {"wer": edits / max(total, 1), "median_clip_wer": float(np.median(per_clip)), "ref_words": total}


def read_items(data: Path, limit: int | None):
    from scorecast.data.readers import READERS

    reader = READERS.build("shl", require_audio=True)
    items = list(reader.read(data / "shl-grammar" / "train_with_transcripts.csv", on_error="skip"))
    items.sort(key=lambda it: it.id)
    return items[:limit] if limit else items


def audio_seconds(items) -> float:
    import soundfile as sf

    return float(sum(sf.info(it.audio).duration for it in items))


def transcribe(items, model: str, beam_size: int, cache_root: Any) -> dict[str, str]:
    import copy

    from scorecast.encoders.asr import transcribe_items

    params = {"backend": "faster-whisper", "model": model, "beam_size": beam_size, "as_field": "asr"}
    return transcribe_items([copy.deepcopy(it) for it in items], params, cache=cache_root)


def measure_model(model: str, beam_size: int, items, speed_items, cache_root: Path) -> dict[str, Any]:
    refs = [it.texts["transcript"] for it in items]
    with tempfile.TemporaryDirectory(prefix="scorecast-asr-speed-") as fresh:
        cpu, wall = time.process_time(), time.perf_counter()
        transcribe(speed_items, model, beam_size, fresh)  # includes loading the model, as a first call does
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    seconds = audio_seconds(speed_items)
    t = time.perf_counter()
    hyps = transcribe(items, model, beam_size, cache_root)
    fill_seconds = time.perf_counter() - t
    return {
        "model": model,
        "beam_size": beam_size,
        "clips": len(items),
        "hyps": hyps,
        **corpus_wer([hyps[it.id] for it in items], refs),
        "speed": {
            "clips": len(speed_items),
            "audio_s": seconds,
            "cpu_s": cpu,
            "wall_s": wall,
            "cpu_per_audio_s": cpu / seconds,
            "wall_per_audio_s": wall / seconds,
        },
        "store_pass_s": fill_seconds,
    }


def render(report: dict[str, Any]) -> str:
    m = report["meta"]
    lines = [
        "## ASR on the SHL clips (bench/bench_asr.py)",
        "",
        "SHL clips with audio (45-60 s, 16 kHz). WER against the "
        "transcripts that come with the data, which are themselves MACHINE transcripts (the uploader's ASR), so this is "
        "agreement between two ASR systems, not accuracy against gold text. Words lower-cased, punctuation removed. "
        f"Speed: CPU seconds (all threads of the process) per audio second on the first {m['speed_clips']} clips, "
        "model load included, on a fresh store.",
        "",
        "| model | clips | corpus WER | median clip WER | CPU s / audio s | wall s / audio s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in report["rows"]:
        s = r["speed"]
        lines.append(
            f"| {r['model']} (beam {r['beam_size']}) | {r['clips']} | {r['wer']:.3f} | {r['median_clip_wer']:.3f} | "
            f"{s['cpu_per_audio_s']:.3f} | {s['wall_per_audio_s']:.3f} |"
        )
    for c in report.get("side_by_side", []):
        lines.append(
            f"| {c['model']} (beam {c['beam_size']}), the same {c['clips']} clips | {c['clips']} | {c['wer']:.3f} | "
            f"{c['median_clip_wer']:.3f} | – | – |"
        )
    lines += [
        "",
        f"Backend faster-whisper (int8, VAD, word timestamps, language en). Load average at the end "
        f"{', '.join(f'{x:.2f}' for x in m['load_average'])} on {m['cores']} cores; {m['date']}; "
        f"commit {m['git']['commit']} (dirty: {m['git']['dirty']}). Command: `{m['command']}`.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path(os.environ.get("SCORECAST_DATA", REPO.parent / "shared" / "data")))
    p.add_argument(
        "--cache", type=Path, default=None, help="cache root (default $SCORECAST_CACHE or ~/.cache/scorecast)"
    )
    p.add_argument("--models", default="whisper-tiny.en,whisper-base:24", help="MODEL or MODEL:N (first N clips)")
    p.add_argument("--beam-size", type=int, default=1)
    p.add_argument("--speed-clips", type=int, default=4)
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    p.add_argument("--results", type=Path, default=REPO / "bench" / "RESULTS.md", help="its section goes here")
    p.add_argument("--render-only", action="store_true", help="rewrite asr.md and the section from asr.json")
    args = p.parse_args(argv)
    sys.path.insert(0, str(REPO / "bench"))
    import accuracy_lib as lib

    if args.render_only:
        report = json.loads((args.out / "asr.json").read_text())
        (args.out / "asr.md").write_text(render(report))
        lib.replace_section(args.results, "asr", render(report))
        return report
    if not (args.data / "shl-grammar").is_dir():
        raise SystemExit(f"SHL data not found under {args.data} (pass --data or set SCORECAST_DATA)")
    from scorecast.cache.store import EmbeddingCache

    cache = EmbeddingCache(args.cache)
    items = read_items(args.data, None)
    speed_items = items[: args.speed_clips]
    rows, side = [], []
    for spec in [m.strip() for m in args.models.split(",") if m.strip()]:
        model, _, limit = spec.partition(":")
        subset = items[: int(limit)] if limit else items
        print(f"{model}: {len(subset)} clips", flush=True)
        rows.append(measure_model(model, args.beam_size, subset, speed_items, cache.root))
        if limit:  # the models before it, on the same clips
            for other in rows[:-1]:
                if other["clips"] > len(subset):
                    hyps = [other["hyps"][it.id] for it in subset]
                    wer = corpus_wer(hyps, [it.texts["transcript"] for it in subset])
                    side.append({"model": other["model"], "beam_size": other["beam_size"], "clips": len(subset), **wer})
    for r in rows:
        r.pop("hyps")
    meta = {
        "date": lib.now_iso(),
        "cores": len(os.sched_getaffinity(0)),
        "load_average": os.getloadavg(),
        "git": lib.git_commit(),
        "speed_clips": len(speed_items),
        "command": "python bench/bench_asr.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    report = {"meta": meta, "rows": rows, "side_by_side": side}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "asr.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "asr.md").write_text(render(report))
    if args.results is not None:
        lib.replace_section(args.results, "asr", render(report))
    print(render(report))
    return report


if __name__ == "__main__":
    main()
