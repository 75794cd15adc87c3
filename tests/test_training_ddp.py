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


def test_close_distributed_is_a_no_op_without_a_group(monkeypatch):
    import torch.distributed as dist

    from scorecast.runs.folder import close_distributed

    assert not dist.is_initialized()
    close_distributed()  # nothing to close, nothing raised
    monkeypatch.delitem(sys.modules, "torch")
    close_distributed()  # a run that never imported torch imports nothing


def test_close_distributed_destroys_an_open_group(tmp_path):
    import torch.distributed as dist

    from scorecast.runs.folder import close_distributed

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    assert dist.is_initialized()
    close_distributed()
    assert not dist.is_initialized()
