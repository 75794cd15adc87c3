"""Listening tests with per-listener ratings: scorecast's recipes against zero-shot anchors measured in
the same run on the same clips, with the listeners' own ceiling. Writes bench/results/listening.json
and the ``listening-tests`` section of bench/RESULTS.md (bench/run_accuracy.py keeps the sections other scripts write).

* ``codec-mushra``: recipes/codec-mushra.yaml (signal-grouped CV; clip and condition level).
* ``yourtts-naturalness``: recipes/yourtts-naturalness.yaml (speaker-grouped CV; clip and system level).
* ``yourtts-similarity``: recipes/yourtts-similarity.yaml (audio pairs; speaker-grouped CV).

Anchors (no training): DistillMOS's MOS, DNSMOS P.808 and P.835 OVRL of the (generated) clip, and for
the pairs the cosine of the two clips' eGeMAPS vectors and, where a variant reads them, of their
Whisper-base encoder states (each z-scored over the set) and of their speaker embeddings (raw: SECS). Each recipe variant's
out-of-fold predictions are scored with 95 % bootstrap intervals; the paired bootstrap of
(scorecast - best anchor) uses the same resampled clips (systems at system level) for both.

``--select`` adds a row whose variant is chosen per outer fold by an inner CV on that fold's training
items only (clip SRCC of the inner out-of-fold predictions): the honest figure of "pick the best
variant", since the outer figures never see the choice. ``--choose-default`` runs the same inner CV
on all items: the variant it picks is what the nested choice deploys, and so the recipe's default.

    .venv/bin/python bench/run_listening.py [--sets codec-mushra,...] [--variants default,ridge]
        [--seeds 0,1] [--select] [--choose-default] [--data DIR] [--cache DIR] [--reuse EARLIER.json]

``--reuse``: a recipe's default is what the nested choice picks, so it is known only after a run of the
named candidates; a second run then trains the default alone and copies the earlier run's variant and
nested-choice rows (marked (†), refused unless the clip list is identical).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import accuracy_lib as lib  # noqa: E402

REPO = lib.REPO
SETS = {
    "codec-mushra": {
        "recipe": "codec-mushra.yaml",
        "data": "codec-mushra",
        "title": "Codec MUSHRA (listener-aware, prior, full reference)",
        "level": "condition",
        "goals": {"clip": 0.45, "system": 0.95},
        # the hidden reference is ref.flac itself, which any full-reference measure recognises at once: the
        # default and the anchors are also scored without it
        "hidden_reference": "Reference",
    },
    "yourtts-naturalness": {
        "recipe": "yourtts-naturalness.yaml",
        "data": "yourtts-mos-pt",
        "title": "YourTTS naturalness MOS (Portuguese)",
        "level": "system",
        "goals": {"clip": 0.60, "system": 0.90},
    },
    "yourtts-similarity": {
        "recipe": "yourtts-similarity.yaml",
        "data": "yourtts-mos-pt",
        "title": "YourTTS speaker similarity of audio pairs (Portuguese)",
        "level": "system",
        "goals": {"clip": 0.55},
    },
}


def anchors(features, specs=()) -> dict[str, np.ndarray]:
    """Zero-shot scores on the same clips (the features the recipe already computes)."""
    from scorecast.encoders.dnsmos import SCORE_NAMES
    from scorecast.encoders.pipeline import build_encoder

    out = {}
    for name, arr in features.pooled.items():
        if name.startswith("distillmos"):
            out[f"DistillMOS MOS of {name} (zero-shot)"] = arr[:, 0]
        if name.startswith("dnsmos"):
            out[f"DNSMOS P.808 of {name} (zero-shot)"] = arr[:, SCORE_NAMES.index("p808")]
            out[f"DNSMOS OVRL of {name} (zero-shot)"] = arr[:, SCORE_NAMES.index("ovrl")]
    for prefix, (label, standardise) in PAIR_ANCHORS.items():
        gen = features.pooled.get(f"{prefix}_gen", features.pooled.get(prefix))  # pairs, or stimulus vs reference
        ref = features.pooled.get(f"{prefix}_ref")
        if gen is not None and ref is not None:
            out[f"cosine of the two clips' {label} (zero-shot)"] = pair_cosine(gen, ref, standardise)
    for spec in specs:  # raw full-reference measures (higher is better) of the stimulus against its reference
        if spec.name == "fullref" and spec.feature_name in features.pooled:
            names = build_encoder(spec).feature_names()
            for key, label in FULLREF_ANCHORS.items():
                if key in names:
                    out[f"{label} of {spec.feature_name} (zero-shot)"] = features.pooled[spec.feature_name][
                        :, names.index(key)
                    ]
    return out


#: fullref measures (feature name -> label) scored raw as zero-shot anchors
FULLREF_ANCHORS = {"pesq_wb": "wide-band PESQ", "stoi": "STOI", "estoi": "ESTOI"}


#: pair features (``<prefix>_gen`` or ``<prefix>``, and ``<prefix>_ref``) whose cosine is a zero-shot anchor:
#: label, and whether each feature is z-scored over the set first (not for the speaker embedding: its raw
#: cosine is SECS, the speaker-encoder cosine similarity the YourTTS paper reports with this very encoder)
PAIR_ANCHORS = {
    "egemaps": ("eGeMAPS", True),
    "whisper": ("Whisper-base encoder states", True),
    "speaker": ("speaker embeddings (Resemblyzer GE2E: SECS)", False),
}


def pair_cosine(gen: np.ndarray, ref: np.ndarray, standardise: bool = True) -> np.ndarray:
    """Row-wise cosine of two clips' vectors, each feature z-scored over both sides of the whole set first
    where ``standardise``."""
    a, b = np.asarray(gen, float), np.asarray(ref, float)
    if standardise:
        both = np.concatenate([a, b])
        mu, sd = both.mean(0), both.std(0) + 1e-8
        a, b = (a - mu) / sd, (b - mu) / sd
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)


def cached_items(recipe, items, cache):
    """The items every encoder of ``recipe`` already has in the cache (``--cached-only``)."""
    from scorecast.encoders.pipeline import plan_encoding

    keep = set(range(len(items)))
    for spec in recipe.encoders:
        plan = plan_encoding(items, spec, cache)
        keep -= {pos for pos, key in plan.refs if key in plan.todo}
    return items.subset(sorted(keep))


def system_means(values: np.ndarray, groups: list[str]) -> tuple[list[str], np.ndarray]:
    systems = sorted(set(groups))
    g = np.asarray(groups)
    return systems, np.array([np.mean(values[g == s]) for s in systems])


def score_row(name, kind, preds, truth, groups, n_boot, **extra) -> dict[str, Any]:
    sc = lib.scores(preds, truth, ("srcc", "lcc", "rmse"), n_boot, groups=groups)
    return lib.row(name, kind, {"clip": sc["utterance"], "system": sc.get("system", {})}, **extra)


def paired(preds, anchor, truth, groups, n_boot) -> dict[str, Any]:
    """(scorecast - anchor) SRCC, paired bootstrap over clips and over systems."""
    out = {"clip": lib.paired_difference("srcc", preds, anchor, truth, n_boot)}
    _, sp = system_means(np.asarray(preds, float), groups)
    _, sa = system_means(np.asarray(anchor, float), groups)
    _, st = system_means(np.asarray(truth, float), groups)
    out["system"] = lib.paired_difference("srcc", sp, sa, st, n_boot)
    return out


def run_variant(recipe, items, features, work: Path, threads):
    from scorecast.data.features import FeatureSet
    from scorecast.runs.cv import run_cv

    names = [spec.feature_name for spec in recipe.encoders]  # a variant may read fewer features
    missing = [n for n in names if n not in features.pooled]
    if missing:
        raise SystemExit(f"{recipe.name}: features {missing} are not among the base recipe's {list(features.pooled)}")
    features = FeatureSet(list(features.ids), {n: features.pooled[n] for n in names}, {})

    with warnings.catch_warnings(), lib.torch_threads(threads):
        warnings.simplefilter("ignore", UserWarning)
        return run_cv(recipe, items, features, work)


#: what the inner CV compares (``--select-by``): clip SRCC, or the mean of clip and system (condition) SRCC of
#: the inner out-of-fold predictions; both are computed on the outer training items only
CRITERIA = {
    "clip": lambda clip, system: clip,
    "clip+system": lambda clip, system: (clip + system) / 2,
}


def inner_scores(spec, data_dir, v, items, features, overrides, work: Path, threads):
    """(clip SRCC, system SRCC, result) of variant ``v``'s 3-fold CV (grouped as the recipe) on ``items``."""
    inner = {**overrides, "cv.folds": 3}
    recipe = lib.load(spec["recipe"], data_dir, None if v == "default" else v, overrides=inner)
    res = run_variant(recipe, items, features, work, threads)
    m = res.metrics["targets"]["score"]
    system = (m.get("system") or {}).get("srcc", {}).get("value", float("nan"))
    return float(m["utterance"]["srcc"]["value"]), float(system), res


def pick(scores: dict[str, tuple[float, float]], criterion: str) -> tuple[str, float]:
    """The variant with the best finite criterion value (the first listed on ties), and that value."""
    values = {v: CRITERIA[criterion](*sc) for v, sc in scores.items()}
    finite = {v: x for v, x in values.items() if np.isfinite(x)} or values
    best = max(finite, key=finite.get)
    return best, values[best]


def choice_on_all_items(spec, data_dir, variants, items, features, overrides, work: Path, threads, log):
    """The variant the same inner CV (clip SRCC) picks on ALL items: what the nested choice would deploy, and
    so the recipe's default (its honest figure is the nested row, whose folds never saw their own choice)."""
    sel = select_on_all(spec, data_dir, variants, items, features, overrides, work, threads, log, ("clip",))
    v = sel["picks"]["clip"]
    scores = {k: e["clip"] for k, e in sel["scores"].items()}
    return {"variant": v, "inner_srcc": scores[v], "inner_srcc_by_variant": scores, "candidates": list(variants)}


def nested_select(spec, data_dir, variants, items, features, overrides, work: Path, threads, log, criteria=("clip",)):
    """Out-of-fold predictions where each outer fold's variant is picked by an inner CV (3 folds, grouped
    as the recipe) on that fold's training items; returns {criterion: (predictions, choices per fold)}."""
    from scorecast.inference.bundle import load_bundle
    from scorecast.runs.cv import training_targets
    from scorecast.training.splits import make_folds

    base = lib.load(spec["recipe"], data_dir, None, overrides=overrides)
    y = training_targets(base, items)
    out = {c: (np.full(len(items), np.nan), []) for c in criteria}
    for fold in make_folds(base.cv, items, y, seed=base.cv.seeds[0] * 1000):
        if fold.repeat != 0:
            continue
        inner_items, inner_fs = items.subset(fold.train.tolist()), features.subset(fold.train)
        scores, runs = {}, {}
        for v in variants:
            clip, system, res = inner_scores(
                spec, data_dir, v, inner_items, inner_fs, overrides, work / f"sel-{fold.fold}-{v}", threads
            )
            scores[v], runs[v] = (clip, system), res
        for c in criteria:
            v, value = pick(scores, c)
            bundle = load_bundle(runs[v].bundle_path)
            out[c][0][fold.val] = bundle.predict_features(features.subset(fold.val)).mean[:, 0]
            clip, system = scores[v]
            out[c][1].append({"fold": fold.fold, "variant": v, "inner_srcc": clip, "inner_system_srcc": system})
            log(
                f"  select by {c}, fold {fold.fold}: {v} ({c} {value:.3f}; inner clip SRCC {clip:.3f}, system {system:.3f})"
            )
    return out


def select_on_all(spec, data_dir, variants, items, features, overrides, work: Path, threads, log, criteria):
    """The inner CV of every candidate on ALL items (what a recipe's default takes): scores and picks."""
    scores = {}
    for v in variants:
        clip, system, _ = inner_scores(spec, data_dir, v, items, features, overrides, work / f"all-{v}", threads)
        scores[v] = (clip, system)
        log(f"  all items, {v}: inner clip SRCC {clip:.3f}, system {system:.3f}")
    picks = {c: pick(scores, c)[0] for c in criteria}
    log(f"  all items picks: {picks}")
    return {"scores": {v: {"clip": a, "system": b} for v, (a, b) in scores.items()}, "picks": picks}


def strength(level: dict[str, Any]) -> float:
    """|SRCC| of an anchor at one level; 0 where it is undefined (a constant anchor, e.g. the cosine of a
    reference with itself at every reference row)."""
    value = (level.get("srcc") or {}).get("value")
    return 0.0 if value is None or not np.isfinite(value) else abs(float(value))


def run_set(key: str, args, cache, work: Path, log) -> dict[str, Any]:
    spec = SETS[key]
    data_dir = args.data / spec["data"]
    overrides = {"cv.seeds": args.seeds} if args.seeds else {}
    base = lib.load(spec["recipe"], data_dir, None, overrides=overrides)
    variants = ["default", *base.variants] if args.variants is None else args.variants
    reused = reused_rows(args.reuse, key) if args.reuse else None
    union = {}  # every encoder any variant run here reads, once
    for v in dict.fromkeys([*variants, *(args.select_among or []), *(reused["variants"] if reused else [])]):
        r = base if v == "default" else lib.load(spec["recipe"], data_dir, v, overrides=overrides)
        union.update({e.feature_name: e for e in r.encoders})
    everything = base.model_copy(update={"encoders": list(union.values())})
    t = time.perf_counter()
    items = lib.read_subset(base.data, None)
    n_read = len(items)
    if args.cached_only:
        items = cached_items(everything, items, cache)
    items, features = lib.featurize(everything, items, cache)
    encode_s = time.perf_counter() - t
    truth = items.targets("score")
    groups = [str(g) for g in items.groups()]
    ids_sha = hashlib.sha256("\n".join(map(str, items.ids)).encode()).hexdigest()
    rows = []
    zs = anchors(features, everything.encoders)
    for name, raw in zs.items():
        rows.append(score_row(name, "anchor", raw, truth, groups, args.bootstrap, description="no training"))
    best_clip = max(rows, key=lambda r: strength(r["metrics"]["clip"]))
    best_sys = max(rows, key=lambda r: strength(r["metrics"]["system"]))
    ceiling, default_pred = None, None

    def scored(name: str, pred, **extra) -> dict[str, Any]:
        """A scorecast row with its paired Δ against the best clip and system anchors."""
        vs = {
            "vs_best_anchor": paired(pred, zs[best_clip["name"]], truth, groups, args.bootstrap),
            "vs_best_system_anchor": paired(pred, zs[best_sys["name"]], truth, groups, args.bootstrap),
        }
        return score_row(name, "scorecast", pred, truth, groups, args.bootstrap, **extra, **vs)

    for v in variants:
        recipe = lib.load(spec["recipe"], data_dir, None if v == "default" else v, overrides=overrides)
        t = time.perf_counter()
        res = run_variant(recipe, items, features, work / f"{key}-{v}", args.train_threads)
        seconds = time.perf_counter() - t
        pred = res.oof["pred.score"].to_numpy()
        if v == "default":
            default_pred = pred
        ceiling = ceiling or res.metrics["targets"]["score"].get("ceiling")
        row = scored(
            f"{recipe.name}" if v == "default" else f"{base.name} [{v}]",
            pred,
            seconds=seconds,
            seeds=list(recipe.cv.seeds),
            variant=v,
        )
        rows.append(row)
        m = row["metrics"]
        log(
            f"{key} {v}: clip SRCC {m['clip']['srcc']['value']:.3f}, system {m['system']['srcc']['value']:.3f} ({seconds:.0f} s)"
        )
    without = (
        without_hidden_reference(spec["hidden_reference"], default_pred, zs, truth, groups, args.bootstrap)
        if spec.get("hidden_reference") and default_pred is not None
        else None
    )
    select_all = None
    if args.select:
        t = time.perf_counter()
        among = args.select_among or variants
        nested = nested_select(
            spec, data_dir, among, items, features, overrides, work, args.train_threads, log, args.select_by
        )
        seconds = (time.perf_counter() - t) / len(nested)
        for criterion, (pred, choices) in nested.items():
            by = "" if criterion == "clip" else f" by inner {criterion} SRCC"
            rows.append(
                scored(
                    f"{base.name} [nested choice of {', '.join(among)}{by}]",
                    pred,
                    seconds=seconds,
                    variant="select",
                    criterion=criterion,
                    choices=choices,
                )
            )
        if args.select_all:
            select_all = select_on_all(
                spec, data_dir, among, items, features, overrides, work, args.train_threads, log, args.select_by
            )
    default_choice = reused.get("default_choice") if reused else None
    if args.choose_default:
        among = args.select_among or variants
        default_choice = choice_on_all_items(
            spec, data_dir, among, items, features, overrides, work, args.train_threads, log
        )
    if reused:
        if reused["ids_sha"] != ids_sha:
            raise SystemExit(
                f"--reuse: {reused['path']} scored other clips than this run ({reused['n_items']} vs {len(items)})"
            )
        best_now = {"clip": best_clip["name"], "system": best_sys["name"]}
        for r in reused["rows"]:  # a Δ measured against another (or an unrecorded) best anchor is not this table's
            if r.get("best_anchor") != best_now:
                r["vs_best_anchor"] = r["vs_best_system_anchor"] = None
                r["delta_dropped"] = True
        rows += reused["rows"]
        select_all = select_all or reused["select_all_items"]
    default = next((r for r in rows if r.get("variant") == "default"), None)
    goals = {}
    if default is not None:
        clip = default["metrics"]["clip"]["srcc"]["value"]
        goals["clip"] = {
            "goal": spec["goals"]["clip"],
            "value": clip,
            "met": clip >= spec["goals"]["clip"],
            "above_best_anchor": default["vs_best_anchor"]["clip"]["low"] > 0,
        }
        if "system" in spec["goals"]:
            s = default["metrics"]["system"]["srcc"]["value"]
            goals["system"] = {
                "goal": spec["goals"]["system"],
                "value": s,
                "met": s >= spec["goals"]["system"],
                "above_best_anchor": default["vs_best_system_anchor"]["system"]["low"] > 0,
            }
    return {
        "title": spec["title"],
        "recipe": f"recipes/{spec['recipe']}",
        "n_items": len(items),
        "n_read": n_read,
        "n_systems": len(set(groups)),
        "level": spec["level"],
        "cv": f"{base.cv.folds}-fold {base.cv.kind} by {base.cv.group_by or 'group'}",
        "best_anchor": {"clip": best_clip["name"], "system": best_sys["name"]},
        "ceiling": ceiling,
        "ids_sha": ids_sha,
        "rows": rows,
        "default_choice": default_choice,
        "goals": goals,
        "encode_seconds": encode_s,
        **({"select_all_items": select_all} if select_all else {}),
        **({"without_hidden_reference": without} if without else {}),
    }


def without_hidden_reference(name: str, pred, zs, truth, groups, n_boot) -> dict[str, Any]:
    """The default's and the anchors' clip and system SRCC on the clips of every condition but the hidden
    reference ``name`` (the same out-of-fold predictions), with the default's Δ against each anchor there."""
    keep = np.asarray([g != name for g in groups])
    if keep.all() or not keep.any():
        raise SystemExit(f"hidden reference condition {name!r}: expected some but not all clips in it")
    sub = [g for g, k in zip(groups, keep) if k]
    default = score_row("default", "scorecast", pred[keep], truth[keep], sub, n_boot)["metrics"]
    anchors = {
        a: {
            "metrics": score_row(a, "anchor", raw[keep], truth[keep], sub, n_boot)["metrics"],
            "default_vs": paired(pred[keep], raw[keep], truth[keep], sub, n_boot),
        }
        for a, raw in zs.items()
    }
    return {
        "condition": name,
        "n_items": int(keep.sum()),
        "n_systems": len(set(sub)),
        "default": default,
        "anchors": anchors,
    }


def reused_rows(path: Path, key: str) -> dict[str, Any]:
    """The named-variant and nested-choice rows of set ``key`` in an earlier run's JSON (``--reuse``), each
    marked with the run that measured it; the caller checks that run scored the very same clips."""
    part = json.loads(Path(path).read_text())
    res = part["sets"].get(key)
    if res is None or "ids_sha" not in res:
        raise SystemExit(f"--reuse: {path} holds no set {key!r} with its clip list (ids_sha)")
    rows = [
        dict(
            r,
            reused_from=r.get("reused_from") or part["meta"]["command"],
            # what its Δ was measured against: that run's best anchor, unknown for a row it reused itself
            best_anchor=r.get("best_anchor") or (None if r.get("reused_from") else res.get("best_anchor")),
        )
        for r in res["rows"]
        if r["kind"] == "scorecast"
    ]
    rows = [r for r in rows if r.get("variant") != "default"]
    named = [r["variant"] for r in rows if r.get("variant") not in (None, "select")]
    choice = res.get("default_choice")
    if choice:
        choice = dict(choice, reused_from=part["meta"]["command"])
    return {
        "path": str(path),
        "ids_sha": res["ids_sha"],
        "n_items": res["n_items"],
        "rows": rows,
        "variants": named,
        "default_choice": choice,
        "select_all_items": res.get("select_all_items"),
    }


def subset_note(res: dict[str, Any]) -> str:
    n, total = res["n_items"], res.get("n_read", res["n_items"])
    if n == total:
        return ""
    return (
        f" (**a subset**: the {n} of {total} rated clips whose features were in the cache when this ran, --cached-only)"
    )


def render(report: dict[str, Any]) -> str:
    meta = report["meta"]
    lines = [
        "## Listening tests: per-listener ratings, priors, pairs (bench/run_listening.py)",
        "",
        f"Written by `{meta['command']}` on {meta['date']} (commit `{(meta['git']['commit'] or 'unknown')[:12]}`"
        f"{', with uncommitted changes' if meta['git']['dirty'] else ''}). Figures: value [95 % bootstrap interval, {meta['bootstrap']} "
        "resamples]; anchors are zero-shot scores on the very same clips; Δ = paired bootstrap of (row - best "
        "anchor) SRCC on the same resampled clips (systems for the system column).",
    ]
    for res in report["sets"].values():
        lvl = res["level"]
        lines += ["", f"### {res['title']}", ""]
        if res.get("run"):
            r = res["run"]
            lines += [
                f"Run: `{r['command']}` on {r['date']}, {r['seconds']:.0f} s, load average {r['load_average'][0]:.1f}.",
                "",
            ]
        c = res.get("ceiling") or {}
        ceil = ""
        if c:
            ceil = (
                f" Ceiling (split-half of the {c['listeners']} listeners, Spearman-Brown corrected, {c['splits']} "
                f"splits): clip SRCC {c['clip']['srcc']:.3f}, {lvl} SRCC {c.get('system', {}).get('srcc', float('nan')):.3f}."
            )
        lines += [
            f"{res['n_items']} clips{subset_note(res)}, {res['n_systems']} {lvl}s; {res['cv']}; `{res['recipe']}`.{ceil}",
            "",
            f"| system | kind | clip SRCC | clip LCC | {lvl} SRCC | Δ clip SRCC vs best anchor | Δ {lvl} SRCC vs best anchor | time (s) |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in res["rows"]:
            m = r["metrics"]
            d1 = lib.fmt_entry((r.get("vs_best_anchor") or {}).get("clip"))
            d2 = lib.fmt_entry((r.get("vs_best_system_anchor") or {}).get("system"))
            secs = f"{r['seconds']:.0f}" if isinstance(r.get("seconds"), (int, float)) else "–"
            mark = " (†)" if r.get("reused_from") else ""
            lines.append(
                f"| {r['name']}{mark} | {r['kind']} | {lib.fmt_entry(m['clip'].get('srcc'))} | {lib.fmt_entry(m['clip'].get('lcc'))} "
                f"| {lib.fmt_entry(m['system'].get('srcc'))} | {d1} | {d2} | {secs} |"
            )
        reused = sorted({r["reused_from"] for r in res["rows"] if r.get("reused_from")})
        if reused:
            lines += [
                "",
                "(†) measured on the very same clips by the earlier run `" + "`, `".join(reused) + "` (--reuse).",
            ]
        if any(r.get("delta_dropped") for r in res["rows"]):
            lines += ["", "Δ shown as – for reused rows whose Δ was measured against another best anchor."]
        for r in res["rows"]:
            if r.get("choices"):
                by = f" (by inner {r['criterion']} SRCC)" if r.get("criterion", "clip") != "clip" else ""
                lines += [
                    "",
                    f"Nested choice per outer fold{by}: "
                    + ", ".join(f"fold {c['fold']}: {c['variant']}" for c in r["choices"])
                    + ".",
                ]
        lines += select_all_lines(res.get("select_all_items"), lvl)
        dc = res.get("default_choice")
        if dc:
            lines += [
                "",
                f"Choice on all {res['n_items']} items (the same inner CV; the recipe's default): {dc['variant']} "
                f"(inner clip SRCC {dc['inner_srcc']:.3f}; among {', '.join(dc['candidates'])})"
                + (" (†)." if dc.get("reused_from") else "."),
            ]
        lines += without_reference_lines(res.get("without_hidden_reference"), lvl)
        g = res.get("goals") or {}
        if g:
            parts = []
            for level, e in g.items():
                parts.append(
                    f"{level} SRCC {e['value']:.3f} (goal ≥ {e['goal']:.2f}: {'met' if e['met'] else 'not met'}; "
                    f"interval of Δ vs the best anchor {'above 0' if e['above_best_anchor'] else 'not above 0'})"
                )
            lines += ["", "Default recipe: " + "; ".join(parts) + "."]
    return "\n".join(lines) + "\n"


def without_reference_lines(w: dict[str, Any] | None, level: str) -> list[str]:
    """The default and the best anchors without the hidden reference condition."""
    if not w:
        return []
    d = w["default"]
    best = max(w["anchors"].items(), key=lambda kv: strength(kv[1]["metrics"]["clip"]))
    vs = best[1]["default_vs"]["clip"]
    return [
        "",
        f"Without the hidden reference (condition '{w['condition']}': the reference clip itself; {w['n_items']} clips, "
        f"{w['n_systems']} {level}s): default clip SRCC {lib.fmt_entry(d['clip']['srcc'])}, {level} SRCC "
        f"{lib.fmt_entry(d['system']['srcc'])}; best anchor there, {best[0]}: clip SRCC "
        f"{lib.fmt_entry(best[1]['metrics']['clip']['srcc'])}; Δ clip SRCC (default - that anchor) "
        f"{vs['value']:.3f} [{vs['low']:.3f}, {vs['high']:.3f}].",
    ]


def select_all_lines(sel: dict[str, Any] | None, level: str) -> list[str]:
    """The inner CV of every candidate on all items (``--select-all``): scores and what each criterion picks."""
    if not sel:
        return []
    scores = "; ".join(f"{v} {e['clip']:.3f} / {e['system']:.3f}" for v, e in sel["scores"].items())
    picks = ", ".join(f"by {c} SRCC: {v}" for c, v in sel["picks"].items())
    return [
        "",
        f"Inner 3-fold CV on all clips (what the recipe's default takes), clip / {level} SRCC: {scores}. Picks: {picks}.",
    ]


def merge_reports(paths: list[Path], args) -> dict[str, Any]:
    """One report from several runs' JSON files (each keeps its own meta, shown per set)."""
    report: dict[str, Any] = {"sets": {}, "runs": []}
    for path in paths:
        part = json.loads(path.read_text())
        for key, res in part["sets"].items():
            res["run"] = part["meta"]
            report["sets"][key] = res
        report["runs"].append(part["meta"])
    report["meta"] = report["runs"][-1]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    lib.replace_section(args.md, "listening-tests", render(report))
    print(f"wrote {args.json} and the listening-tests section of {args.md}", flush=True)
    return report


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path(os.environ.get("SCORECAST_DATA", REPO.parent / "shared" / "data")))
    p.add_argument("--cache", type=Path, default=None)
    p.add_argument("--sets", default=",".join(SETS))
    p.add_argument("--variants", default=None, help="comma-separated (default: the recipe and all its variants)")
    p.add_argument("--seeds", default=None, help="override cv.seeds, e.g. 0,1")
    p.add_argument("--select", action="store_true", help="add the nested-CV choice among the variants")
    p.add_argument("--select-among", default=None, help="comma-separated candidates for --select (default: --variants)")
    p.add_argument(
        "--select-by",
        default="clip",
        help=f"comma-separated inner-CV criteria among {', '.join(CRITERIA)}: one nested-choice row each (default clip)",
    )
    p.add_argument(
        "--select-all",
        action="store_true",
        help="with --select: also run every candidate's inner CV on ALL items and record what each criterion picks "
        "(the choice a recipe's default takes)",
    )
    p.add_argument(
        "--choose-default",
        action="store_true",
        help="also run the inner CV on all items among --select-among (or --variants): the variant it picks is "
        "the recipe's default",
    )
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--cached-only", action="store_true", help="score only the clips whose features are cached")
    p.add_argument("--train-threads", type=int, default=1)
    p.add_argument(
        "--reuse",
        type=Path,
        default=None,
        help="an earlier run's listening JSON on the very same clips: copy its named-variant and nested-choice "
        "rows (marked) instead of training them again; the default row is always trained here",
    )
    p.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "listening.json")
    p.add_argument("--md", type=Path, default=REPO / "bench" / "RESULTS.md")
    p.add_argument(
        "--merge",
        default=None,
        help="comma-separated listening JSON files of earlier runs (one set each): write their sets together "
        "to --json and the RESULTS.md section, running nothing",
    )
    args = p.parse_args(argv)
    if args.merge:
        return merge_reports([Path(x) for x in args.merge.split(",")], args)
    args.seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else None
    args.variants = [v.strip() for v in args.variants.split(",")] if args.variants else None
    if args.variants == ["none"]:  # train no variant (e.g. only --choose-default, with --reuse)
        args.variants = []
    args.select_among = [v.strip() for v in args.select_among.split(",")] if args.select_among else None
    args.select_by = [c.strip() for c in args.select_by.split(",") if c.strip()]
    if not args.select_by or any(c not in CRITERIA for c in args.select_by):
        raise SystemExit(f"--select-by: expected some of {', '.join(CRITERIA)}, got {args.select_by}")
    if not args.data.is_dir():
        raise SystemExit(f"data folder not found: {args.data} (pass --data or set SCORECAST_DATA); skipped")
    from scorecast.cache.store import EmbeddingCache

    start = time.perf_counter()
    report: dict[str, Any] = {"sets": {}}
    with tempfile.TemporaryDirectory(prefix="scorecast-listening-") as work:
        for key in [s.strip() for s in args.sets.split(",") if s.strip()]:
            if key not in SETS:
                raise SystemExit(f"--sets: unknown set {key!r}; expected some of {list(SETS)}")
            report["sets"][key] = run_set(
                key, args, EmbeddingCache(args.cache), Path(work), lambda m: print(m, flush=True)
            )
    report["meta"] = {
        "date": lib.now_iso(),
        "machine": lib.machine_info(),
        "git": lib.git_commit(),
        "load_average": os.getloadavg(),
        "bootstrap": args.bootstrap,
        "seconds": time.perf_counter() - start,
        "command": "python bench/run_listening.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    for res in report["sets"].values():
        res["run"] = dict(report["meta"])
    from scorecast.jsonsafe import clean_json

    report = clean_json(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    lib.replace_section(args.md, "listening-tests", render(report))
    print(f"wrote {args.json} and the listening-tests section of {args.md}", flush=True)
    return report


if __name__ == "__main__":
    main()
