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
from scorecast.cli.app import app
from scorecast.config import load_recipe

RECIPES = REPO / "recipes"
RECIPE_NAMES = sorted(p.stem for p in RECIPES.glob("*.yaml"))
QUICK = [
    "--set",
    "training.max_epochs=2",
    "--set",
    "cv.folds=2",
    "--set",
    "cv.seeds=[0]",
    "--set",
    "evaluate.bootstrap=20",
]
RUN_FILES = (
    "recipe.yaml",
    "items.csv",
    "oof.csv",
    "metrics.json",
    "history.csv",
    "bundle/scorecast.json",
    "bundle/MODEL_CARD.md",
)
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
        raise AssertionError(
            f"scorecast {' '.join(map(str, args))} exited {result.exit_code}:\n{result.output}\n{trace}"
        )
    return result.output


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing a run writes by default (lightning_logs, runs/) lands in the repo


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def cv(
    name: str, out: Path, cache: Path, variables: dict[str, Path | str], *extra: str, variant: str | None = None
) -> Path:
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
    baseline estimator), losses against the head's outputs, early-stopping monitor, ASR step, submission."""
    from scorecast.data.readers import READERS
    from scorecast.data.submissions import SUBMISSIONS
    from scorecast.encoders.base import ENCODERS
    from scorecast.encoders.model_store import PACKAGED_MODELS
    from scorecast.encoders.pipeline import constructor_params
    from scorecast.losses.combined import build_loss
    from scorecast.models.base import FeatureShape
    from scorecast.models.estimators import ESTIMATORS
    from scorecast.models.scorer import build_model
    from scorecast.training.module import check_monitor

    variables = {v: f"/data/{v.lower()}" for v in recipe_variables(name)}
    recipe = load_recipe(recipe_path(name), variables=variables, variant=variant)
    packaged = [s.params.get("model") for s in recipe.encoders] + [
        recipe.asr.params.get("model") if recipe.asr else None
    ]
    for model in packaged:
        if model in PACKAGED_MODELS and not PACKAGED_MODELS.get(model).installed():
            pytest.skip(
                f"{name} [{variant}] uses the packaged model {model}, not installed ({PACKAGED_MODELS.get(model).install})"
            )
    assert recipe.name == (name if variant is None else f"{name}-{variant}")
    for data in filter(None, (recipe.data, recipe.test_data)):
        assert "${" not in str(data.path) and data.path.startswith("/data/")
        READERS.build(data.reader, **data.options)
    for spec in recipe.encoders:
        ENCODERS.get(spec.name)
        if spec.name not in ("hf-audio", "hf-text"):  # those need a model folder; the swap tests build them
            ENCODERS.build(spec.name, **constructor_params(spec))
    if recipe.model.head.name in ESTIMATORS:
        ESTIMATORS.build(recipe.model.head.name, **recipe.model.head.params)
    else:
        shapes = {s.feature_name: FeatureShape(16, s.sequence, 8 if s.sequence else None) for s in recipe.encoders}
        model = build_model(recipe.model, shapes, recipe.targets)
        build_loss(recipe.losses, recipe.targets).check_head(model.provides, recipe.model.head.name)
    if recipe.training.early_stopping is not None:
        check_monitor(recipe.training.early_stopping.monitor, recipe.targets, has_groups=recipe.evaluate.system_level)
    if recipe.asr is not None:
        ENCODERS.build("asr", backend=recipe.asr.backend, **recipe.asr.params)
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
    invoke(
        "predict",
        out / "bundle",
        xacle_data["lists"] / "val.txt",
        "-o",
        tmp_path / "pred" / "val.csv",
        "--cache",
        cache,
    )
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
    invoke(
        "predict",
        out / "bundle",
        da5401_data / "test_data.json",
        "-o",
        tmp_path / "pred" / "test.csv",
        "--cache",
        cache,
    )
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


AUDIOMOS_ITEMS = 4 * 8 + len(rd.DEMO_PROMPTS)  # 4 systems x 8 prompts + the demo system's clips


@pytest.fixture(scope="module")
def musiceval(tmp_path_factory) -> Path:
    return rd.make_musiceval(tmp_path_factory.mktemp("musiceval"), systems=4, prompts=8, dev_prompts=2)


def test_audiomos_recipe_reads_prompts_by_id_and_demo_prompts_by_file_name(musiceval):
    from scorecast.data.readers import read_items

    items = {
        i.id: i for i in read_items(load_recipe(recipe_path("audiomos-t1"), variables={"DATA": str(musiceval)}).data)
    }
    assert len(items) == AUDIOMOS_ITEMS
    assert items["audiomos2025-track1-S002_P003"].texts["prompt"] == rd.PROMPTS[2]
    assert items[f"audiomos2025-track1-S{rd.DEMO_SYSTEM:03d}_P001"].texts["prompt"] == rd.DEMO_PROMPTS[0]
    assert items["audiomos2025-track1-S002_P003"].group == "S002"


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
    return {
        v or "default": cv("audiomos-t1", root / (v or "default"), cache, {"DATA": musiceval}, variant=v)
        for v in (None, "coral", "cross-attention")
    }


@pytest.mark.slow
def test_audiomos_cv_predict_and_answer_txt(audiomos_runs, musiceval, cache, tmp_path):
    out = audiomos_runs["default"]
    check_run(out, ["MI", "TA"], AUDIOMOS_ITEMS, system=True)
    invoke(
        "predict", out / "bundle", musiceval / "sets" / "dev_mos_list.txt", "-o", tmp_path / "dev.csv", "--cache", cache
    )
    check_answer(tmp_path / "answer.txt", musiceval / "sets" / "dev_mos_list.txt")


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["coral", "cross-attention"])
def test_audiomos_variants(variant, audiomos_runs):
    out = audiomos_runs[variant]
    check_run(out, ["MI", "TA"], AUDIOMOS_ITEMS, system=True)
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
    invoke(
        "predict",
        out / "bundle",
        musiceval / "sets" / "dev_mos_list.txt",
        "-o",
        tmp_path / "pred" / "dev.csv",
        "--cache",
        cache,
    )
    check_answer(tmp_path / "pred" / "answer.txt", musiceval / "sets" / "dev_mos_list.txt")


# ------------------------------------------------------------------- grammar engine (generated)


@pytest.fixture(scope="module")
def shl_data(tmp_path_factory) -> Path:
    return rd.make_shl(tmp_path_factory.mktemp("shl"), n=20, n_test=4, seconds=1.0)


@pytest.mark.slow
def test_grammar_with_whisper_asr_cv_predict_and_submission(shl_data, cache, tmp_path):
    out = cv("grammar", tmp_path / "run", cache, {"DATA": shl_data})
    check_run(out, ["score"], 20)
    stores = list((cache / "transcripts").glob("*.jsonl"))
    assert stores, "the ASR step cached no transcripts"
    assert sum(len(p.read_text().splitlines()) for p in stores) >= 20
    invoke("predict", out / "bundle", shl_data / "test.csv", "-o", tmp_path / "pred" / "test.csv", "--cache", cache)
    assert sum(len(p.read_text().splitlines()) for p in stores) >= 24  # the test clips were transcribed too
    rows = read_rows(tmp_path / "pred" / "submission-shl.csv")
    assert rows[0] == ["filename", "label"]
    assert [r[0] for r in rows[1:]] == [f"audio_{i}" for i in range(21, 25)]
    assert all(1.0 <= float(r[1]) <= 5.0 for r in rows[1:])


def test_grammar_transcripts_variant(shl_data, cache, tmp_path):
    out = cv("grammar", tmp_path / "run", cache, {"DATA": shl_data}, variant="transcripts")
    check_run(out, ["score"], 20)
    saved = yaml.safe_load((out / "recipe.yaml").read_text())
    # the given transcripts feed the text encoders; the ASR still runs (into field asr) for the word timing
    assert saved["asr"]["field"] == "asr" and saved["data"]["path"].endswith("train_with_transcripts.csv")
    assert {e["input"] for e in saved["encoders"]} == {"audio", "text.transcript", "text.asr_timing"}
    assert saved["training"]["swa"]["enabled"]


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
    """SHL subset: 6 rows with audio and 10 without (the layout of ../shared/data/shl-grammar)."""
    src = real_set("shl-grammar", "train_with_transcripts.csv", "audio")
    table = pd.read_csv(src / "train_with_transcripts.csv")
    has_audio = table["filename"].map(lambda f: (src / "audio" / f"{f}.ogg").is_file())
    subset = pd.concat([table[has_audio].head(6), table[~has_audio].head(10)])
    dst = tmp_path_factory.mktemp("shl-real")
    subset.to_csv(dst / "train_with_transcripts.csv", index=False)
    subset[["filename", "label"]].to_csv(dst / "train.csv", index=False)
    return mirror(src, dst, {})


@pytest.mark.slow
def test_grammar_on_real_shl_audio_with_given_transcripts(shl_real, cache, tmp_path):
    """45-60 s Vorbis clips with their given transcripts (Whisper tiny.en still runs, for the timing)."""
    out = cv("grammar", tmp_path / "run", cache, {"DATA": shl_real}, variant="transcripts")
    check_run(out, ["score"], 6)  # on_error: skip leaves out the 10 rows without audio


@pytest.mark.slow
def test_shl_grammar_transcripts_on_real_subset(cache, tmp_path):
    src = real_set("shl-grammar", "train_with_transcripts.csv")
    dst = mirror(
        src, tmp_path / "shl", {"train_with_transcripts.csv": first_lines(src / "train_with_transcripts.csv", 41)}, ()
    )
    out = cv("shl-grammar-transcripts", tmp_path / "run", cache, {"DATA": dst})
    check_run(out, ["score"], 40)
    out = cv("shl-grammar-transcripts", tmp_path / "ridge", cache, {"DATA": dst}, variant="ridge")
    check_run(out, ["score"], 40)
    out = cv("shl-grammar-transcripts", tmp_path / "svr-stats", cache, {"DATA": dst}, variant="svr-stats")
    check_run(out, ["score"], 40)
    encoders = json.loads((out / "bundle" / "scorecast.json").read_text())["encoders"]
    assert {e["feature"]: e["dim"] for e in encoders} == {"text": 384, "stats": 11}


@pytest.mark.slow
def test_shl_grammar_audio_on_real_subset(shl_real, cache, tmp_path):
    out = cv("shl-grammar-audio", tmp_path / "run", cache, {"DATA": shl_real})
    check_run(out, ["score"], 6)


@pytest.mark.slow
def test_stsb_on_real_subset(cache, tmp_path):
    src = real_set("stsb", "sts-train.csv", "sts-dev.csv", "sts-test.csv")
    dst = mirror(
        src,
        tmp_path / "stsb",
        {
            "sts-train.csv": first_lines(src / "sts-train.csv", 40),
            "sts-dev.csv": first_lines(src / "sts-dev.csv", 20),
            "sts-test.csv": first_lines(src / "sts-test.csv", 20),
        },
        (),
    )
    out = cv("stsb", tmp_path / "run", cache, {"DATA": dst})
    check_run(out, ["score"], 40, test=True)
    # `train` early-stops on the recipe's val_data (sts-dev.csv): the held-out rows are exactly dev's
    run = tmp_path / "train"
    invoke("train", recipe_path("stsb"), "-o", run, "--cache", cache, *QUICK, "--var", f"DATA={dst}")
    held = pd.read_csv(run / "oof.csv")
    dev_ids = [
        f"{f[1]}-{f[2]}-{f[3]}" for f in (line.split("\t") for line in (dst / "sts-dev.csv").read_text().splitlines())
    ]
    assert sorted(held["id"]) == sorted(dev_ids) and len(dev_ids) == 20


@pytest.mark.slow
def test_codec_mushra_on_real_subset(cache, tmp_path):
    """Two signals x six conditions (the hidden anchor, without audio, left out), folds grouped by
    signal, condition-level metrics."""
    src = real_set("codec-mushra", "ratings_formated_filtered.csv", "audio")
    table = pd.read_csv(src / "ratings_formated_filtered.csv")
    conditions = ["Reference", "Anchor", "Lyra 3", "AudioDec", "Proposed 1.38", "Proposed 5.51 16kHz"]
    subset = table[table["signal"].isin(table["signal"].unique()[:2]) & table["condition"].isin(conditions)]
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
#
# The encoders each recipe's comment block names "with local weights" are read from the comment
# itself (every flow mapping ``{name: hf-audio|hf-text|sentence, ...}`` and ``asr: {...}``), so the
# comment cannot drift from what is tested: the model folders it names are replaced by tiny random
# models of the same family, and window sizes are shrunk to the tiny models and the short clips.

SWAP_ENCODERS = ("hf-audio", "hf-text", "sentence")
TINY_FOR = (
    ("wavlm-large", "wavlm-large"),
    ("wavlm", "wavlm"),
    ("music-ssl", "wavlm"),
    ("whisper", "whisper"),
    ("clap", "clap"),
    ("mpnet", "sentence"),
    ("roberta", "bert"),
    ("bert", "bert"),
)


def comment_text(name: str) -> str:
    lines = [line[1:].strip() for line in recipe_path(name).read_text().splitlines() if line.startswith("#")]
    return " ".join(lines)


def flow_mappings(text: str, start: str) -> list[dict]:
    """Every balanced ``{...}`` in ``text`` that begins with ``start``, parsed as YAML."""
    found, pos = [], 0
    while (i := text.find(start, pos)) >= 0:
        depth, j = 0, i
        for j in range(i, len(text)):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            if depth == 0:
                break
        found.append(yaml.safe_load(text[i : j + 1]))
        pos = j + 1
    return found


def comment_swaps(name: str) -> tuple[list[dict], dict | None]:
    """(encoder specs, ASR config) that the recipe's comment block names for local weights."""
    text = comment_text(name)
    specs = [m for m in flow_mappings(text, "{name: ") if m.get("name") in SWAP_ENCODERS]
    asr = flow_mappings(text, "{backend: ")
    return specs, (asr[0] if asr else None)


@pytest.mark.parametrize("name", RECIPE_NAMES)
def test_comment_swaps_are_valid_encoder_specs(name):
    """What the comment tells a user to paste in is a valid encoder spec whose params the encoder
    takes, and it replaces one of the recipe's encoders (same alias and input) or all of them."""
    import inspect

    from scorecast.config import ASRConfig, EncoderSpec
    from scorecast.encoders.base import ENCODERS

    specs, asr = comment_swaps(name)
    assert specs, (
        f"{name}.yaml: the comment block names no stronger encoder as {{name: hf-audio|hf-text|sentence, ...}}"
    )
    defaults = {e["alias"]: e for e in raw_recipe(name)["encoders"]}
    for spec in specs:
        parsed = EncoderSpec.model_validate(spec)
        accepted = set(inspect.signature(ENCODERS.get(parsed.name)).parameters)
        assert set(parsed.params) <= accepted, f"{name}.yaml: {parsed.name} takes no {set(parsed.params) - accepted}"
        assert "/models/" in str(parsed.params.get("model", "")), spec
        if parsed.alias in defaults:
            assert defaults[parsed.alias]["input"] == parsed.input, spec
    if asr is not None:
        ASRConfig.model_validate(asr)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    from tiny_models import (
        make_tiny_bert,
        make_tiny_clap,
        make_tiny_sentence_transformer,
        make_tiny_wavlm,
        make_tiny_whisper,
    )

    root = tmp_path_factory.mktemp("tiny-models")
    return {
        "wavlm": make_tiny_wavlm(root / "wavlm-base"),
        "wavlm-large": make_tiny_wavlm(root / "wavlm-large", attention_mask=True),
        "whisper": make_tiny_whisper(root / "whisper"),
        "bert": make_tiny_bert(root / "bert"),
        "clap": make_tiny_clap(root / "clap"),
        "sentence": make_tiny_sentence_transformer(root / "sentence"),
    }


def tiny_stand_in(model: str, tiny: dict[str, Path]) -> str:
    for hint, key in TINY_FOR:
        if hint in model.lower():
            return str(tiny[key])
    raise AssertionError(f"no tiny stand-in for the comment's model folder {model!r}; add one to TINY_FOR")


def shrink(spec: dict, tiny: dict[str, Path]) -> dict:
    """The comment's spec with its model replaced by a tiny one and windows fit to it."""
    params = dict(spec.get("params", {}))
    params["model"] = tiny_stand_in(params["model"], tiny)
    if "window_s" in params:
        params["window_s"] = 0.5  # generated clips are 1-1.5 s: still several windows
    if spec["name"] == "hf-text" and "max_length" in params:
        params["max_length"], params["stride"] = 32, 16  # the tiny BERT takes 64 positions
    return {**spec, "params": params}


def flow(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()


@pytest.fixture(scope="module")
def swap_data(tmp_path_factory, xacle_data, da5401_data, musiceval, shl_data) -> dict[str, tuple[dict, int]]:
    """Generated data for every recipe: ({variable: path}, number of items)."""
    stsb = rd.make_stsb(tmp_path_factory.mktemp("stsb"), n_train=24, n_test=8)
    mushra = rd.make_mushra(tmp_path_factory.mktemp("mushra"), signals=4)
    yourtts = rd.make_yourtts(tmp_path_factory.mktemp("yourtts"))
    return {
        "grammar": ({"DATA": shl_data}, 20),
        "xacle": ({"DATA": xacle_data["lists"], "AUDIO": xacle_data["audio"]}, 24),
        "da5401": ({"DATA": da5401_data}, 40),
        "audiomos-t1": ({"DATA": musiceval}, AUDIOMOS_ITEMS),
        "stsb": ({"DATA": stsb}, 24),
        "shl-grammar-transcripts": ({"DATA": shl_data}, 20),
        "shl-grammar-audio": ({"DATA": shl_data}, 20),
        "codec-mushra": ({"DATA": mushra}, 20),
        "yourtts-naturalness": ({"DATA": yourtts}, 36),
        "yourtts-similarity": ({"DATA": yourtts}, 36),
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", RECIPE_NAMES)
def test_stronger_local_encoder_swap(name, tiny, swap_data, cache, tmp_path):
    """The comment's encoders (hf-audio: WavLM base and large style, the Whisper encoder, CLAP's
    audio tower; hf-text: BERT; sentence: another sentence-transformers folder; the Whisper ASR) as
    tiny random models in folders, loaded offline through the local-folder path, cross-validated.
    A spec whose alias is one of the recipe's replaces that encoder; otherwise the comment's specs
    replace all of them."""
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    variables, n_items = swap_data[name]
    specs, asr = comment_swaps(name)
    swaps = [shrink(spec, tiny) for spec in specs]
    aliases = [e["alias"] for e in raw_recipe(name)["encoders"]]
    sets = ["--set", "training.max_epochs=1"]
    if all(s["alias"] in aliases for s in swaps):
        sets += [a for s in swaps for a in ("--set", f"encoders.{aliases.index(s['alias'])}={flow(s)}")]
    else:
        sets += ["--set", f"encoders={flow(swaps)}"]
    if asr is not None:
        asr = {
            **asr,
            "params": {**asr["params"], "model": tiny_stand_in(asr["params"]["model"], tiny), "max_new_tokens": 8},
        }
        sets += ["--set", f"asr={flow(asr)}"]
    out = cv(name, tmp_path / "run", cache, variables, *sets)
    saved = yaml.safe_load((out / "recipe.yaml").read_text())
    check_run(out, [t["name"] for t in saved["targets"]], n_items, system=saved["evaluate"]["system_level"])
    bundle = {e["feature"]: e for e in json.loads((out / "bundle" / "scorecast.json").read_text())["encoders"]}
    for spec in swaps:
        identity = bundle[spec["alias"]]["identity"]
        assert identity["name"] == spec["name"] and identity["model"] == spec["params"]["model"], identity
    if asr is not None:
        assert saved["asr"]["backend"] == "whisper"
        identities = [json.loads(p.read_text()) for p in (cache / "transcripts").glob("*.identity.json")]
        assert any(i.get("backend") == "whisper" for i in identities), identities


@pytest.fixture(scope="module")
def yourtts_data(tmp_path_factory) -> Path:
    return rd.make_yourtts(tmp_path_factory.mktemp("yourtts-data"))


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, variant",
    [("yourtts-naturalness", None), ("yourtts-naturalness", "prior-listeners"), ("yourtts-similarity", None)],
)
def test_yourtts_recipes_on_generated_data(name, variant, yourtts_data, cache, tmp_path):
    """Speaker-grouped CV on a generated YourTTS folder (clips, or audio pairs); the run reports the
    listeners' split-half ceiling at clip and system level."""
    out = cv(name, tmp_path / "run", cache, {"DATA": yourtts_data}, variant=variant)
    metrics = check_run(out, ["score"], 36, system=True)
    ceiling = metrics["targets"]["score"]["ceiling"]
    assert ceiling["listeners"] == 8 and {"clip", "system"} <= set(ceiling)
    oof = pd.read_csv(out / "oof.csv")
    speaker = oof["id"].str.extract(r"(\d+)_\d+\.wav")[0]
    assert (oof.groupby(speaker)["fold"].nunique() == 1).all()  # a voice never spans two folds
