"""Scoring a predictions table against a truth table (what ``scorecast evaluate`` runs): join the two
on the item id and compute the metrics, item- and system-level, with bootstrap intervals, and compare
against a baseline's predictions on the same items (``scorecast.metrics.compare``).

Follows the XACLE protocol (inner join on ``wav_file_name``; SRCC, LCC, KTAU, MSE over the matched
pairs, NaN pairs dropped) and the VoiceMOS/AudioMOS system-level protocol (per-system means).
Columns are detected where not given: ids from ``wav_file_name``, ``wav``, ``filename``, ``id``...;
predictions from ``prediction``, ``pred_score``...; truth from ``average_score``, ``MOS``,
``score``...; in header-less lists (``answer.txt``, MusicEval lists) the first column is the id and
the others are scores, paired in order.
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from pathlib import Path
from typing import Any

from scorecast.errors import ConfigError, DataError

ID_CANDIDATES = [
    "wav_file_name",
    "wav",
    "filename",
    "file_name",
    "file",
    "id",
    "ID",
    "wav_id",
    "utt_id",
    "wav_path",
    "path",
]
PRED_CANDIDATES = [
    "prediction",
    "pred_score",
    "pred",
    "pred_mos",
    "predicted",
    "prediction_score",
    "score",
    "MOS",
    "mos",
]
TRUTH_CANDIDATES = ["average_score", "MOS", "mos", "score", "label", "target", "truth", "gt", "true"]
MATCH_MODES = ("auto", "exact", "basename", "stem")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _has_header(first: list[str]) -> bool:
    return len(first) < 2 or not all(_is_number(f) for f in first[1:])


def _read(path: Path):
    from scorecast.data.table import load_table

    return load_table(path, header=_has_header)


def _pick(table, given: str | None, candidates: list[str], what: str) -> str:
    if given is not None:
        table.require([given], what)
        return given
    for c in candidates:
        if c in table.columns:
            return c
    if not table.has_header:
        return table.columns[0]
    raise DataError(
        f"cannot tell which column holds the {what}: expected one of {', '.join(candidates)} "
        f"(or name it with an option); the columns present are: {', '.join(table.columns)}",
        file=table.path,
    )


def _score_columns(table, given: list[str] | None, candidates: list[str], id_col: str, what: str) -> list[str]:
    if given:
        table.require(given, what)
        return list(given)
    if table.has_header:
        found = next((c for c in candidates if c in table.columns and c != id_col), None)
        if found is not None:
            return [found]
    numeric = [
        c
        for c in table.columns
        if c != id_col and all(_is_number(str(r.values.get(c))) or r.values.get(c) in ("", None) for r in table.rows)
    ]
    if not numeric:
        raise DataError(
            f"no column of {what} found; the columns present are: {', '.join(table.columns)}", file=table.path
        )
    return numeric if not table.has_header else numeric[:1]


def _key(item_id: str, mode: str) -> str:
    if mode == "exact":
        return item_id
    base = os.path.basename(item_id.replace("\\", "/"))
    return base if mode == "basename" else os.path.splitext(base)[0]


def _index(table, id_col: str, mode: str) -> dict[str, Any] | None:
    """key -> row; None when two rows share a key under this mode (DataError for exact ids)."""
    out: dict[str, Any] = {}
    for row in table.rows:
        item_id = table.view(row).ident(id_col)
        key = _key(item_id, mode)
        if key in out:
            if mode == "exact":
                raise DataError(
                    f"duplicated id {item_id!r}: first at row {out[key].number}, again at row {row.number}",
                    file=table.path,
                    row=row.number,
                    field=id_col,
                )
            return None
        out[key] = row
    return out


def _value(table, row, col: str) -> float:
    from scorecast.data.table import is_missing, parse_score

    raw = row.values.get(col)
    if is_missing(raw):
        return math.nan
    if isinstance(raw, str) and raw.strip().lower() == "nan":
        return math.nan
    return parse_score(raw, table.view(row), col)


def _shared_id_column(ptab, pid: str, ttab) -> str:
    """The truth column whose values match the most prediction ids (exact, base name or stem); the
    usual candidates first on a tie. Falls back to the candidate list when no column matches."""
    modes = ["exact", "basename", "stem"]
    pred_ids = [ptab.view(r).ident(pid) for r in ptab.rows]
    wanted = {m: {_key(i, m) for i in pred_ids} for m in modes}
    order = [c for c in ID_CANDIDATES if c in ttab.columns] + [c for c in ttab.columns if c not in ID_CANDIDATES]
    best, best_score = None, (0, 0)
    for col in order:
        try:
            values = [ttab.view(r).ident(col) for r in ttab.rows]
        except DataError:  # empty cells: not an id column
            continue
        counts = [len(wanted[m] & {_key(v, m) for v in values}) for m in modes]
        score = (max(counts), counts[0])  # the most matches; on a tie, exact matches over stems
        if score > best_score:
            best, best_score = col, score
    return best if best is not None else _pick(ttab, None, ID_CANDIDATES, "truth ids")


def recipe_group_column(source: str | Path, tables) -> str | None:
    """The group (system) column that a recipe's ``table`` reader reads, where one of ``tables`` has it.
    ``source``: a recipe YAML, or a bundle folder (its recipe is in scorecast.json)."""
    path = Path(source)
    if path.is_dir():
        manifest = path / "scorecast.json"
        if not manifest.is_file():
            raise ConfigError(f"--recipe {path}: expected a recipe YAML or a bundle folder with scorecast.json")
        raw = json.loads(manifest.read_text()).get("recipe") or {}
    else:
        from scorecast.config import read_recipe_file

        raw = read_recipe_file(path)
    data = raw.get("data") or {}
    group = (data.get("options") or {}).get("group") if data.get("reader", "table") == "table" else None
    if isinstance(group, str) and any(group in t.columns for t in tables):
        return group
    return None


def _system_truth(path: Path, n_targets: int) -> list[dict[str, float]]:
    table = _read(path)
    cols = table.columns
    if len(cols) < 1 + n_targets:
        raise DataError(
            f"system truth: expected a system id and {n_targets} score column(s), got {len(cols)} columns", file=path
        )
    out: list[dict[str, float]] = [{} for _ in range(n_targets)]
    for row in table.rows:
        view = table.view(row)
        system = view.ident(cols[0])
        for k in range(n_targets):
            out[k][system] = view.score(cols[1 + k])
    return out


def evaluate_files(
    predictions: str | Path,
    truth: str | Path,
    *,
    id_col: str | None = None,
    pred_id_col: str | None = None,
    truth_id_col: str | None = None,
    pred_cols: list[str] | None = None,
    truth_cols: list[str] | None = None,
    match: str = "auto",
    system_col: str | None = None,
    system_regex: str | None = None,
    system_truth: str | Path | None = None,
    metrics: list[str] | None = None,
    bootstrap: int = 0,
    bins: int | list[float] | None = None,
    baseline: str | Path | None = None,
    baseline_bootstrap: int = 1000,
    recipe: str | Path | None = None,
) -> dict[str, Any]:
    """Join the two tables and compute the metrics; returns the JSON-able result (see the CLI).
    With ``baseline`` (predictions read like ``predictions``), also ``"comparison"``: the paired
    bootstrap of the two on the ids of all three, ``baseline_bootstrap`` resamples. Without an id
    column named, the truth's id column is the one whose values match the most prediction ids.
    ``recipe`` (a recipe YAML or a scorer bundle) gives the system column where none is named: its
    ``table`` reader's ``group`` column."""
    from scorecast.jsonsafe import clean_json
    from scorecast.metrics.functional import METRICS, MetricWarning, compute_metrics, per_bin_rmse

    if match not in MATCH_MODES:
        raise ConfigError(f"--match: expected one of {', '.join(MATCH_MODES)}, got {match!r}")
    names = metrics or ["srcc", "lcc", "ktau", "mse", "rmse", "mae"]
    for name in names:
        METRICS.get(name)
    regex = None
    if system_regex is not None:
        try:
            regex = re.compile(system_regex)
        except re.error as exc:
            raise ConfigError(f"--system-regex: not a valid regular expression ({exc}): {system_regex!r}") from None
    ptab, ttab = _read(Path(predictions)), _read(Path(truth))
    pid = _pick(ptab, pred_id_col or id_col, ID_CANDIDATES, "prediction ids")
    if truth_id_col or id_col or match != "auto":
        tid = _pick(ttab, truth_id_col or id_col, ID_CANDIDATES, "truth ids")
    else:
        tid = _shared_id_column(ptab, pid, ttab)
    if system_col is None and system_regex is None and recipe is not None:
        system_col = recipe_group_column(recipe, [ttab, ptab])
    pcols = _score_columns(ptab, pred_cols, PRED_CANDIDATES, pid, "predictions")
    tcols = _score_columns(ttab, truth_cols, TRUTH_CANDIDATES, tid, "truth scores")
    if len(pcols) != len(tcols):
        raise ConfigError(
            f"expected as many prediction columns as truth columns, got {pcols} and {tcols}; name them with --pred-col/--truth-col"
        )
    modes = [match] if match != "auto" else ["exact", "basename", "stem"]
    best = None
    for mode in modes:
        pi, ti = _index(ptab, pid, mode), _index(ttab, tid, mode)
        if pi is None or ti is None:
            if match != "auto":
                raise DataError(
                    f"--match {mode}: two rows share an id once reduced to their {mode}",
                    file=predictions if pi is None else truth,
                )
            continue
        common = [k for k in pi if k in ti]
        if best is None or len(common) > len(best[3]):
            best = (mode, pi, ti, common)
    if best is None or not best[3]:
        p_ex = next(iter(ptab.rows), None)
        t_ex = next(iter(ttab.rows), None)
        raise DataError(
            f"no ids in common between {predictions} (e.g. {p_ex.values.get(pid) if p_ex else None!r}) and {truth} "
            f"(e.g. {t_ex.values.get(tid) if t_ex else None!r}); check --id-col and --match"
        )
    mode, pi, ti, common = best
    result: dict[str, Any] = {
        "predictions": str(predictions),
        "truth": str(truth),
        "id_columns": [pid, tid],
        "match": mode,
        "n_predictions": len(pi),
        "n_truth": len(ti),
        "n_matched": len(common),
        "unmatched_predictions": len(pi) - len(common),
        "unmatched_truth": len(ti) - len(common),
        "targets": {},
    }
    if result["unmatched_predictions"] or result["unmatched_truth"]:
        warnings.warn(
            f"{result['unmatched_predictions']} prediction id(s) have no truth and {result['unmatched_truth']} truth "
            f"id(s) have no prediction; evaluating the {len(common)} matched",
            stacklevel=2,
        )
    groups = None
    if system_col is not None:
        table, index = (ttab, ti) if system_col in ttab.columns else (ptab, pi)
        table.require([system_col], "--system-col")
        groups = [
            None if table.view(index[k]).missing(system_col) else table.view(index[k]).ident(system_col) for k in common
        ]
    elif regex is not None:
        group_ref: int | str = "system" if "system" in regex.groupindex else (1 if regex.groups else 0)
        groups = []
        for k in common:
            found = regex.search(ttab.view(ti[k]).ident(tid))
            groups.append(None if found is None else found.group(group_ref))
    if baseline is not None:
        from scorecast.metrics.compare import compare_target, shared_items

        if baseline_bootstrap <= 0:
            raise ConfigError(
                f"--bootstrap: a comparison with --baseline needs resamples (e.g. 1000), got {baseline_bootstrap}"
            )
        btab = _read(Path(baseline))
        bid = _pick(btab, pred_id_col or id_col, ID_CANDIDATES, "baseline ids")
        btab.require(
            pcols, f"the baseline predictions (the prediction column{'s' * (len(pcols) > 1)} of {predictions})"
        )
        bi = _index(btab, bid, mode)
        if bi is None:
            raise DataError(
                f"--match {mode}: two baseline rows share an id once reduced to their {mode}", file=baseline
            )
        shared, result["comparison"] = shared_items(baseline, bid, common, bi, baseline_bootstrap)
    sys_truth = _system_truth(Path(system_truth), len(tcols)) if system_truth is not None else [None] * len(tcols)
    for k, (pc, tc) in enumerate(zip(pcols, tcols)):
        preds = [_value(ptab, pi[key], pc) for key in common]
        target = [_value(ttab, ti[key], tc) for key in common]
        name = tc if ttab.has_header else f"column {tc}"
        entry = compute_metrics(preds, target, names, groups=groups, bootstrap=bootstrap, system_truth=sys_truth[k])
        entry = {"pred_col": pc, "truth_col": tc, **entry}
        if bins is not None:
            with warnings.catch_warnings():  # NaN pairs were reported once above
                warnings.simplefilter("ignore", MetricWarning)
                entry["per_bin"] = per_bin_rmse(preds, target, bins)
        result["targets"][name] = entry
        if baseline is not None:
            result["comparison"]["targets"][name] = compare_target(
                [_value(ptab, pi[key], pc) for key in shared],
                [_value(btab, bi[key], pc) for key in shared],
                [_value(ttab, ti[key], tc) for key in shared],
                names,
                baseline_bootstrap,
            )
    return clean_json(result)
