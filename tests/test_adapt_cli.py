"""``scorecast adapt``: SimCSE on a recipe's text field, and end-to-end fine-tuning, through the CLI."""

from __future__ import annotations

import re

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from scorecast.cli.app import app
from scorecast.errors import ConfigError, DataError
from tiny_models import make_tiny_bert, make_tiny_sentence_transformer

runner = CliRunner()
WORDS = "the quick brown fox jumps over lazy dog good bad great poor grammar speech".split()


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("adapt-cli")
    st = make_tiny_sentence_transformer(root / "st")
    bert = make_tiny_bert(root / "bert")
    rng = np.random.default_rng(0)
    rows = ["id,response,score"]
    for i in range(16):
        rows.append(f"r{i},{' '.join(rng.choice(WORDS, 3 + i % 4))},{1 + i % 5}")
    (root / "items.csv").write_text("\n".join(rows) + "\n")
    data = {"reader": "table", "path": str(root / "items.csv"), "options": {"text": "response", "targets": "score"}}
    simcse = {
        "data": data,
        "encoders": [
            {"name": "hf-text", "input": "text.response", "params": {"model": str(bert)}},
            {"name": "sentence", "input": "text.response", "params": {"model": str(st)}},
        ],
    }
    (root / "simcse.yaml").write_text(yaml.safe_dump(simcse))
    finetune = {
        "data": data,
        "encoders": [
            {
                "name": "hf-text",
                "input": "text.response",
                "params": {"model": str(bert), "finetune_top_k": 1, "finetune_lr": 1e-3},
            }
        ],
        "training": {"max_epochs": 3, "batch_size": 8, "early_stopping": None},
        "cache_dir": str(root / "cache"),
    }
    (root / "finetune.yaml").write_text(yaml.safe_dump(finetune))
    return root


def test_adapt_simcse_writes_a_folder_and_says_how_to_use_it(project, tmp_path):
    from scorecast.adapt.common import read_adaptation

    out = tmp_path / "adapted"
    result = runner.invoke(
        app,
        [
            "adapt",
            str(project / "simcse.yaml"),
            "--field",
            "text.response",
            "--out",
            str(out),
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--dropout",
            "0.1",
        ],
        env={"COLUMNS": "250"},
    )
    assert result.exit_code == 0, result.output
    record = read_adaptation(out)
    assert record["num_texts"] == 16 and record["steps"] == 2 and record["field"] == "text.response"
    assert record["source"] == str((project / "st").resolve())
    assert f"use it: --set encoders.1.params.model={out.resolve()}" in " ".join(result.output.split())


def test_adapt_finetune_writes_encoder_head_and_recipe(project, tmp_path):
    from scorecast.adapt.common import read_adaptation
    from scorecast.config import load_recipe

    out = tmp_path / "ft"
    result = runner.invoke(
        app,
        ["adapt", str(project / "finetune.yaml"), "--method", "finetune", "--out", str(out), "--epochs", "1"],
        env={"COLUMNS": "250"},
    )
    assert result.exit_code == 0, result.output
    assert "encoder.hf-text:text.response.layer1" in result.output
    assert "finetune  epoch 1" in result.output  # the progress line of the fine-tuning run
    folder = out / "encoders" / "hf-text_text.response"
    assert read_adaptation(folder)["trained_layers"] == [1]
    adapted = load_recipe(out / "recipe.yaml")
    assert adapted.encoders[0].params == {"model": str(folder.resolve())}
    assert adapted.training.max_epochs == 1
    assert (out / "head.safetensors").is_file()


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (["--field", "text.nope"], ConfigError, "no 'sentence' encoder reading it"),
        (
            ["--field", "text.nope", "--model", "MODEL"],
            DataError,
            "no item has text 'nope' \\(text fields: response\\)",
        ),
        (
            ["--field", "response"],
            ConfigError,
            "expected the text input to adapt on, e.g. text.response, got 'response'",
        ),
        (["--method", "mlm"], ConfigError, "--method: expected one of simcse, finetune, got 'mlm'"),
        (["--method", "finetune", "--field", "text.response"], ConfigError, "--field: only used by --method simcse"),
        (["--method", "finetune"], ConfigError, "no encoder sets finetune_top_k >= 1"),
        (["--field", "text.response", "--batch-size", "1"], ConfigError, "SimCSE settings: batch_size"),
    ],
)
def test_adapt_errors(project, tmp_path, args, error, match):
    args = [a.replace("MODEL", str(project / "st")) for a in args]
    result = runner.invoke(app, ["adapt", str(project / "simcse.yaml"), "--out", str(tmp_path / "o"), *args])
    assert isinstance(result.exception, error), result.output
    assert re.search(match, str(result.exception)), str(result.exception)
