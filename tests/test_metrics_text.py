"""One text rendering of metrics.json's figures and baselines tables (CLI, report, model card)."""

from __future__ import annotations

import numpy as np

from scorecast.inference.card_checks import baseline_lines
from scorecast.metrics.text import BASELINE_COLUMNS, baseline_tables, format_interval, format_value


def test_values_and_intervals():
    assert format_value(0.123456) == "0.1235" and format_value(np.float32(0.5)) == "0.5000"
    assert format_value(None) == format_value(float("nan")) == format_value("x") == "n/a"
    assert format_interval({"low": 0.1, "high": np.float64(0.25)}) == "[0.1000, 0.2500]"
    assert format_interval({"low": None, "high": None, "reason": "constant predictions"}) == "constant predictions"
    assert format_interval({"low": float("nan"), "high": 1.0}) == ""


METRICS = {
    "targets": {"mos": {"utterance": {"srcc": {"value": 0.61, "low": 0.5, "high": 0.7}}}},
    "baselines": {
        "metric": "srcc",
        "bootstrap": 100,
        "targets": {
            "mos": {
                "best": "ridge",
                "baselines": {
                    "mean": {
                        "kind": "constant",
                        "utterance": {"srcc": {"value": None, "low": None, "high": None, "reason": "constant"}},
                        "model_vs": {"utterance": {"srcc": {"value": None, "reason": "undefined"}}},
                    },
                    "ridge": {
                        "kind": "ridge",
                        "utterance": {"srcc": {"value": 0.55, "low": 0.4, "high": 0.66}},
                        "model_vs": {
                            "utterance": {"srcc": {"value": 0.06, "low": 0.01, "high": 0.11, "verdict": "better"}}
                        },
                    },
                },
            }
        },
    },
}


def test_baseline_tables_rows_by_hand():
    [(target, metric, rows)] = baseline_tables(METRICS)
    assert (target, metric) == ("mos", "srcc")
    assert rows == [
        ["model", "scorecast", "0.6100", "[0.5000, 0.7000]", "", "", ""],
        ["mean", "constant", "n/a", "constant", "n/a", "undefined", ""],
        ["ridge (best)", "ridge", "0.5500", "[0.4000, 0.6600]", "0.0600", "[0.0100, 0.1100]", "better"],
    ]
    assert all(len(r) == len(BASELINE_COLUMNS) for r in rows)
    assert baseline_tables({}) == []


def test_model_card_lines_hold_the_same_rows():
    lines = baseline_lines(METRICS)
    assert "| ridge (best) | ridge | 0.5500 | [0.4000, 0.6600] | 0.0600 | [0.0100, 0.1100] | better |" in lines
    assert lines[4].count("|") == len(BASELINE_COLUMNS) + 1
