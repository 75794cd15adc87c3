"""Output folders that are never silently replaced, and are replaced whole when asked.

``scorecast cv/train/ensemble --out RUN`` refuses a RUN that already holds files unless
``overwrite``; the run is written into a staging folder beside RUN (``.RUN.partial``) and renamed
into place only when it is complete, so a failed or interrupted run leaves the old folder as it was,
and an overwritten folder keeps nothing of the old run (no stale ``fold3`` logs beside new results).

    check_output_dir(out, overwrite)            # before any encoding or training
    with staged_output_dir(out, overwrite) as staging:
        run_cv(..., staging)                    # RUN appears (or is replaced) when the block ends
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scorecast.errors import ConfigError


def check_output_dir(out: str | Path, overwrite: bool, flag: str = "--out") -> Path:
    """``out`` as a Path; ConfigError if it is a file, or a folder holding files and not ``overwrite``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{flag} {out}: expected a folder for the run, got an existing file")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ConfigError(
            f"{flag} {out}: the folder already holds a run (or other files); expected a new folder, "
            "or pass --overwrite to replace it whole"
        )
    return out


def emptied_output_dir(out: str | Path, overwrite: bool, flag: str = "--out") -> Path:
    """For outputs that name paths inside themselves (``scorecast adapt``) and so cannot be staged elsewhere:
    :func:`check_output_dir`, then, with ``overwrite``, the old folder deleted before anything is written."""
    out = check_output_dir(out, overwrite, flag)
    if overwrite and out.is_dir():
        shutil.rmtree(out)
    return out


def _staging(out: Path) -> Path:
    return out.parent / f".{out.name}.partial"


#: environment variables in which launchers (Lightning, torchrun, SLURM, by-hand multi-node runs) give a
#: process its rank; the process that writes the run folder has 0 in every one that is set
RANK_VARIABLES = ("RANK", "NODE_RANK", "LOCAL_RANK", "GROUP_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


def launched_as_rank_zero() -> bool:
    """Whether this process is rank 0 by its launcher's environment (known before any process group
    exists: a second node started by hand with ``NODE_RANK=1`` must not touch the run folder)."""
    return all(os.environ.get(name, "0").strip() in ("", "0") for name in RANK_VARIABLES)


@contextmanager
def staged_output_dir(out: str | Path, overwrite: bool = False, *, publish: bool | None = None) -> Iterator[Path]:
    """Yield a fresh staging folder beside ``out``; on success rename it to ``out`` (the old ``out``,
    if any, is moved aside first and deleted after). On error the staging folder is removed and
    ``out`` is untouched. Only rank 0 (``publish``; default: :func:`launched_as_rank_zero`) makes,
    renames or removes the folder; other ranks of a distributed run write nothing there."""
    out = check_output_dir(out, overwrite)
    staging = _staging(out)
    leader = launched_as_rank_zero() if publish is None else publish
    if leader:
        if staging.exists():  # left by an interrupted run into the same folder
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
    try:
        yield staging
    except BaseException:
        if leader:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    if leader:
        replace_dir(staging, out)


def replace_dir(new: Path, out: Path) -> None:
    """Put folder ``new`` at ``out``: rename(out -> aside), rename(new -> out), delete aside."""
    aside = out.parent / f".{out.name}.old"
    if aside.exists():
        shutil.rmtree(aside)
    if out.exists():
        out.rename(aside)
    try:
        new.rename(out)
    except OSError:
        if aside.exists() and not out.exists():
            aside.rename(out)  # put the old run back
        raise
    shutil.rmtree(aside, ignore_errors=True)
