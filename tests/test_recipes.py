"""Every recipe in recipes/ runs end to end through the CLI.

* every recipe (and each of its variants) loads strictly and its components build;
* XACLE, DA5401, AudioMOS track 1 and the grammar engine run ``scorecast cv`` then
  ``scorecast predict --submission`` on small data generated in their exact file formats
  (tests/recipe_data.py), and the submission files are checked line by line;
* the shared benchmark recipes (STS-B, SHL grammar, codec MUSHRA) run on subsets of the real data
  in ../shared/data (skipped where absent): a subset table written to a temporary folder that
  mirrors the set's layout, its audio folder symlinked, never copied;
* the "with local weights" swap named in each recipe's comment block runs with tiny random models
  (tests/tiny_models.py) saved to folders and loaded through the local-folder code path, offline.

Runs are kept small (2 folds, 1 seed, 2 epochs, 16-40 items, 1-1.5 s clips); features go through
one embedding cache shared by the whole module, so variants of a recipe re-encode nothing.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import recipe_data as rd
from conftest import REPO, shared_data_dir
from scorecast.cli import app
from scorecast.config import load_recipe

RECIPES = REPO / "recipes"
RECIPE_NAMES = sorted(p.stem for p in RECIPES.glob("*.yaml"))
QUICK = ["--set", "training.max_epochs=2", "--set", "cv.folds=2", "--set", "cv.seeds=[0]", "--set", "evaluate.bootstrap=20"]
RUN_FILES = ("recipe.yaml", "items.csv", "oof.csv", "metrics.json", "history.csv", "bundle/scorecast.json", "bundle/MODEL_CARD.md")
FLOAT = r"-?\d+(\.\d+)?(e-?\d+)?"


def recipe_path(name: str) -> Path:
    return RECIPES / f"{name}.yaml"


def raw_recipe(name: str) -> dict:
    return yaml.safe_load(recipe_path(name).read_text())


def recipe_variables(name: str) -> list[str]:
    return sorted(set(re.findall(r"\$\{(\w+)", recipe_path(name).read_text())))


def invoke(*args) -> str:
    """Run the CLI in-process; fail with its output and traceback unless it exits 0."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exit_code != 0:
        import traceback

        trace = "".join(traceback.format_exception(*result.exc_info)) if result.exc_info else ""
        raise AssertionError(f"scorecast {' '.join(map(str, args))} exited {result.exit_code}:\n{result.output}\n{trace}")
    return result.output


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing a run writes by default (lightning_logs, runs/) lands in the repo


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def cv(name: str, out: Path, cache: Path, variables: dict[str, Path | str], *extra: str, variant: str | None = None) -> Path:
    args = ["cv", recipe_path(name), "-o", out, "--cache", cache, *QUICK, *extra]
    for key, value in variables.items():
        args += ["--var", f"{key}={value}"]
    if variant:
        args += ["--variant", variant]
    invoke(*args)
    return out


def check_run(out: Path, targets: list[str], n_items: int, *, system: bool = False, test: bool = False) -> dict:
    """The run folder is complete, every metric is finite, every item has a finite prediction."""
    for name in RUN_FILES:
        assert (out / name).is_file(), f"{out}: {name} missing"
    metrics = json.loads((out / "metrics.json").read_text())
    levels = ["utterance"] + (["system"] if system else [])
    for target in targets:
        for level in levels:
            entries = metrics["targets"][target][level]
            assert {"rmse", "lcc", "srcc"} <= set(entries), (target, level, sorted(entries))
            for metric, entry in entries.items():
                assert math.isfinite(entry["value"]), f"{out.name}: {target} {level} {metric} = {entry['value']}"
    if test:
        for target in targets:
            assert all(math.isfinite(e["value"]) for e in metrics["test"]["targets"][target]["utterance"].values())
    assert len(metrics["folds"]) == 2
    oof = pd.read_csv(out / "oof.csv")
    assert len(oof) == n_items and oof["id"].is_unique
    for target in targets:
        assert np.isfinite(oof[f"pred.{target}"]).all()
    return metrics


def read_rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


# ------------------------------------------------------------------------------ strict loading


def _variants(name: str) -> list[str | None]:
    return [None, *raw_recipe(name).get("variants", {})]


@pytest.mark.parametrize("name,variant", [(n, v) for n in RECIPE_NAMES for v in _variants(n)])
def test_recipe_loads_strictly_and_its_parts_build(name, variant):
    """Every recipe and variant validates against the strict schema, and every component it names
    is registered and accepts its params: reader (with options), encoders, fusion + head (or a
    baseline estimator), losses against the head's outputs, early-stopping monitor, submission."""
    from scorecast.config import TargetSpec  # noqa: F401  (schema import: the recipe's targets validate)
    from scorecast.data.readers import READERS
    from scorecast.data.submissions import SUBMISSIONS
    from scorecast.encoders.base import ENCODERS
    from scorecast.encoders.pipeline import constructor_params
    from scorecast.losses.combined import build_loss
    from scorecast.models.base import FeatureShape
    from scorecast.models.scorer import build_model
    from scorecast.training.baselines import ESTIMATORS
    from scorecast.training.module import check_monitor

    variables = {v: f"/data/{v.lower()}" for v in recipe_variables(name)}
    recipe = load_recipe(recipe_path(name), variables=variables, variant=variant)
    assert recipe.name == (name if variant is None else f"{name}-{variant}")
    for data in filter(None, (recipe.data, recipe.test_data)):
        assert "${" not in str(data.path) and data.path.startswith("/data/")
        READERS.build(data.reader, **data.options)
    for spec in recipe.encoders:
        cls = ENCODERS.get(spec.name)
        if spec.name not in ("hf-audio", "hf-text"):  # those need a model folder; the swap tests build them
            ENCODERS.build(spec.name, **constructor_params(spec))
        assert cls is not None
    if recipe.model.head.name in ESTIMATORS:
        ESTIMATORS.build(recipe.model.head.name, **recipe.model.head.params)
    else:
        shapes = {s.feature_name: FeatureShape(16, s.sequence, 8 if s.sequence else None) for s in recipe.encoders}
        model = build_model(recipe.model, shapes, recipe.targets)
        build_loss(recipe.losses, recipe.targets).check_head(model.provides, recipe.model.head.name)
    if recipe.training.early_stopping is not None:
        check_monitor(recipe.training.early_stopping.monitor, recipe.targets, has_groups=True)
    if recipe.output.submission:
        SUBMISSIONS.build(recipe.output.submission).target_names(recipe.targets)


@pytest.mark.parametrize("name", RECIPE_NAMES)
def test_recipe_comment_block_shows_how_to_run_it(name):
    """The comment block's command line names this recipe and sets every variable it uses."""
    text = recipe_path(name).read_text()
    comment = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    usage = [line for line in comment.splitlines() if f"scorecast cv recipes/{name}.yaml" in line]
    assert usage, f"{name}.yaml: no 'scorecast cv recipes/{name}.yaml ...' line in the comment block"
    for var in recipe_variables(name):
        assert f"--var {var}=" in usage[0], f"{name}.yaml: the usage line does not set ${{{var}}}"
    assert "Stronger" in comment or "local weights" in comment, f"{name}.yaml: the comment names no stronger encoder"


def test_unset_variable_is_refused_with_its_name():
    from scorecast.errors import ConfigError

    with pytest.raises(ConfigError, match=r"variable \$\{AUDIO\} is not set; pass --var AUDIO="):
        load_recipe(recipe_path("xacle"), variables={"DATA": "/d"})


# ------------------------------------------------------------------------------------ XACLE


@pytest.fixture(scope="module")
def xacle_data(tmp_path_factory) -> dict[str, Path]:
    return rd.make_xacle(tmp_path_factory.mktemp("xacle"), n_train=24, n_val=8)


def test_xacle_listener_lists_cv_predict_and_submission(xacle_data, cache, tmp_path):
    variables = {"DATA": xacle_data["lists"], "AUDIO": xacle_data["audio"]}
    out = cv("xacle", tmp_path / "run", cache, variables)
    check_run(out, ["score"], 24, test=True)
    assert yaml.safe_load((out / "recipe.yaml").read_text())["data"]["reader"] == "xacle-listeners"
    invoke("predict", out / "bundle", xacle_data["lists"] / "val.txt", "-o", tmp_path / "pred" / "val.csv", "--cache", cache)
    rows = read_rows(tmp_path / "pred" / "submission-xacle.csv")
    assert rows[0] == ["wav_file_name", "prediction"]
    val_clips = list(dict.fromkeys(r[1] for r in read_rows(xacle_data["lists"] / "val.txt")))
    assert [r[0] for r in rows[1:]] == val_clips
    assert all(0.0 <= float(r[1]) <= 10.0 for r in rows[1:])


def test_xacle_mos_lists_variant(xacle_data, cache, tmp_path):
    variables = {"DATA": xacle_data["lists"], "AUDIO": xacle_data["audio"]}
    out = cv("xacle", tmp_path / "run", cache, variables, variant="mos-lists")
    check_run(out, ["score"], 24, test=True)
    assert yaml.safe_load((out / "recipe.yaml").read_text())["data"]["reader"] == "xacle"


# ------------------------------------------------------------------------------------ DA5401


@pytest.fixture(scope="module")
def da5401_data(tmp_path_factory) -> Path:
    return rd.make_da5401(tmp_path_factory.mktemp("da5401"), n_train=40, n_test=12)


def test_da5401_cv_predict_and_integer_submission(da5401_data, cache, tmp_path):
    out = cv("da5401", tmp_path / "run", cache, {"DATA": da5401_data})
    metrics = check_run(out, ["score"], 40)
    assert metrics["per_bin"]["score"], "per-bin RMSE missing"
    invoke("predict", out / "bundle", da5401_data / "test_data.json", "-o", tmp_path / "pred" / "test.csv", "--cache", cache)
    rows = read_rows(tmp_path / "pred" / "submission-da5401.csv")
    assert rows[0] == ["ID", "score"]
    assert [r[0] for r in rows[1:]] == [str(i) for i in range(1, 13)]
    for _, score in rows[1:]:
        assert re.fullmatch(r"\d+", score) and 0 <= int(score) <= 10, score
    preds = pd.read_csv(tmp_path / "pred" / "test.csv")
    assert {"id", "score", "std.score"} <= set(preds.columns)  # the heteroscedastic head gives a spread


@pytest.mark.parametrize("variant", ["ordinal", "expected-class", "lightgbm"])
def test_da5401_variants(variant, da5401_data, cache, tmp_path):
    out = cv("da5401", tmp_path / "run", cache, {"DATA": da5401_data}, variant=variant)
    check_run(out, ["score"], 40)


# ----------------------------------------------------------------------- AudioMOS 2025 track 1


@pytest.fixture(scope="module")
def musiceval(tmp_path_factory) -> Path:
    return rd.make_musiceval(tmp_path_factory.mktemp("musiceval"), systems=4, prompts=8, dev_prompts=2)


def check_answer(path: Path, dev_list: Path) -> None:
    lines = path.read_text().splitlines()
    expected = [line.split(",")[0].removesuffix(".wav") for line in dev_list.read_text().splitlines()]
    assert [line.split(",")[0] for line in lines] == expected
    for line in lines:
        assert re.fullmatch(rf"audiomos2025-track1-S\d{{3}}_P\d{{3}},{FLOAT},{FLOAT}", line), line
        mi, ta = map(float, line.split(",")[1:])
        assert 1.0 <= mi <= 5.0 and 1.0 <= ta <= 5.0


@pytest.fixture(scope="module")
def audiomos_runs(musiceval, cache, tmp_path_factory) -> dict[str, Path]:
    """cv of the default recipe and its two variants (shared by the tests below)."""
    root = tmp_path_factory.mktemp("audiomos-runs")
    return {v or "default": cv("audiomos-t1", root / (v or "default"), cache, {"DATA": musiceval}, variant=v)
            for v in (None, "coral", "cross-attention")}


@pytest.mark.slow
def test_audiomos_cv_predict_and_answer_txt(audiomos_runs, musiceval, cache, tmp_path):
    out = audiomos_runs["default"]
    check_run(out, ["MI", "TA"], 32, system=True)
    invoke("predict", out / "bundle", musiceval / "sets" / "dev_mos_list.txt", "-o", tmp_path / "dev.csv", "--cache", cache)
    check_answer(tmp_path / "answer.txt", musiceval / "sets" / "dev_mos_list.txt")


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["coral", "cross-attention"])
def test_audiomos_variants(variant, audiomos_runs):
    out = audiomos_runs[variant]
    check_run(out, ["MI", "TA"], 32, system=True)
    saved = yaml.safe_load((out / "recipe.yaml").read_text())
    expected = {"coral": ("head", "coral"), "cross-attention": ("fusion", "cross-attention")}[variant]
    assert saved["model"][expected[0]]["name"] == expected[1]


@pytest.mark.slow
def test_audiomos_ensemble_of_variant_runs(audiomos_runs, musiceval, cache, tmp_path):
    out = tmp_path / "ensemble"
    invoke("ensemble", audiomos_runs["coral"], audiomos_runs["cross-attention"], "-o", out)
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["ensemble"]["runs"]) == 2
    for target in ("MI", "TA"):
        for level in ("utterance", "system"):
            assert all(math.isfinite(e["value"]) for e in metrics["targets"][target][level].values())
    invoke("predict", out / "bundle", musiceval / "sets" / "dev_mos_list.txt", "-o", tmp_path / "pred" / "dev.csv",
           "--cache", cache)
    check_answer(tmp_path / "pred" / "answer.txt", musiceval / "sets" / "dev_mos_list.txt")


# ------------------------------------------------------------------- grammar engine (generated)


@pytest.fixture(scope="module")
def shl_data(tmp_path_factory) -> Path:
    return rd.make_shl(tmp_path_factory.mktemp("shl"), n=20, n_test=4, seconds=1.0)


@pytest.mark.slow
def test_grammar_with_pocketsphinx_asr_cv_predict_and_submission(shl_data, cache, tmp_path):
    out = cv("grammar", tmp_path / "run", cache, {"DATA": shl_data})
    check_run(out, ["score"], 20)
    stores = list((cache / "transcripts").glob("*.jsonl"))
    assert stores, "the ASR step cached no transcripts"
    assert sum(len(p.read_text().splitlines()) for p in stores) >= 20
    invoke("predict", out / "bundle", shl_data / "test.csv", "-o", tmp_path / "pred" / "test.csv", "--cache", cache)
    rows = read_rows(tmp_path / "pred" / "submission-shl.csv")
    assert rows[0] == ["filename", "label"]
    assert [r[0] for r in rows[1:]] == [f"audio_{i}" for i in range(21, 25)]
    assert all(1.0 <= float(r[1]) <= 5.0 for r in rows[1:])


def test_grammar_transcripts_variant(shl_data, cache, tmp_path):
    out = cv("grammar", tmp_path / "run", cache, {"DATA": shl_data}, variant="transcripts")
    check_run(out, ["score"], 20)
    saved = yaml.safe_load((out / "recipe.yaml").read_text())
    assert saved["asr"] is None and saved["data"]["path"].endswith("train_with_transcripts.csv")
    assert saved["training"]["swa"]["enabled"] and saved["training"]["augment"]["copies"] == 1


# ----------------------------------------------------------------- real data (subsets, symlinks)


def real_set(name: str, *files: str) -> Path:
    root = shared_data_dir() / name
    for file in files:
        if not (root / file).exists():
            pytest.skip(f"real data not found: {root / file} (set SCORECAST_DATA to the shared data folder)")
    return root


def mirror(src: Path, dst: Path, tables: dict[str, str], links: tuple[str, ...] = ("audio",)) -> Path:
    """``dst`` laid out like ``src``: the given tables written there, ``links`` symlinked to ``src``."""
    dst.mkdir(parents=True, exist_ok=True)
    for name, text in tables.items():
        (dst / name).write_text(text)
    for link in links:
        os.symlink(src / link, dst / link)
    return dst


def first_lines(path: Path, n: int) -> str:
    return "".join(path.read_text(encoding="utf-8").splitlines(keepends=True)[:n])


@pytest.fixture(scope="module")
def shl_real(tmp_path_factory) -> Path:
    """SHL subset: 10 rows with audio and 14 without (the layout of ../shared/data/shl-grammar)."""
    src = real_set("shl-grammar", "train_with_transcripts.csv", "audio")
    table = pd.read_csv(src / "train_with_transcripts.csv")
    has_audio = table["filename"].map(lambda f: (src / "audio" / f"{f}.ogg").is_file())
    subset = pd.concat([table[has_audio].head(10), table[~has_audio].head(14)])
    dst = tmp_path_factory.mktemp("shl-real")
    subset.to_csv(dst / "train_with_transcripts.csv", index=False)
    subset[["filename", "label"]].to_csv(dst / "train.csv", index=False)
    return mirror(src, dst, {})


@pytest.mark.slow
def test_grammar_on_real_shl_audio_with_given_transcripts(shl_real, cache, tmp_path):
    """45-60 s Vorbis clips; pocketsphinx needs about real time on one core (more than a minute a
    clip on a loaded machine), so the real clips run the ``transcripts`` variant; the ASR path runs
    on the generated clips above."""
    out = cv("grammar", tmp_path / "run", cache, {"DATA": shl_real}, "--set", "training.augment.copies=0",
             variant="transcripts")
    check_run(out, ["score"], 10)  # on_error: skip leaves out the 14 rows without audio


@pytest.mark.slow
def test_shl_grammar_transcripts_on_real_subset(cache, tmp_path):
    src = real_set("shl-grammar", "train_with_transcripts.csv")
    dst = mirror(src, tmp_path / "shl", {"train_with_transcripts.csv": first_lines(src / "train_with_transcripts.csv", 41)}, ())
    out = cv("shl-grammar-transcripts", tmp_path / "run", cache, {"DATA": dst})
    check_run(out, ["score"], 40)
    out = cv("shl-grammar-transcripts", tmp_path / "ridge", cache, {"DATA": dst}, variant="ridge")
    check_run(out, ["score"], 40)


@pytest.mark.slow
def test_shl_grammar_audio_on_real_subset(shl_real, cache, tmp_path):
    out = cv("shl-grammar-audio", tmp_path / "run", cache, {"DATA": shl_real})
    check_run(out, ["score"], 10)


@pytest.mark.slow
def test_stsb_on_real_subset(cache, tmp_path):
    src = real_set("stsb", "sts-train.csv", "sts-test.csv")
    dst = mirror(src, tmp_path / "stsb", {"sts-train.csv": first_lines(src / "sts-train.csv", 40),
                                          "sts-test.csv": first_lines(src / "sts-test.csv", 20)}, ())
    out = cv("stsb", tmp_path / "run", cache, {"DATA": dst})
    check_run(out, ["score"], 40, test=True)


@pytest.mark.slow
def test_codec_mushra_on_real_subset(cache, tmp_path):
    """Two signals (18 rows, the two hidden anchors without audio left out), folds grouped by signal."""
    src = real_set("codec-mushra", "ratings_formated_filtered.csv", "audio")
    table = pd.read_csv(src / "ratings_formated_filtered.csv")
    subset = table[table["signal"].isin(table["signal"].unique()[:2])]
    dst = tmp_path / "mushra"
    dst.mkdir()
    subset.to_csv(dst / "ratings_formated_filtered.csv", index=False)
    mirror(src, dst, {})
    out = cv("codec-mushra", tmp_path / "run", cache, {"DATA": dst})
    check_run(out, ["score"], int(subset["file"].notna().sum()), system=True)
    oof = pd.read_csv(out / "oof.csv")
    signal = oof["id"].str.split(":").str[0]
    assert (oof.groupby(signal)["fold"].nunique() == 1).all()  # a signal never spans two folds


# ------------------------------------------------------------------ stronger encoders, swapped in


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    from tiny_models import make_tiny_bert, make_tiny_clap, make_tiny_sentence_transformer, make_tiny_wavlm, make_tiny_whisper

    root = tmp_path_factory.mktemp("tiny-models")
    return {
        "wavlm": make_tiny_wavlm(root / "wavlm-base"),
        "wavlm-large": make_tiny_wavlm(root / "wavlm-large", attention_mask=True),
        "whisper": make_tiny_whisper(root / "whisper"),
        "bert": make_tiny_bert(root / "bert"),
        "clap": make_tiny_clap(root / "clap"),
        "sentence": make_tiny_sentence_transformer(root / "sentence"),
    }


def flow(mapping: dict) -> str:
    return yaml.safe_dump(mapping, default_flow_style=True, width=10_000).strip()


def swap_specs(tiny: dict[str, Path], name: str) -> dict[int, dict]:
    """The recipe comment's stronger encoders, by the index of the default encoder each replaces."""
    bert_cls = {"model": str(tiny["bert"]), "pooling": "cls", "max_length": 32, "stride": 16}
    encoders = {
        "grammar": {0: {"name": "hf-audio", "input": "audio", "alias": "audio", "sequence": True,
                        "params": {"model": str(tiny["wavlm"]), "layer": "mean", "window_s": 0.5}},
                    1: {"name": "hf-text", "input": "text.transcript", "alias": "text", "sequence": True, "params": bert_cls}},
        "xacle": {0: {"name": "hf-audio", "input": "audio", "alias": "audio", "params": {"model": str(tiny["clap"])}},
                  1: {"name": "hf-text", "input": "text.caption", "alias": "text", "params": {**bert_cls, "pooling": "mean"}}},
        "da5401": {1: {"name": "hf-text", "input": "text.user_prompt", "alias": "prompt", "params": {**bert_cls, "pooling": "mean"}},
                   2: {"name": "hf-text", "input": "text.response", "alias": "response", "params": {**bert_cls, "pooling": "mean"}}},
        "audiomos-t1": {0: {"name": "hf-audio", "input": "audio", "alias": "frames", "sequence": True,
                            "params": {"model": str(tiny["wavlm-large"]), "layer": "mean"}},
                        2: {"name": "hf-text", "input": "text.prompt", "alias": "prompt", "params": {**bert_cls, "pooling": "mean"}}},
        "stsb": {0: {"name": "sentence", "input": "text.sentence1", "alias": "s1", "params": {"model": str(tiny["sentence"])}},
                 1: {"name": "sentence", "input": "text.sentence2", "alias": "s2", "params": {"model": str(tiny["sentence"])}}},
        "shl-grammar-transcripts": {0: {"name": "hf-text", "input": "text.transcript", "alias": "text", "params": bert_cls}},
        "shl-grammar-audio": {0: {"name": "hf-audio", "input": "audio", "alias": "audio",
                                  "params": {"model": str(tiny["whisper"]), "layer": "mean"}}},
        "codec-mushra": {2: {"name": "hf-audio", "input": "audio", "alias": "egemaps",
                             "params": {"model": str(tiny["wavlm-large"]), "layer": "mean", "window_s": 1.0}}},
    }
    return encoders[name]


@pytest.fixture(scope="module")
def swap_data(tmp_path_factory, xacle_data, da5401_data, musiceval, shl_data) -> dict[str, tuple[dict, int]]:
    """Generated data for every recipe: ({variable: path}, number of items)."""
    stsb = rd.make_stsb(tmp_path_factory.mktemp("stsb"), n_train=24, n_test=8)
    mushra = rd.make_mushra(tmp_path_factory.mktemp("mushra"), signals=4)
    return {
        "grammar": ({"DATA": shl_data}, 20),
        "xacle": ({"DATA": xacle_data["lists"], "AUDIO": xacle_data["audio"]}, 24),
        "da5401": ({"DATA": da5401_data}, 40),
        "audiomos-t1": ({"DATA": musiceval}, 32),
        "stsb": ({"DATA": stsb}, 24),
        "shl-grammar-transcripts": ({"DATA": shl_data}, 20),
        "shl-grammar-audio": ({"DATA": shl_data}, 20),
        "codec-mushra": ({"DATA": mushra}, 20),
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", RECIPE_NAMES)
def test_stronger_local_encoder_swap(name, tiny, swap_data, cache, tmp_path):
    """The recipe comment's "with local weights" encoders (hf-audio: WavLM / Whisper encoder / CLAP
    audio tower; hf-text: BERT; sentence: another sentence-transformers folder), as tiny random
    models saved to folders, loaded offline through the local-folder path, cross-validated."""
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    variables, n_items = swap_data[name]
    swaps = swap_specs(tiny, name)
    default = raw_recipe(name)["encoders"]
    sets = ["--set", "training.max_epochs=1"]
    for index, spec in swaps.items():
        assert default[index]["alias"] == spec["alias"]  # the swap replaces the encoder the comment means
        sets += ["--set", f"encoders.{index}={flow(spec)}"]
    if name == "grammar":  # and the local Whisper for the ASR step
        asr = {"backend": "whisper", "params": {"model": str(tiny["whisper"]), "max_new_tokens": 8}, "field": "transcript"}
        sets += ["--set", f"asr={flow(asr)}"]
    out = cv(name, tmp_path / "run", cache, variables, *sets)
    saved = yaml.safe_load((out / "recipe.yaml").read_text())
    check_run(out, [t["name"] for t in saved["targets"]], n_items, system=saved["evaluate"]["system_level"])
    bundle = {e["feature"]: e for e in json.loads((out / "bundle" / "scorecast.json").read_text())["encoders"]}
    for spec in swaps.values():
        identity = bundle[spec["alias"]]["identity"]
        assert identity["name"] == spec["name"] and identity["model"] == spec["params"]["model"], identity
