"""Output files that must not replace the inputs they are computed from."""

from __future__ import annotations

import os
from pathlib import Path

from scorecast.errors import ConfigError

PathLike = str | os.PathLike


def check_not_an_input(
    out: PathLike, files: dict[str, PathLike | None], flag: str, folders: dict[str, PathLike | None] | None = None
) -> None:
    """ConfigError when the output file ``out`` is one of the input ``files`` ({what: path}) or lies inside
    one of the ``folders`` ({what: path}) that must stay as they are (a scorer bundle); ``flag`` names the
    option in the message (e.g. ``--out``)."""
    target = Path(out).resolve()
    for what, path in files.items():
        if path is not None and target == Path(path).resolve():
            raise ConfigError(f"{flag} {out}: expected a new file, got the {what} itself (it would be replaced)")
    for what, path in (folders or {}).items():
        if path is not None and target.is_relative_to(Path(path).resolve()):
            raise ConfigError(f"{flag} {out}: expected a file outside the {what} {path}, got one inside it")
