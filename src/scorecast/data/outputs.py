"""Output files that must not replace the inputs they are computed from."""

from __future__ import annotations

import os
from pathlib import Path

from scorecast.errors import ConfigError


def check_not_an_input(out: str | os.PathLike, inputs: dict[str, str | os.PathLike | None], flag: str) -> None:
    """ConfigError when the output file ``out`` is one of ``inputs`` ({what: path}) or lies inside a folder
    among them; ``flag`` names the option in the message (e.g. ``--out``)."""
    target = Path(out).resolve()
    for what, path in inputs.items():
        if path is None:
            continue
        source = Path(path).resolve()
        if target == source:
            raise ConfigError(f"{flag} {out}: expected a new file, got the {what} itself (it would be replaced)")
        if source.is_dir() and target.is_relative_to(source):
            raise ConfigError(f"{flag} {out}: expected a file outside the {what} {path}, got one inside it")
