"""SIGTERM as an exception, so ``finally`` blocks and ``except BaseException`` clean up after it.

SIGINT already raises ``KeyboardInterrupt``; ``install_termination_handler`` makes SIGTERM raise
``Terminated`` the same way, so temporary files and folders are removed on the way out and the
command exits 143 (128 + 15) instead of dying where it stands.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class Terminated(BaseException):
    """The process received SIGTERM."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


@contextlib.contextmanager
def termination_raises() -> Iterator[None]:
    """Within the block SIGTERM raises ``Terminated`` (main thread only: elsewhere signals cannot
    be handled); the previous handler comes back after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
