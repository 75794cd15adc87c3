"""Start-up time of `scorecast serve` (until /healthz answers) and of `scorecast predict` on 10 items,
and the share of it that is Python import time.

Two bundles are trained here (as in bench_serve.py): text with the real ``sentence`` encoder
(packaged MiniLM) and audio with ``egemaps``; both with a ridge head. For each bundle and command:

* wall time: the median of ``--repeats`` fresh processes (``serve``: from spawning the process to
  the first 200 from /healthz, which the server gives only once the bundle is loaded and the encoder
  models are warmed up; ``predict``: the whole command on a 10-item table, features in memory
  (``--no-cache``) so every run encodes);
* import time: one more run under ``python -X importtime``; the sum of the cumulative times of the
  top-level imports (lazy imports inside functions included) divided by that run's own wall time
  gives the import share. The heaviest top-level imports are listed, and whether Lightning or
  sentence-transformers were imported at all.

Writes bench/results/startup.json and startup.md.

    .venv/bin/python bench/bench_startup.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serve import Server, build_audio_bundle, build_text_bundle, captions, speech_clips  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
_IMPORT_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)\s*$")


def parse_importtime(text: str) -> dict:
    """Sum and top entries of the top-level imports in ``-X importtime`` output."""
    top = []
    seen = set()
    for line in text.splitlines():
        m = _IMPORT_LINE.match(line)
        if not m:
            continue
        cumulative_us, indent, name = int(m.group(2)), len(m.group(3)), m.group(4)
        seen.add(name.split(".")[0])
        if indent <= 1:  # top level: one space after the bar, nested imports are indented further
            top.append((name, cumulative_us))
    total = sum(us for _, us in top) / 1e6
    heaviest = sorted(top, key=lambda x: -x[1])[:8]
    return {
        "import_s": round(total, 3),
        "heaviest": [{"module": n, "s": round(us / 1e6, 3)} for n, us in heaviest],
        "imported_lightning": "lightning" in seen or "pytorch_lightning" in seen,
        "imported_sentence_transformers": "sentence_transformers" in seen,
        "imported_torch": "torch" in seen,
    }


def cli(*args: str, importtime: bool = False) -> list[str]:
    return [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", "scorecast.cli", *args]


def time_predict(
    bundle: Path, table: Path, out: Path, options: list[str], importtime: bool = False
) -> tuple[float, str]:
    cmd = cli(
        "predict",
        str(bundle),
        str(table),
        "-o",
        str(out),
        "--no-cache",
        "--no-progress",
        *options,
        importtime=importtime,
    )
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"predict failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall, done.stderr


def time_serve(bundle: Path, log: Path, importtime: bool = False) -> tuple[float, str]:
    server = Server(bundle, log=log, python_flags=("-X", "importtime") if importtime else ())
    server.stop()
    return server.ready_s, log.read_text(errors="replace")


def measure(name: str, fn, repeats: int) -> dict:
    walls = [fn(False)[0] for _ in range(repeats)]
    wall_it, stderr = fn(True)
    imports = parse_importtime(stderr)
    return {
        "name": name,
        "wall_s_median": round(statistics.median(walls), 3),
        "wall_s_runs": [round(w, 3) for w in walls],
        "importtime_run_wall_s": round(wall_it, 3),
        "import_share": round(imports["import_s"] / wall_it, 3) if wall_it > 0 else None,
        **imports,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--items", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    import pandas as pd
    import soundfile as sf

    started = time.time()
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        work = Path(tmp)
        text_bundle = build_text_bundle(work / "text")
        audio_bundle = build_audio_bundle(work / "audio")
        text_table = work / "texts.csv"
        pd.DataFrame({"id": [f"t{i}" for i in range(args.items)], "caption": captions(args.items, seed=5)}).to_csv(
            text_table, index=False
        )
        clips = work / "clips"
        clips.mkdir()
        for i, wave in enumerate(speech_clips(args.items, 5.0, seed=6)):
            sf.write(clips / f"c{i}.wav", wave, 16000)
        audio_table = clips / "clips.csv"
        pd.DataFrame(
            {"id": [f"c{i}" for i in range(args.items)], "path": [f"c{i}.wav" for i in range(args.items)]}
        ).to_csv(audio_table, index=False)

        rows.append(measure("import scorecast.cli (the CLI itself)", time_cli_import, args.repeats))
        rows.append(
            measure(
                "serve, text bundle (sentence MiniLM)",
                lambda it: time_serve(text_bundle, work / "s-text.log", it),
                args.repeats,
            )
        )
        rows.append(
            measure(
                "serve, audio bundle (egemaps)",
                lambda it: time_serve(audio_bundle, work / "s-audio.log", it),
                args.repeats,
            )
        )
        rows.append(
            measure(
                f"predict {args.items} texts (sentence MiniLM)",
                lambda it: time_predict(text_bundle, text_table, work / "p.csv", ["--option", "text=caption"], it),
                args.repeats,
            )
        )
        rows.append(
            measure(
                f"predict {args.items} x 5 s audio (egemaps)",
                lambda it: time_predict(audio_bundle, audio_table, work / "p.csv", ["--option", "audio=path"], it),
                args.repeats,
            )
        )
    result = {
        "benchmark": "startup",
        "date": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "repeats": args.repeats,
        "rows": rows,
        "seconds": round(time.time() - started, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "startup.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "startup.md").write_text(markdown(result))
    print(markdown(result))


def time_cli_import(importtime: bool) -> tuple[float, str]:
    cmd = [sys.executable, *(["-X", "importtime"] if importtime else []), "-c", "import scorecast.cli"]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    return time.perf_counter() - t0, done.stderr


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [
        "# scorecast start-up time",
        "",
        f"{r['date']}; {m['cpus']} CPUs, load average before/after {m['load_average_before'][0]} / {m['load_average_after'][0]}; "
        f"median of {r['repeats']} fresh processes; import share from one extra run under `python -X importtime`. "
        "Written by bench/bench_startup.py.",
        "",
        "| command | wall s (median) | import s | import share | Lightning imported | sentence-transformers imported | heaviest imports |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        heavy = ", ".join(f"{h['module']} {h['s']:.2f}" for h in row["heaviest"][:4])
        lines.append(
            f"| {row['name']} | {row['wall_s_median']} | {row['import_s']} | {row['import_share']:.0%} | "
            f"{'yes' if row['imported_lightning'] else 'no'} | {'yes' if row['imported_sentence_transformers'] else 'no'} | {heavy} |"
        )
    lines += [
        "",
        "serve: from spawning the process to the first 200 from /healthz (the bundle is loaded and the encoder "
        "models warmed up before the port opens). predict: the whole command, features in memory.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
