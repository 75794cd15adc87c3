"""Shared fixtures. Offline before anything imports transformers; data found in ../shared/data."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["ORT_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import torch  # noqa: E402

# One intra-op thread: on a loaded 2-core machine torch's thread pool spins and tiny models crawl.
torch.set_num_threads(1)

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Every test starts on one torch thread, whatever an earlier test set (tiny models are fastest on
    one thread and immune to a busy machine)."""
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(1)


def shared_data_dir() -> Path:
    return Path(os.environ.get("SCORECAST_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (or $SCORECAST_DATA); skips the test with a clear message where absent."""
    root = shared_data_dir()
    if not root.is_dir():
        pytest.skip(f"real data not found at {root} (set SCORECAST_DATA to the shared data folder)")
    return root


def require_data(root: Path, *parts: str) -> Path:
    path = root.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data file not found: {path}")
    return path
