"""Helpers of ``bench/run_accuracy.py``: the machine and commit the run happened on, recipes turned
into items and cached features (the same steps as ``scorecast cv``), metrics with bootstrap
intervals (``scorecast.metrics.functional``), and the markdown table.

Nothing here types a figure: every number in the output comes from a measurement of the run,
except the literature references, which are constants with their source.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# torch's intra-op threads inside a block (None: unchanged); the package's own, used by run_accuracy.py
from scorecast.training.trainer import torch_threads  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"


# ------------------------------------------------------------------------------ environment


def git_commit(repo: Path = REPO) -> dict[str, Any]:
    """{"commit": full hash or None, "dirty": working tree differs from it (None if unknown)}."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cores": cores,
        "cpu": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


# ------------------------------------------------------------------------------ recipes -> features


@dataclass
class Prepared:
    """A recipe (variant) with its items and their cached features, aligned."""

    recipe: Any  # scorecast.config.Recipe
    items: Any  # ItemSet
    features: Any  # FeatureSet
    recipe_file: str
    variant: str | None


def load(recipe_file: str, data_dir: Path, variant: str | None = None, overrides: dict[str, Any] | None = None):
    """The recipe ``recipes/<recipe_file>`` with ``${DATA}`` set to ``data_dir``."""
    from scorecast.config import load_recipe

    return load_recipe(RECIPES / recipe_file, variables={"DATA": str(data_dir)}, overrides=overrides, variant=variant)


def read_subset(data_config, limit: int | None, seed: int = 0):
    """The items of ``data_config``; with ``limit``, a random subset of that many (kept in file order)."""
    from scorecast.data.readers import read_items

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # rows a reader leaves out are listed in ItemSet.skipped
        items = read_items(data_config)
    if limit is not None and limit < len(items):
        pick = np.sort(np.random.default_rng(seed).choice(len(items), size=limit, replace=False))
        items = items.subset(pick.tolist())
    return items


def transcribed_only(recipe, items, cache):
    """The items whose audio the recipe's ASR already transcribed (in the cache's transcript store);
    all items where the recipe has no ASR step. For runs that cannot wait for every clip."""
    if recipe.asr is None:
        return items
    from scorecast.data.audio import audio_input_hash
    from scorecast.encoders.asr import TranscriptStore
    from scorecast.encoders.base import ENCODERS

    params = dict(recipe.asr.params) | ({"backend": recipe.asr.backend} if recipe.asr.backend else {})
    asr = ENCODERS.build("asr", **params)
    known = TranscriptStore(cache.root, asr.identity(), asr.identity_hash).load()
    return items.subset([i for i, item in enumerate(items) if audio_input_hash(item.audio) in known])


def featurize(recipe, items, cache):
    """(items, features) of the items every encoder could encode, aligned (as ``scorecast cv`` does);
    the recipe's ASR step first, where it has one (transcripts cached by audio content)."""
    from scorecast.encoders.asr import transcribe_if_needed
    from scorecast.encoders.pipeline import build_features

    transcribe_if_needed(recipe, items, cache)
    features = build_features(items, recipe.encoders, cache, progress=False)
    if list(features.ids) != list(items.ids):
        pos = {item_id: i for i, item_id in enumerate(items.ids)}
        items = items.subset([pos[i] for i in features.ids])
    return items, features


def featurize_splits(recipe, splits: dict[str, Any], cache) -> dict[str, tuple[Any, Any]]:
    """{name: (items, features)} of several item sets encoded in one pass per encoder (one model load)."""
    from scorecast.encoders.pipeline import build_features

    everything = [item for items in splits.values() for item in items]
    features = build_features(everything, recipe.encoders, cache, progress=False)
    if len(features) != len(everything):
        raise SystemExit(f"{recipe.name}: {len(everything) - len(features)} item(s) could not be encoded")
    out, start = {}, 0
    for name, items in splits.items():
        out[name] = (items, features.subset(np.arange(start, start + len(items))))
        start += len(items)
    return out


# ------------------------------------------------------------------------------ metrics


def scores(preds, target, names, n_boot: int, seed: int = 0, groups=None) -> dict[str, Any]:
    """``scorecast.metrics.compute_metrics`` (every value with its bootstrap interval):
    {"n", "utterance": {m: {value, low, high}}, ["n_systems", "system": {...}]}."""
    from scorecast.metrics.functional import MetricWarning, compute_metrics

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        return compute_metrics(
            np.asarray(preds, float),
            np.asarray(target, float),
            names=list(names),
            groups=groups,
            bootstrap=n_boot,
            seed=seed,
        )


def paired_difference(metric: str, preds_a, preds_b, target, n_boot: int, seed: int = 0) -> dict[str, float]:
    """metric(a) - metric(b) on the same items, with a paired percentile bootstrap interval (the same
    resampled items score both systems): ``scorecast.metrics.paired_bootstrap``."""
    from scorecast.metrics.functional import paired_bootstrap

    out = paired_bootstrap(metric, preds_a, preds_b, target, n=n_boot, seed=seed)
    return {key: float(out[key]) for key in ("value", "low", "high", "p_not_better")}


def row(name: str, kind: str, metrics: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """One line of a results table. ``kind``: anchor | scorecast | reference."""
    return {"name": name, "kind": kind, "metrics": metrics, **extra}


# ------------------------------------------------------------------------------ markdown


def fmt_entry(entry: dict[str, Any] | None, digits: int = 3) -> str:
    if not entry or entry.get("value") is None or entry["value"] != entry["value"]:
        return "–"
    text = f"{entry['value']:.{digits}f}"
    low, high = entry.get("low"), entry.get("high")
    if low is not None and high is not None and low == low and high == high:
        text += f" [{low:.{digits}f}, {high:.{digits}f}]"
    return text


def table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]]) -> list[str]:
    """Markdown lines; ``columns`` = (header, level, metric) read from ``row["metrics"][level][metric]``."""
    head = ["system", "kind", *[c[0] for c in columns], "time (s)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(columns) + 1)) + "|"]
    for r in rows:
        cells = [r["name"] + (" **(best)**" if r.get("best") else ""), r["kind"]]
        for _, level, metric in columns:
            cells.append(fmt_entry((r["metrics"].get(level) or {}).get(metric)))
        seconds = r.get("seconds")
        cells.append(f"{seconds:.1f}" if isinstance(seconds, (int, float)) else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    meta = report["meta"]
    m = meta["machine"]
    commit = meta["git"]["commit"] or "unknown"
    dirty = " (with uncommitted changes)" if meta["git"]["dirty"] else ""
    lines = [
        "# scorecast accuracy results",
        "",
        f"Written by `bench/run_accuracy.py` (do not edit by hand) on {meta['date']}"
        f"{' in --quick mode (tiny subsets; not results)' if meta['quick'] else ''}.",
        f"Machine: {m['cores']} CPU cores ({m['cpu']}), {m['platform']}, Python {m['python']}, torch {m['torch']}"
        f"{', GPU ' + m['gpu'] if m['gpu'] else ', no GPU'}. Commit `{commit[:12]}`{dirty}.",
        (
            f"Total run time {meta['seconds']:.0f} s ("
            + ", ".join(f"{k} {v:.0f} s" for k, v in meta["set_seconds"].items())
            + f"); embeddings came from the cache where present; training on {meta['train_threads'] or 'default'} "
            f"torch thread(s); load average at the end {meta['load_average'][0]:.1f} (other work shares the machine)."
            if meta["set_seconds"]
            else "This file was assembled from earlier runs (`--merge`): each section names the run it comes from."
        ),
        f"Every figure: value [95 % percentile bootstrap interval, {meta['bootstrap']} resamples of the scored items].",
        "`kind`: *anchor* = measured in this run without scorecast training; *scorecast* = a recipe in `recipes/`;"
        " *reference* = a figure from the literature, not measured here.",
    ]
    for key, res in report["sets"].items():
        lines += ["", f"## {res['title']}", "", res["protocol"], ""]
        if res.get("from_run"):
            lines[-1:] = ["", f"(This section comes from an earlier run: {res['from_run']}.)", ""]
        lines += table(res["rows"], res["columns"])
        if key == "stsb":
            g = res["best_minus_anchor"]
            lines += [
                "",
                f"Best head ({res['best_rule']}): **{res['best']}**. Its test Spearman minus the cosine's: "
                f"{fmt_entry(g['srcc'], 4)} (paired bootstrap); Pearson: {fmt_entry(g['lcc'], 4)}. "
                f"Goal ({res['goal']['text']}): **{'met' if res['goal']['met'] else 'not met'}**"
                f"{', interval above 0' if res['goal']['significant'] else ''}.",
            ]
        refs = [r for r in res["rows"] if r["kind"] == "reference"]
        for r in refs:
            lines += ["", f"Reference row: {r['source']}."]
        described = [r for r in res["rows"] if r.get("description")]
        if described:
            lines += ["", "Rows:"] + [
                f"- {r['name']}: {r['description']}" + (f" (seeds {r['seeds']})" if r.get("seeds") else "")
                for r in described
            ]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ sections of RESULTS.md


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- section:{name} (written by its bench script) -->", f"<!-- /section:{name} -->"


def replace_section(path: Path, name: str, text: str) -> None:
    """Put ``text`` between the section's markers in ``path`` (appended where the section is new)."""
    start, end = _markers(name)
    block = f"{start}\n{text.rstrip()}\n{end}\n"
    old = path.read_text() if path.is_file() else ""
    if start in old and end in old:
        head, rest = old.split(start, 1)
        new = head + block + rest.split(end, 1)[1].lstrip("\n")
    else:
        new = old.rstrip("\n") + ("\n\n" if old else "") + block
    path.write_text(new)


def kept_sections(path: Path) -> str:
    """The marked sections other bench scripts wrote into ``path`` (to keep when it is rewritten)."""
    import re

    old = path.read_text() if path.is_file() else ""
    found = re.findall(
        r"<!-- section:[^ ]+ \(written by its bench script\) -->.*?<!-- /section:[^ ]+ -->\n?", old, re.S
    )
    return "".join("\n" + s.rstrip("\n") + "\n" for s in found)
