"""Progress bars for long work (rich), silent when disabled or when nothing is to be done."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)


class _Bar:
    def __init__(self, progress: Progress | None, task: int | None) -> None:
        self._progress, self._task = progress, task

    def advance(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def describe(self, text: str) -> None:
        """Replace the text shown after the bar (e.g. ``loss 0.81 UA 54.2``)."""
        if self._progress is not None:
            self._progress.update(self._task, status=text)


@contextmanager
def progress_bar(total: int, description: str, enabled: bool = True) -> Iterator[_Bar]:
    """A bar on standard error; yields an object with ``advance(n)`` and ``describe(text)``."""
    if not enabled:
        yield _Bar(None, None)
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        transient=False,
        disable=not sys.stderr.isatty() and not _force(),
    )
    with progress:
        task = progress.add_task(description, total=total, status="")
        yield _Bar(progress, task)


def _force() -> bool:
    import os

    return os.environ.get("EMOVOX_PROGRESS", "") == "1"
