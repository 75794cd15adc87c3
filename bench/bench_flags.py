"""How often the unfamiliar-input flags (scorecast.inference.novelty) fire on real, ordinary audio, and
whether they fire on what they are for.

* Audio flags (silence, clipping, truncation) on every clip of the shared sets with audio (SHL grammar
  Ogg, codec-MUSHRA FLAC, YourTTS FLAC, the first ``--yourtts`` of them): how many are flagged, and
  the cost per clip against decoding it with ``load_audio``.
* Feature distance on codec-MUSHRA eGeMAPS: the profile is built on the clips of half the signals and
  the other half's clips are checked (``--splits`` random halves): the share flagged is the false-alarm
  rate on new sentences of the same test; then a silent clip and a white-noise clip against the
  profile of all clips.

Needs ../shared/data (or $SCORECAST_DATA); stops with a message where it is absent. Bounded: a fixed
number of clips and splits. Writes bench/results/flags.json and flags.md (with the load average).

    .venv/bin/python bench/bench_flags.py [--splits 20] [--yourtts 400]
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
sys.path.insert(0, str(REPO / "src"))


def data_root() -> Path:
    return Path(os.environ.get("SCORECAST_DATA", REPO.parent / "shared" / "data"))


def audio_flag_counts(sets: dict[str, list[str]]) -> dict:
    from scorecast.data.audio import load_audio
    from scorecast.inference.novelty import item_audio_flags

    out = {}
    for name, files in sets.items():
        counts: collections.Counter = collections.Counter()
        examples = {}
        t0 = time.perf_counter()
        for f in files:
            for flag in item_audio_flags(f):
                kind = flag.split(":")[0]
                counts[kind] += 1
                examples.setdefault(kind, f"{Path(f).name}: {flag}")
        flag_s = time.perf_counter() - t0
        probe = files[:10]
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for f in probe:
                load_audio(f)
        load_s = (time.perf_counter() - t0) / max(len(probe), 1)
        out[name] = {
            "clips": len(files),
            "flagged": dict(counts),
            "examples": examples,
            "flag_ms_per_clip": round(1000 * flag_s / max(len(files), 1), 1),
            "load_audio_ms_per_clip": round(1000 * load_s, 1),
        }
    return out


def feature_flag_rates(files: list[str], splits: int) -> dict:
    import numpy as np

    from scorecast.cache.memory import MemoryCache
    from scorecast.config import EncoderSpec
    from scorecast.data.items import Item
    from scorecast.encoders.pipeline import build_features
    from scorecast.inference.novelty import feature_flags, input_profile

    spec = [EncoderSpec(name="egemaps")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fs = build_features([Item(id=f, audio=f) for f in files], spec, MemoryCache(), progress=False)
        rng = np.random.default_rng(1)
        odd = [
            Item(id="silence", audio=(np.zeros(72000, np.float32), 24000)),
            Item(id="white noise", audio=((0.3 * rng.standard_normal(72000)).astype(np.float32), 24000)),
        ]
        odd_fs = build_features(odd, spec, MemoryCache(), progress=False)
    signals = np.array([Path(i).parent.name for i in fs.ids])
    names = sorted(set(signals))
    rng = np.random.default_rng(0)
    rates = []
    for _ in range(splits):
        train = set(rng.choice(names, len(names) // 2, replace=False))
        inside = np.array([s in train for s in signals])
        profile = input_profile(fs.subset(np.flatnonzero(inside)))
        flags = feature_flags(profile, fs.subset(np.flatnonzero(~inside)))
        rates.append(float(np.mean([bool(f) for f in flags])))
    whole = feature_flags(input_profile(fs), odd_fs)
    return {
        "clips": len(fs),
        "signals": len(names),
        "splits": splits,
        "held_out_flagged_share": {
            "mean": round(float(np.mean(rates)), 4),
            "min": round(min(rates), 4),
            "max": round(max(rates), 4),
        },
        "odd_inputs": {item.id: whole[i] for i, item in enumerate(odd)},
    }


def markdown(res: dict) -> str:
    lines = [
        "# Unfamiliar-input flags on real audio (bench/bench_flags.py)",
        "",
        f"Measured {res['when']}; load average before {res['load_before']}, after {res['load_after']}.",
        "",
        "| set | clips | flagged (silence / clipping / truncated) | flags ms/clip | load_audio ms/clip |",
        "|---|---|---|---|---|",
    ]
    for name, r in res["audio_flags"].items():
        lines.append(
            f"| {name} | {r['clips']} | {r['flagged'] or 'none'} | {r['flag_ms_per_clip']} | {r['load_audio_ms_per_clip']} |"
        )
    f = res["feature_flags"]
    share = f["held_out_flagged_share"]
    lines += [
        "",
        f"Feature distance (codec-MUSHRA eGeMAPS, {f['clips']} clips of {f['signals']} signals): profile on half the "
        f"signals, flags on the other half, {f['splits']} random halves: {100 * share['mean']:.1f} % of the held-out "
        f"clips flagged (min {100 * share['min']:.1f} %, max {100 * share['max']:.1f} %).",
        "",
        "Against the profile of all clips:",
        *[f"- {k}: {v[0] if v else 'not flagged'}" for k, v in f["odd_inputs"].items()],
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=20)
    parser.add_argument("--yourtts", type=int, default=400)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    root = data_root()
    if not (root / "codec-mushra").is_dir():
        sys.exit(f"bench_flags: the shared data is not at {root} (set $SCORECAST_DATA); nothing measured")
    load_before = [round(x, 2) for x in os.getloadavg()]
    mushra = sorted(glob.glob(str(root / "codec-mushra" / "audio" / "**" / "*.flac"), recursive=True))
    sets = {
        "shl-grammar (Ogg)": sorted(glob.glob(str(root / "shl-grammar" / "audio" / "*.ogg"))),
        "codec-mushra (FLAC)": mushra,
        "yourtts-mos-pt (FLAC)": sorted(
            glob.glob(str(root / "yourtts-mos-pt" / "audio" / "**" / "*.flac"), recursive=True)
        )[: args.yourtts],
    }
    res = {"audio_flags": audio_flag_counts(sets), "feature_flags": feature_flag_rates(mushra, args.splits)}
    res["load_before"] = load_before
    res["load_after"] = [round(x, 2) for x in os.getloadavg()]
    res["when"] = time.strftime("%Y-%m-%d %H:%M")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "flags.json").write_text(json.dumps(res, indent=2))
    (args.out / "flags.md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
