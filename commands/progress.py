"""One progress bar for every long command: Rich, on stderr, only on a terminal.

The library reports progress through plain callbacks; this turns them into a bar. Both kinds
of callback the library uses are offered: ``advance(n)`` (n more items done) and
``update(done, total, what)`` (absolute position and what is being worked on).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from commands.common import is_tty, stderr


@dataclass
class ProgressHandle:
    bar: Any = None
    task: Any = None

    def advance(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.advance(self.task, n)

    def update(self, done: int, total: int | None, what: str) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=done, total=total, description=what)

    def describe(self, what: str) -> None:
        if self.bar is not None:
            self.bar.update(self.task, description=what)


@contextlib.contextmanager
def progress_bar(description: str, total: int | None, enabled: bool = True, unit: str = "") -> Iterator[ProgressHandle]:
    """Yield a handle whose methods move a bar; a silent handle when not on a terminal.

    ``enabled`` lets a command switch the bar off (``--format json``, ranks other than 0).
    """
    if not (enabled and is_tty()):
        yield ProgressHandle()
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn()]
    if unit:
        columns.append(TextColumn(unit))
    columns += [TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=stderr, transient=True) as bar:
        yield ProgressHandle(bar, bar.add_task(description, total=total))
