"""``scorecast evaluate``: the XACLE protocol reproduced exactly, AudioMOS-style system level, and bad input."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from scipy import stats
from sklearn.metrics import mean_squared_error
from typer.testing import CliRunner

from scorecast.cli.evaluate import register
from scorecast.errors import ConfigError, DataError
from scorecast.metrics.evaluate import evaluate_files


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:  # a group, as the real app is once it holds several verbs
        pass

    register(app)
    return app


@pytest.fixture
def xacle_pair(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(1)
    n = 400
    names = [f"{i}.wav" for i in range(n)]
    truth = np.round(rng.uniform(0, 10, n), 3)
    truth[:40] = np.round(truth[:40])  # ties, as real MOS tables have
    preds = np.round(0.4 * truth + rng.normal(3, 1.5, n), 2)
    pd.DataFrame({"wav_file_name": names, "text": "a caption, with a comma", "average_score": truth}).to_csv(
        tmp_path / "validation_average.csv", index=False
    )
    order = rng.permutation(n)[:350]
    frame = pd.DataFrame(
        {"wav_file_name": [names[i] for i in order] + ["unknown.wav"], "prediction": list(preds[order]) + [1.0]}
    )
    frame.loc[5, "prediction"] = np.nan
    frame.to_csv(tmp_path / "predictions.csv", index=False)
    return tmp_path / "predictions.csv", tmp_path / "validation_average.csv"


def _xacle_reference(pred_path: Path, truth_path: Path, pred_col: str = "prediction") -> dict[str, float]:
    """The XACLE evaluation as its script does it: pandas inner merge on wav_file_name, NaN pairs
    dropped, then the library calls."""
    df_pred = pd.read_csv(pred_path)
    df_ref = pd.read_csv(truth_path, usecols=["wav_file_name", "average_score"])
    df = pd.merge(df_pred, df_ref, on="wav_file_name", how="inner").dropna(subset=[pred_col, "average_score"])
    p, t = df[pred_col].to_numpy(), df["average_score"].to_numpy()
    return {
        "srcc": stats.spearmanr(p, t).statistic,
        "lcc": stats.pearsonr(p, t).statistic,
        "ktau": stats.kendalltau(p, t).statistic,
        "mse": mean_squared_error(t, p),
        "n": len(df),
    }


def test_xacle_protocol_is_reproduced_exactly(xacle_pair: tuple[Path, Path], tmp_path: Path) -> None:
    pred_path, truth_path = xacle_pair
    out = tmp_path / "result.json"
    result = CliRunner().invoke(_app(), ["evaluate", str(pred_path), str(truth_path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "SRCC" in result.output and "unknown" not in result.output
    data = json.loads(out.read_text())
    ref = _xacle_reference(pred_path, truth_path)
    entry = data["targets"]["average_score"]
    assert entry["n"] == ref["n"] == 349
    for name in ("srcc", "lcc", "ktau", "mse"):
        assert entry["utterance"][name]["value"] == pytest.approx(ref[name], rel=1e-12, abs=1e-12), name
    assert data["n_matched"] == 350 and data["unmatched_predictions"] == 1 and data["unmatched_truth"] == 50
    assert any("1 prediction id(s) have no truth and 50 truth id(s)" in w for w in data["warnings"])
    assert any("dropped 1 of 350 pairs" in w for w in data["warnings"])


def test_baseline_pred_score_column_is_detected(xacle_pair: tuple[Path, Path], tmp_path: Path) -> None:
    pred_path, truth_path = xacle_pair
    renamed = tmp_path / "inference_result_for_validation.csv"
    pd.read_csv(pred_path).rename(columns={"prediction": "pred_score"}).to_csv(renamed, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = evaluate_files(renamed, truth_path, metrics=["srcc"])
    assert data["targets"]["average_score"]["pred_col"] == "pred_score"
    ref = _xacle_reference(renamed, truth_path, "pred_score")
    assert data["targets"]["average_score"]["utterance"]["srcc"]["value"] == pytest.approx(ref["srcc"], abs=1e-12)


def test_audiomos_answer_against_list_with_systems(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    ids = [f"audiomos2025-track1-S{s:03d}_P{p:03d}" for s in range(1, 7) for p in range(1, 6)]
    mi, ta = rng.uniform(1, 5, len(ids)), rng.uniform(1, 5, len(ids))
    pmi, pta = mi + rng.normal(0, 0.5, len(ids)), ta + rng.normal(0, 0.8, len(ids))
    (tmp_path / "dev_mos_list.txt").write_text("".join(f"{i}.wav,{a:.4f},{b:.4f}\n" for i, a, b in zip(ids, mi, ta)))
    (tmp_path / "answer.txt").write_text("".join(f"{i},{a},{b}\n" for i, a, b in zip(ids, pmi, pta)))
    systems = {f"S{s:03d}": (float(s), float(7 - s)) for s in range(1, 7)}
    (tmp_path / "system_mos.csv").write_text("".join(f"{k},{a},{b}\n" for k, (a, b) in systems.items()))
    result = evaluate_files(
        tmp_path / "answer.txt",
        tmp_path / "dev_mos_list.txt",
        system_regex=r"-(?P<system>S\d+)_",
        metrics=["lcc", "srcc", "mse"],
    )
    assert result["match"] == "stem" and result["n_matched"] == 30
    mi_entry, ta_entry = result["targets"]["column 2"], result["targets"]["column 3"]
    truth_mi = np.round(mi, 4)
    assert mi_entry["utterance"]["lcc"]["value"] == pytest.approx(stats.pearsonr(pmi, truth_mi).statistic, abs=1e-12)
    sys_p = pmi.reshape(6, 5).mean(1)
    sys_t = truth_mi.reshape(6, 5).mean(1)
    assert mi_entry["n_systems"] == 6
    assert mi_entry["system"]["srcc"]["value"] == pytest.approx(stats.spearmanr(sys_p, sys_t).statistic, abs=1e-12)
    assert ta_entry["system"]["mse"]["value"] == pytest.approx(
        mean_squared_error(np.round(ta, 4).reshape(6, 5).mean(1), pta.reshape(6, 5).mean(1))
    )
    given = evaluate_files(
        tmp_path / "answer.txt",
        tmp_path / "dev_mos_list.txt",
        system_regex=r"(S\d+)_",
        system_truth=tmp_path / "system_mos.csv",
        metrics=["lcc"],
    )
    expected = stats.pearsonr(pta.reshape(6, 5).mean(1), [7 - s for s in range(1, 7)]).statistic
    assert given["targets"]["column 3"]["system"]["lcc"]["value"] == pytest.approx(expected, abs=1e-12)


def test_system_column_bootstrap_and_bins(tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": list("abcdefgh"), "score": [1, 2, 3, 4, 5, 6, 7, 8], "sys": list("xxyyzzww")})
    frame.to_csv(tmp_path / "truth.csv", index=False)
    frame.assign(prediction=[1.5, 2, 2.5, 5, 5, 7, 6, 8]).drop(columns=["score", "sys"]).to_csv(
        tmp_path / "pred.csv", index=False
    )
    out = tmp_path / "r.json"
    result = CliRunner().invoke(
        _app(),
        [
            "evaluate",
            str(tmp_path / "pred.csv"),
            str(tmp_path / "truth.csv"),
            "--system-col",
            "sys",
            "--bootstrap",
            "50",
            "--bins",
            "0,4,8",
            "--metrics",
            "rmse,srcc",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    entry = json.loads(out.read_text())["targets"]["score"]
    assert entry["n_systems"] == 4 and set(entry["utterance"]) == {"rmse", "srcc"}
    assert (
        entry["utterance"]["rmse"]["low"] <= entry["utterance"]["rmse"]["value"] <= entry["utterance"]["rmse"]["high"]
    )
    assert [b["n"] for b in entry["per_bin"]] == [3, 5]


def test_bad_input(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("wav_file_name,average_score\na.wav,1\nb.wav,2\n")
    (tmp_path / "p.csv").write_text("wav_file_name,prediction\nx.wav,1\n")
    with pytest.raises(DataError, match="no ids in common"):
        evaluate_files(tmp_path / "p.csv", tmp_path / "t.csv")
    (tmp_path / "p2.csv").write_text("wav_file_name,prediction\na.wav,1\nb.wav,high\n")
    with pytest.raises(DataError, match=r"p2\.csv, row 3, field 'prediction': non-numeric score"):
        evaluate_files(tmp_path / "p2.csv", tmp_path / "t.csv")
    (tmp_path / "p3.csv").write_text("wav_file_name,prediction\na.wav,1\na.wav,2\n")
    with pytest.raises(DataError, match="duplicated id 'a.wav': first at row 2, again at row 3"):
        evaluate_files(tmp_path / "p3.csv", tmp_path / "t.csv")
    (tmp_path / "p4.csv").write_text("name,value\na.wav,1\n")
    with pytest.raises(DataError, match="cannot tell which column holds the prediction ids"):
        evaluate_files(tmp_path / "p4.csv", tmp_path / "t.csv")
    with pytest.raises(ConfigError, match="unknown metric 'auc'"):
        evaluate_files(tmp_path / "p.csv", tmp_path / "t.csv", metrics=["auc"])
    with pytest.raises(DataError, match="missing column 'nope'"):
        evaluate_files(tmp_path / "p.csv", tmp_path / "t.csv", pred_cols=["nope"])


@pytest.mark.parametrize("pred_suffix,truth_suffix", [(".jsonl", ".parquet"), (".tsv", ".json")])
def test_other_table_formats_give_the_same_result(
    xacle_pair: tuple[Path, Path], tmp_path: Path, pred_suffix: str, truth_suffix: str
) -> None:
    pred_path, truth_path = xacle_pair
    converted = []
    for src, suffix in ((pred_path, pred_suffix), (truth_path, truth_suffix)):
        frame = pd.read_csv(src)
        out = tmp_path / f"{src.stem}{suffix}"
        if suffix == ".jsonl":
            frame.to_json(out, orient="records", lines=True)
        elif suffix == ".json":
            frame.to_json(out, orient="records")
        elif suffix == ".parquet":
            frame.to_parquet(out, index=False)
        else:
            frame.to_csv(out, sep="\t", index=False)
        converted.append(out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = evaluate_files(*converted, metrics=["srcc", "lcc", "ktau", "mse"])
    ref = _xacle_reference(pred_path, truth_path)
    entry = data["targets"]["average_score"]
    assert entry["n"] == ref["n"]
    for name in ("srcc", "lcc", "ktau", "mse"):
        assert entry["utterance"][name]["value"] == pytest.approx(ref[name], rel=1e-12, abs=1e-12)
