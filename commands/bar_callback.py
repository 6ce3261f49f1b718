"""The library's ``progress(done, total, what)`` callbacks, shown on the shared progress bar."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any


class BarCallback:
    """A ``progress(done, total, what)`` callback that drives one bar of ``commands.progress``.

    The bar opens at the first report, when the total is known, with ``what`` as its
    description; each later report moves it by the images done since. ``open_bar(what, total)``
    opens it: each command passes its own ``progress_bar`` call, so it can say whether the bar
    is shown at all (``--format json``) and tests can replace it. Use as a context manager, so
    the bar closes however the run ends.
    """

    def __init__(self, open_bar: Callable[[str, int | None], contextlib.AbstractContextManager[Any]]) -> None:
        self._open = open_bar
        self._stack = contextlib.ExitStack()
        self._handle: Any = None
        self._done = 0

    def __call__(self, done: int, total: int | None, what: str) -> None:
        if self._handle is None:
            self._handle = self._stack.enter_context(self._open(what, total))
        self._handle.advance(done - self._done)
        self._done = done

    def __enter__(self) -> BarCallback:
        return self

    def __exit__(self, *exc: Any) -> bool | None:
        return self._stack.__exit__(*exc)
