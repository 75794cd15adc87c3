"""docs/scale.md is executed: each of its shell blocks runs exactly as printed, in order, in one
folder holding the README walk-through's recipe and a small table; two processes on this machine
stand for two machines."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from test_readme import walkthrough_blocks

DOC = Path(__file__).resolve().parents[1] / "docs" / "scale.md"


@pytest.mark.slow
def test_scale_commands_run_as_printed(tmp_path):
    from scorecast.cache.store import EmbeddingCache
    from scorecast.demo.job import make_corpus

    recipe = next(body for lang, body in walkthrough_blocks() if lang == "yaml")
    (tmp_path / "my.yaml").write_text(recipe)
    make_corpus(tmp_path / "mydata", n=16, seed=3)
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "HF_HUB_OFFLINE": "1"}
    env.update(OMP_NUM_THREADS="1", COLUMNS="160")
    env.pop("LOCAL_RANK", None)
    blocks = re.findall(r"```sh\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 4
    outputs = []
    for body in blocks:
        done = subprocess.run(
            ["bash", "-e", "-c", body], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, (
            f"docs/scale.md block failed:\n{body}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
        outputs.append(done.stdout + done.stderr)
    sharded, devices, nodes, torchrun = outputs
    # the two shards (disjoint by key, not necessarily 8 + 8) filled one cache with every item; the pack holds all
    shared = EmbeddingCache(tmp_path / "shared-cache")
    (ih,) = shared.identities()
    assert sum(1 for _ in shared.iter_keys(ih)) == 16 and "16 rows" in sharded
    local = EmbeddingCache(tmp_path / "local-cache")
    assert local.identities() == [ih] and sum(1 for _ in local.iter_keys(ih)) == 16
    for run, out in (("two-nodes", nodes), ("torchrun", torchrun)):
        folder = tmp_path / "runs" / run
        assert (folder / "bundle" / "scorecast.json").is_file() and "held-out metrics" in out
        assert json.loads((folder / "metrics.json").read_text())["holdout"] is True
    # node 1 (global rank 1) trained but wrote and printed nothing: it was part of a 2-process DDP run
    assert "held-out metrics" not in (tmp_path / "node1.log").read_text()
