"""Training progress as one line per member (fold, seed): epoch, the monitored validation metric,
and the time left, drawn by rich on stderr::

    with member_progress():          # the CLI's cv / train / adapt wrap their run in this
        run_cv(...)                  # every Trainer built meanwhile reports to it

Outside the block nothing is drawn (the Python API stays quiet). The time left of a member assumes
it runs to ``max_epochs`` at its average epoch time; early stopping ends it sooner, and its line
then says at which epoch and with which best value.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lightning.pytorch.callbacks import Callback

_ACTIVE: list[Any] = []  # the rich Progress of the innermost member_progress block


@contextmanager
def member_progress(console: Any = None, enabled: bool = True) -> Iterator[Any]:
    """Show one progress line per member trained inside the block (``enabled=False``: no lines)."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress, TextColumn

    progress = Progress(
        TextColumn("{task.description}  {task.fields[status]}"),
        console=console or Console(stderr=True),
        refresh_per_second=2,
    )
    _ACTIVE.append(progress)
    try:
        with progress:
            yield progress
    finally:
        _ACTIVE.remove(progress)


def progress_callbacks(name: str, max_epochs: int, monitor: str | None) -> list[Callback]:
    """The callbacks a Trainer gets for the active :func:`member_progress` block (none outside one)."""
    if not _ACTIVE:
        return []
    return [MemberLine(_ACTIVE[-1], name, max_epochs, monitor)]


def describe_metric(monitor: str | None, value: float | None, best: float | None) -> str:
    """``val_lcc 0.8123 (best 0.8200)``; empty without a monitored metric."""
    if monitor is None or value is None:
        return ""
    text = f"{monitor} {value:.4f}"
    return text if best is None or best == value else f"{text} (best {best:.4f})"


class MemberLine(Callback):
    """Updates one member's line after every training epoch: epoch, the latest validation value, the
    time left (at this member's average epoch time, to ``max_epochs``)."""

    def __init__(self, progress: Any, name: str, max_epochs: int, monitor: str | None) -> None:
        self.progress, self.name, self.monitor = progress, name, monitor
        self.max_epochs = max(1, int(max_epochs))
        self.task: Any = None
        self.value: float | None = None
        self.best: float | None = None
        self.started = 0.0

    def on_train_start(self, trainer, pl_module) -> None:
        if trainer.global_rank != 0:
            return
        self.started = time.perf_counter()
        self.task = self.progress.add_task(self.name, status=f"epoch 0/{self.max_epochs}")

    def on_validation_end(self, trainer, pl_module) -> None:
        if self.monitor is None or trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        self.value = value
        if value == value:  # not NaN
            from scorecast.training.module import monitor_mode

            lower = monitor_mode(self.monitor) == "min"
            if self.best is None or (value < self.best if lower else value > self.best):
                self.best = value

    def status(self, epochs: int, done: bool) -> str:
        seconds = time.perf_counter() - self.started
        metric = describe_metric(self.monitor, self.value, self.best)
        if done:
            stop = f"stopped early at epoch {epochs}" if epochs < self.max_epochs else f"epoch {epochs}"
            return "  ".join(p for p in (stop, metric, f"done in {seconds:.1f} s") if p)
        left = seconds / max(epochs, 1) * (self.max_epochs - epochs)
        return "  ".join(p for p in (f"epoch {epochs}/{self.max_epochs}", metric, f"{left:.0f} s left") if p)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.task is not None:
            self.progress.update(self.task, status=self.status(int(trainer.current_epoch) + 1, False))

    def on_fit_end(self, trainer, pl_module) -> None:
        if self.task is not None:
            self.progress.update(self.task, status=self.status(int(trainer.current_epoch), True))
