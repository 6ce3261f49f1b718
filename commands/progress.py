"""One progress display for every long command, always on stderr, never on stdout.

On a terminal it is a Rich bar. Elsewhere (``2>log``, CI, a batch job) a bar would be noise
and silence looks like a hang, so a plain line is written at most every
``SECLI_PROGRESS_INTERVAL`` seconds (default 10; 0 writes every report, for tests), e.g.
``complexity: models 2/4, resnet50 + SE r=8 (21 s)``.

The library reports progress through plain callbacks; this turns them into either display.
Both kinds of callback the library uses are offered: ``advance(n)`` (n more items done) and
``update(done, total, what)`` (absolute position and what is being worked on).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from commands.common import is_tty, stderr
from secli.util.env_flags import SECONDS, seconds_value

INTERVAL_VARIABLE = "SECLI_PROGRESS_INTERVAL"
#: Seconds between two plain progress lines when stderr is not a terminal.
DEFAULT_INTERVAL = SECONDS[INTERVAL_VARIABLE][0]


def progress_interval() -> float:
    """``SECLI_PROGRESS_INTERVAL`` in seconds (unset: the default), read strictly and within its
    bounds by ``secli.util.env_flags`` like every variable secli reads."""
    return seconds_value(INTERVAL_VARIABLE)


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


@dataclass
class PlainProgress(ProgressHandle):
    """Rate-limited one-line reports on stderr, for logs: no cursor movement, no colour."""

    title: str = ""
    total: int | None = None
    unit: str = ""
    interval: float = DEFAULT_INTERVAL
    done: int = 0
    what: str = ""
    started: float = field(default_factory=lambda: time.monotonic())
    last: float = field(default_factory=lambda: time.monotonic())

    def advance(self, n: int = 1) -> None:
        self.done += n
        self._maybe_report()

    def update(self, done: int, total: int | None, what: str) -> None:
        self.done, self.total, self.what = done, total, what
        self._maybe_report()

    def describe(self, what: str) -> None:
        self.what = what

    def line(self) -> str:
        count = f"{self.unit or 'done'} {self.done}/{self.total if self.total is not None else '?'}"
        what = f", {self.what}" if self.what and self.what != self.title else ""
        return f"{self.title}: {count}{what} ({time.monotonic() - self.started:.0f} s)"

    def _maybe_report(self) -> None:
        now = time.monotonic()
        if now - self.last < self.interval:
            return
        self.last = now
        # sys.stderr, not the Rich console: a log file gets the text exactly, one line each
        print(self.line(), file=sys.stderr, flush=True)


@contextlib.contextmanager
def progress_bar(description: str, total: int | None, enabled: bool = True, unit: str = "") -> Iterator[ProgressHandle]:
    """Yield a handle whose methods move a bar (terminal) or write plain lines (otherwise).

    ``enabled`` lets a command switch progress off altogether (ranks other than 0, quiet runs).
    """
    if not enabled:
        yield ProgressHandle()
        return
    if not is_tty():
        yield PlainProgress(title=description, total=total, unit=unit, interval=progress_interval())
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
