"""SIGINT, SIGTERM and SIGHUP as exceptions, so ``finally`` blocks clean up, and a run ends soon.

Within ``termination_raises()`` (every command runs inside it):

- the first of these signals raises in the main thread: ``KeyboardInterrupt`` for SIGINT (as
  Python does), ``Terminated`` for SIGTERM and SIGHUP (a closed terminal), so temporary files
  and folders are removed on the way out and the command exits 128 + the signal's number
  (130, 143, 129) instead of dying where it stands and leaving them behind;
- a second signal while the first unwinds is noted, not raised: it would cut the clean-up short
  (a SIGTERM sent to a process group reaches a process once per member that forwards it);
- a watchdog thread ends the process ``GRACE_SECONDS`` after the first signal in case the main
  thread cannot get back to Python (a long native call): it removes the temporary paths still
  registered (``register_temporary``), kills registered child processes and exits with the
  same code;
- ``signals_deferred()`` holds a signal back while a temporary path is created and registered,
  or moved into place and unregistered, so no signal lands between the two.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

#: Seconds between the first signal and the watchdog's exit (the clean-up normally takes far less).
GRACE_SECONDS = 5.0
HANDLED = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class Terminated(BaseException):
    """The process received SIGTERM or SIGHUP; ``exit_code`` is 128 + the signal's number."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum


@dataclass
class _State:
    """The process's signal state: one instance, ``_STATE``."""

    received: int | None = None  # the first signal, once one came
    pending: int | None = None  # a signal held back by signals_deferred
    deferred: int = 0
    temporaries: set[str] = field(default_factory=set)
    children: set[int] = field(default_factory=set)
    # set when the block that handles signals has ended: the watchdog stands down
    done: threading.Event = field(default_factory=threading.Event)


_STATE = _State()
_LOCK = threading.Lock()


def _exception(signum: int) -> BaseException:
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if _STATE.received is not None:
        return  # already unwinding from the first one: let the clean-up finish
    _STATE.received = signum
    threading.Thread(target=_watchdog, args=(signum, _STATE.done), name="secli-signal-watchdog", daemon=True).start()
    if _STATE.deferred:
        _STATE.pending = signum
        return
    raise _exception(signum)


def _watchdog(signum: int, done: threading.Event) -> None:
    if done.wait(GRACE_SECONDS):
        return  # the run unwound in time
    remove_registered()
    os._exit(128 + signum)


def remove_registered() -> None:
    """Kill the registered children and remove the registered temporary paths (the watchdog's
    last act; also safe to call from a ``finally``)."""
    with _LOCK:
        children, paths = list(_STATE.children), list(_STATE.temporaries)
    for pid in children:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    for path in paths:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(path)


def received_signal() -> int | None:
    """The signal the current (or last) ``termination_raises`` block received, if any."""
    return _STATE.received


def register_temporary(path: str | os.PathLike[str]) -> None:
    with _LOCK:
        _STATE.temporaries.add(os.fspath(path))


def unregister_temporary(path: str | os.PathLike[str]) -> None:
    with _LOCK:
        _STATE.temporaries.discard(os.fspath(path))


def register_child(pid: int) -> None:
    with _LOCK:
        _STATE.children.add(pid)


def unregister_child(pid: int) -> None:
    with _LOCK:
        _STATE.children.discard(pid)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """A signal arriving inside the block is raised when the block ends (also when it ends with
    another exception: the signal wins), never in the middle of it."""
    _STATE.deferred += 1
    try:
        yield
    finally:
        _STATE.deferred -= 1
        pending = _STATE.pending
        if not _STATE.deferred and pending is not None:
            _STATE.pending = None
            raise _exception(pending)


def reset_in_child() -> None:
    """In a forked worker: SIGTERM and SIGHUP end it at once, SIGINT is its parent's to handle
    (the parent kills its workers on the way out), and nothing of the parent's state is kept."""
    for signum in HANDLED:
        signal.signal(signum, signal.SIG_IGN if signum == signal.SIGINT else signal.SIG_DFL)
    _STATE.received = _STATE.pending = None
    _STATE.deferred = 0
    _STATE.temporaries, _STATE.children = set(), set()


@contextlib.contextmanager
def termination_raises() -> Iterator[None]:
    """Within the block SIGINT, SIGTERM and SIGHUP raise as described above (main thread only:
    elsewhere signals cannot be handled); the previous handlers come back after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {signum: signal.signal(signum, _on_signal) for signum in HANDLED}
    _STATE.received = _STATE.pending = None
    _STATE.done = threading.Event()
    try:
        yield
    finally:
        _STATE.done.set()
        remove_registered()  # whatever a signal caught between two steps: no temporary outlives the run
        for signum, handler in previous.items():
            signal.signal(signum, handler)
