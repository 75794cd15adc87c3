"""Making results JSON-safe (metrics.json, scorecast.json) and comparing JSON-like dicts."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np


def clean_json(value: Any) -> Any:
    """A copy of ``value`` that ``json.dumps`` writes as strict JSON: NaN and infinite floats become
    None, numpy scalars Python numbers, tuples lists, and dict keys strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    if isinstance(value, np.generic):
        return clean_json(value.item())
    return value


def json_default(value: Any) -> Any:
    """``json.dumps(..., default=json_default)``: numpy scalars and arrays as numbers and lists,
    anything else as its ``str``."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def flatten_dict(d: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one dict of dotted keys (``{"a": {"b": 1}}`` -> ``{"a.b": 1}``)."""
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(flatten_dict(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: d}


def json_differences(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(dotted key, value in ``a``, value in ``b``) for every leaf that differs, sorted by key, after
    a JSON round trip of both (``str`` for what JSON cannot hold); a missing leaf reads ``"(absent)"``."""
    fa = flatten_dict(json.loads(json.dumps(a, default=str)))
    fb = flatten_dict(json.loads(json.dumps(b, default=str)))
    return [
        (k, fa.get(k, "(absent)"), fb.get(k, "(absent)"))
        for k in sorted(set(fa) | set(fb))
        if fa.get(k, "(absent)") != fb.get(k, "(absent)")
    ]
