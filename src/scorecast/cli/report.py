"""``scorecast report RUN``: PNG plots and an HTML page for a run folder (see :mod:`scorecast.report.page`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        run: Annotated[Path, typer.Argument(help="Run folder written by `scorecast cv` or `scorecast train`.")],
        out: Annotated[
            Path | None, typer.Option("--out", "-o", help="Where to write the report (default RUN/report).")
        ] = None,
        colour_by: Annotated[
            str, typer.Option("--colour-by", "--color-by", help="Colour the scatter by group, fold or none.")
        ] = "group",
    ) -> None:
        """Write RUN/report/index.html and PNG plots (scatter, residuals, folds, learning curves, calibration, systems)."""
        from rich.console import Console

        from scorecast.report.page import write_report

        path = write_report(run, out, colour_by)
        pngs = sorted(p.name for p in path.parent.glob("*.png"))
        Console().print(
            f"report: [bold]{path}[/] ({len(pngs)} figures: {', '.join(pngs)})", highlight=False, soft_wrap=True
        )
