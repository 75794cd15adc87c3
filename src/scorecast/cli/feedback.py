"""What the CLI tells a user while a verb runs: rows left out (counted, the first few printed, all of
them written to ``skipped.csv``) and training progress (a line per member). Printing only: the
library raises :class:`~scorecast.errors.SkippedRowsWarning` and writes nothing by itself."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from scorecast.errors import SkippedRowsWarning

SHOW_FIRST = 3


@contextmanager
def collect_skipped() -> Iterator[list[dict[str, Any]]]:
    """Collect the rows of every SkippedRowsWarning raised inside the block (other warnings pass on)."""
    rows: list[dict[str, Any]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("always", SkippedRowsWarning)
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if isinstance(message, SkippedRowsWarning):
                rows.extend(message.rows or [{"reason": str(message)}])
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield rows


def report_skipped(rows: list[dict[str, Any]], out_dir: Path | None, console: Any = None) -> Path | None:
    """Print how many rows/items were left out and the first few; write them all to ``out_dir/skipped.csv``."""
    if not rows:
        return None
    from rich.console import Console
    from rich.markup import escape

    from scorecast.runs.folder import write_skipped

    console = console or Console(stderr=True)
    path = write_skipped(Path(out_dir), rows) if out_dir is not None else None
    where = f"; all of them, with the reason, in [bold]{escape(str(path))}[/]" if path else ""
    console.print(f"[yellow]left out {len(rows)} row(s)/item(s)[/]{where}; the first:", highlight=False)
    for row in rows[:SHOW_FIRST]:
        place = ", ".join(f"{k} {row[k]}" for k in ("file", "row", "field", "id") if row.get(k) not in (None, ""))
        console.print(f"  {escape(place + ': ' if place else '')}{escape(str(row.get('reason', '')))}", highlight=False)
    return path


@contextmanager
def training_lines(enabled: bool = True) -> Iterator[None]:
    """A progress line per trained member (fold, seed) while the block runs (``training.progress``)."""
    from scorecast.training.progress import member_progress

    with member_progress(enabled=enabled):
        yield
