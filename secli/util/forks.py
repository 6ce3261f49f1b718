"""``fork_map``: jobs run in forked worker processes that a signal can never leave behind.

Why not ``multiprocessing.Pool``: when SIGTERM reached the whole process group while figures
were drawn, the pool's workers died under it and ``terminate()``/``join()`` hung on the pool's
internal locks and queues in 4 of 20 trials (zombie workers, the temporary folder left). Here
each worker is a plain ``fork`` writing length-prefixed results to its own pipe; the parent
reads them with ``select`` and, however it leaves (results in, an error, SIGINT, SIGTERM,
SIGHUP), kills every worker still alive with SIGKILL and reaps it, so none is left running or
as a zombie. Workers are also registered with ``secli.util.signals``, whose watchdog kills them
if the parent cannot unwind in time.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
from collections.abc import Callable
from typing import Any

from secli.util.errors import SecliError, describe_exception
from secli.util.signals import register_child, reset_in_child, signals_deferred, unregister_child

_HEADER = 8  # bytes of the length before each pickled (index, outcome)


def fork_map(job: Callable[[int], Any], count: int, workers: int) -> list[Any]:
    """``[job(0), ..., job(count - 1)]``, computed in ``workers`` forked processes (job ``i`` in
    worker ``i % workers``); in this process when ``workers`` < 2. An exception in a job is
    raised here as it was raised there; a worker that dies is a ``SecliError``."""
    if workers < 2 or count < 2:
        return [job(i) for i in range(count)]
    readers: dict[int, int] = {}  # read end -> pid
    try:
        for worker in range(workers):
            with signals_deferred():  # a worker is recorded before any signal can unwind this
                read_end, write_end = os.pipe()
                pid = os.fork()
                if pid == 0:
                    _worker(job, range(worker, count, workers), read_end, write_end, list(readers))
                os.close(write_end)
                readers[read_end] = pid
                register_child(pid)
        outcomes = _collect(readers, count)
    finally:
        _end(readers)
    return [outcomes[i] for i in range(count)]


def _worker(job: Callable[[int], Any], indices: range, read_end: int, write_end: int, inherited: list[int]) -> None:
    """The child's whole life: never returns into the parent's code, whatever happens."""
    code = 1
    try:
        reset_in_child()
        for fd in (read_end, *inherited):
            os.close(fd)
        with os.fdopen(write_end, "wb") as out:
            for index in indices:
                try:
                    outcome: tuple[str, Any] = ("ok", job(index))
                except Exception as exc:  # raised again in the parent, as it was
                    outcome = ("raise", exc)
                try:
                    data = pickle.dumps((index, outcome), protocol=pickle.HIGHEST_PROTOCOL)
                except Exception as exc:  # an exception (or a result) that does not pickle
                    data = pickle.dumps((index,
                                         ("error", describe_exception(exc if outcome[0] == "ok" else outcome[1]))))
                out.write(len(data).to_bytes(_HEADER, "little") + data)
        code = 0
    finally:
        os._exit(code)


def _collect(readers: dict[int, int], count: int) -> dict[int, Any]:
    """Every job's result, read from the workers' pipes as they come."""
    buffers = {fd: bytearray() for fd in readers}
    outcomes: dict[int, Any] = {}
    open_fds = set(readers)
    while open_fds:
        ready, _, _ = select.select(list(open_fds), [], [])
        for fd in ready:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                open_fds.discard(fd)
                continue
            buffers[fd] += chunk
            _frames(buffers[fd], outcomes)
    if len(outcomes) < count:
        statuses = [_status(pid) for pid in readers.values()]
        raise SecliError(f"a worker process ended before its work was done ({', '.join(s for s in statuses if s)})")
    return outcomes


def _frames(buffer: bytearray, outcomes: dict[int, Any]) -> None:
    while len(buffer) >= _HEADER:
        size = int.from_bytes(buffer[:_HEADER], "little")
        if len(buffer) < _HEADER + size:
            return
        index, (kind, value) = pickle.loads(bytes(buffer[_HEADER:_HEADER + size]))  # our own child's bytes
        del buffer[:_HEADER + size]
        if kind == "raise":
            raise value
        if kind == "error":
            raise SecliError(f"a worker process failed: {value}")
        outcomes[index] = value


def _status(pid: int) -> str:
    """How a worker ended, looked at without reaping it (``_end`` reaps: a reaped pid could be
    another process's by the time it would be killed)."""
    with contextlib.suppress(ChildProcessError, OSError, AttributeError):
        found = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if found is not None and found.si_code == os.CLD_KILLED:
            return f"killed by {signal.Signals(found.si_status).name}"
        if found is not None and found.si_status:
            return f"exit status {found.si_status}"
    return ""


def _end(readers: dict[int, int]) -> None:
    """Kill and reap every worker still there, close every pipe (signals held back meanwhile)."""
    with signals_deferred():
        for fd, pid in readers.items():
            with contextlib.suppress(OSError):
                os.close(fd)
            with contextlib.suppress(ProcessLookupError, OSError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, 0)
            unregister_child(pid)
