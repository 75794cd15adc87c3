"""The README's walk-through, run exactly as printed: its shell blocks with bash (``scorecast`` and
``python`` from this environment on the PATH), its recipe written to the file its first line names,
its Python block with this interpreter, all in one empty folder, in order."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def walkthrough_blocks() -> list[tuple[str, str]]:
    text = README.read_text()
    start = text.index("## Walk-through: your own data")
    end = text.index("\n## ", start + 1)
    return BLOCK.findall(text[start:end])


def test_the_readme_walkthrough_runs_as_printed(tmp_path):
    blocks = walkthrough_blocks()
    assert [lang for lang, _ in blocks] == ["sh", "yaml", "sh", "sh", "python"]
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "SCORECAST_CACHE": str(tmp_path / "cache"),
        "HF_HUB_OFFLINE": "1",
        "COLUMNS": "160",
    }
    outputs = []
    for lang, body in blocks:
        if lang == "yaml":
            name = body.splitlines()[0].lstrip("# ").strip()
            (tmp_path / name).write_text(body)
            continue
        cmd = ["bash", "-e", "-c", body] if lang == "sh" else [sys.executable, "-c", body]
        done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, (
            f"README block failed:\n{body}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        )
        outputs.append(done.stdout + done.stderr)
    setup, run, serve, python = outputs
    assert setup.startswith("id,audio,score")
    assert "seed0-rep0-fold3" in run and "out-of-fold metrics" in run  # a line per fold model, then metrics
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert len(scores) == 16 and scores["id"].iloc[0] == "newdata/audio/clip0000.wav"
    assert "matched 16 ids" in run and "systems=" in run  # evaluate: shared ids, system column from the recipe
    assert '"id":"clip0000.wav"' in serve.replace(" ", "") and '"score":' in serve
    assert "clip0001.wav" in python and "std.score" in python
    assert (tmp_path / "runs" / "my-mos" / "report" / "index.html").is_file()
