"""DDP on CPU: two processes (gloo) train as well as one, and see the same validation metric.

Lightning's ``ddp`` strategy re-launches the command line, so the 2-process run is a script in a
subprocess (tests/ddp_script.py), never inside pytest's own process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ddp_script import run

SCRIPT = Path(__file__).with_name("ddp_script.py")


@pytest.mark.slow
def test_ddp_two_processes_match_one(tmp_path):
    out = tmp_path / "ddp.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    env.pop("LOCAL_RANK", None)
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            str(out),
            "--devices",
            "2",
            "--strategy",
            "ddp",
            "--log-dir",
            str(tmp_path / "logs"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ddp = json.loads(out.read_text())
    assert ddp["world_size"] == 2
    # the early-stopping metric is computed on the whole validation set, identical on both ranks
    assert ddp["val_lcc_per_rank"][0] == ddp["val_lcc_per_rank"][1]

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = run(devices=1, strategy="auto", log_dir=str(tmp_path / "single"))
    finally:
        torch.set_num_threads(before)
    assert single["world_size"] == 1
    assert ddp["lcc"] > 0.75 and single["lcc"] > 0.75, (ddp, single)
    assert abs(ddp["lcc"] - single["lcc"]) < 0.1, (ddp, single)
