"""The ``scorecast`` command: one Typer app; each verb lives in ``scorecast.cli.<verb>``.

Command modules keep heavy imports (torch, lightning, transformers) inside their functions so that
``scorecast --help`` and light verbs start fast.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# transformers' and the hub's tqdm bars (weights loading) break rich's lines; the CLI draws its own
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import typer  # noqa: E402

from scorecast.errors import ScorecastError  # noqa: E402

app = typer.Typer(
    name="scorecast",
    help="Learn to predict the scores people give (MOS, alignment, grammar, text judgements).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        from scorecast.version import __version__

        typer.echo(f"scorecast {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", callback=_version, is_eager=True
    ),
) -> None:
    """Learn to predict the scores people give (MOS, alignment, grammar, text judgements)."""


def _flags_without_type() -> None:
    """Help lists a flag (--json, --progress/--no-progress) without a ``<bool>`` type: it takes no value."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich
    if getattr(shown, "_scorecast", False):
        return

    def display_type_rich(self, ctx):
        return None if self.is_flag else shown(self, ctx)

    display_type_rich._scorecast = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich


_flags_without_type()


# Each module defines register(app). Order is the order in --help.
COMMAND_MODULES = [
    "demo",
    "embed",
    "cache",
    "train",
    "ensemble",
    "adapt",
    "predict",
    "score",
    "evaluate",
    "report",
    "serve",
]

for _name in COMMAND_MODULES:
    importlib.import_module(f"scorecast.cli.{_name}").register(app)


def show_log_messages(level: int = logging.INFO) -> None:
    """Print scorecast's own log messages (notes such as "SWA is on: early stopping is off", and
    warnings) on stderr through rich, once per process. Only the CLI does this: a library leaves
    logging to its host program."""
    logger = logging.getLogger("scorecast")
    if any(getattr(h, "_scorecast_cli", False) for h in logger.handlers):
        return
    from rich.console import Console
    from rich.logging import RichHandler

    handler = RichHandler(
        console=Console(stderr=True), show_time=False, show_path=False, markup=False, rich_tracebacks=False
    )
    handler._scorecast_cli = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)


def main() -> None:
    show_log_messages()
    try:
        app()
    except ScorecastError as exc:
        from rich.console import Console
        from rich.markup import escape

        # escaped: messages quote values such as [8, -1] or 'text=[a, b]', which are not markup
        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, markup=True)
        sys.exit(2)
    finally:
        from scorecast.runs.folder import close_distributed

        close_distributed()


if __name__ == "__main__":
    main()
