"""Writing result files safely: never clobber silently, never leave a half-written file.

- A new file is written to a temporary file beside the target, then linked into place with
  ``os.link``, which fails if the target appeared meanwhile: two runs racing for one ``--out``
  cannot both win. With ``force`` the temporary file is renamed over the target instead.
- Only a regular file is ever replaced (never a FIFO, a device, a folder, or a link to one).
- An output folder is built in a sibling temporary folder and renamed into place at the end
  (with ``force``, exchanged with the old folder, which is then removed whole).
- An output never is, contains or sits inside a path the run reads (``check_apart``): refused
  before anything is touched (``--out P/proj --force`` once deleted the ``--from-stats P/proj/stats``
  it re-plotted).
- When the final save fails (disk full, permission), the result is kept in a named place and
  the error says where, also when the writer (``torch.save``) reports the failure as its own
  error. Temporary files are removed on any exception, SIGINT, SIGTERM and SIGHUP included
  (see ``secli.util.signals``, which also removes them if the process cannot unwind in time).
Output folders are ``secli.util.output_folders``.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from secli.util.errors import SecliError, SecliUsageError
from secli.util.signals import register_temporary, signals_deferred, unregister_temporary

#: What a run reads, for ``check_apart``: (what it is, its path); None entries are skipped.
Reads = Iterable[tuple[str, Any]]

#: Test hook: ``SECLI_TEST_SIGNAL_AT=<point>:<INT|TERM>`` makes the process send itself that signal
#: when it reaches ``<point>`` (``file-written``, ``folder-written``), so tests interrupt a run at
#: a chosen moment without sleeping.
TEST_SIGNAL_ENV = "SECLI_TEST_SIGNAL_AT"


def test_hook(point: str) -> None:
    spec = os.environ.get(TEST_SIGNAL_ENV, "")
    if not spec or spec.split(":")[0] != point:
        return
    import signal

    name = spec.split(":")[1] if ":" in spec else "INT"
    os.kill(os.getpid(), getattr(signal, f"SIG{name}"))


def _refuse_special(path: Path) -> None:
    """Refuse anything at ``path`` that is not a regular file (after following links)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if path.is_symlink():
            raise SecliError(f"{path} is a dangling symbolic link; refusing to write through it") from None
        return
    except OSError as exc:
        raise SecliError(f"cannot inspect {path}: {os.strerror(exc.errno or 0)}") from None
    if stat.S_ISDIR(mode):
        raise SecliError(f"{path} is a directory, not a file")
    if not stat.S_ISREG(mode):
        raise SecliError(f"{path} is not a regular file ({_kind(mode)}); secli replaces only regular "
                         "files, even with --force")


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a special file"


def check_writable(path: str | Path, force: bool = False, option: str = "--out", reads: Reads = ()) -> Path:
    """The up-front check every command makes before its slow part: refuse an existing file
    unless ``force``, and anything but a regular file even with it, and a file that is, or sits
    inside, one of ``reads`` (``check_apart``); create missing parent folders.

    A folder or an existing file named by ``option`` is a mistake in the request (exit 2), found
    before minutes of work; the same file appearing by the end of the run is a race with another
    process, which ``atomic_write`` reports as a runtime failure (exit 1).
    """
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        raise SecliUsageError(f"{option} {path} is a folder; give a file name")
    check_apart(path, reads, option)
    _refuse_special(path)
    if os.path.lexists(path) and not force:
        raise SecliUsageError(f"{option} {path} exists", hint="pass --force to replace it")
    _make_parent(path)
    return path


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SecliError(f"cannot create folder {path.parent}: {os.strerror(exc.errno or 0)}") from None


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], object], force: bool = False) -> Path:
    """Write through a temporary file in the same folder, then link or rename it to ``path``.

    Readers see the old file or the complete new one. Without ``force`` the file must not exist
    when the write ends either (a concurrent run that got there first wins; this one fails).
    If the temporary file cannot be written (disk full, no permission), the result goes to a
    rescue file in the system's temporary folder and the error names it.
    """
    path = Path(path)
    _refuse_special(path)
    if os.path.lexists(path) and not force:
        # not the up-front usage error: by now the run has done its work, and callers that check
        # first (every command does) get here only when another run wrote the file meanwhile
        raise SecliError(f"{path} already exists; left it as it is (another run may have written it meanwhile)",
                         hint="pass --force to replace it")
    _make_parent(path)
    tmp = _write_temporary(path, write)
    try:
        test_hook("file-written")
        _refuse_special(path)
        with signals_deferred():  # the move and the registry change as one step
            _move_into_place(tmp, path, force)
            unregister_temporary(tmp)
    except SecliError:
        _remove(tmp)
        raise
    except OSError as exc:
        unregister_temporary(tmp)  # kept on purpose: the error names it
        raise SecliError(f"cannot save {path}: {os.strerror(exc.errno or 0)}; the result is kept in {tmp}") from None
    except BaseException:
        _remove(tmp)
        raise
    return path


def _move_into_place(tmp: str, path: Path, force: bool) -> None:
    if force:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise SecliError(f"{path} appeared while this run was writing it (another run?); left it as it is") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        _exclusive_rename(tmp, path)  # a file system without hard links
    os.unlink(tmp)


def _remove(tmp: str) -> None:
    with signals_deferred():
        Path(tmp).unlink(missing_ok=True)
        unregister_temporary(tmp)


def _exclusive_rename(tmp: str, path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # claims the name, or FileExistsError
    os.close(fd)
    os.replace(tmp, path)


def _write_temporary(path: Path, write: Callable[[IO[bytes]], object]) -> str:
    """The result in a temporary file beside ``path``; on a failed write, in a rescue file."""
    try:
        return _write_file_in(path.parent, f".{path.name}.", write)
    except OSError as exc:
        reason = os.strerror(exc.errno or 0) if exc.errno else str(exc)
    try:
        rescued = _write_file_in(Path(tempfile.gettempdir()), f"secli-rescued-{path.stem}-", write,
                                 keep_name=path.suffix)
    except OSError:
        raise SecliError(f"cannot save {path}: {reason}; the result could not be kept anywhere else either") from None
    unregister_temporary(rescued)  # kept on purpose: the error names it
    raise SecliError(f"cannot save {path}: {reason}; the result is kept in {rescued}")


class _Recording:
    """A file handle that remembers the OSError its ``write`` raised: a writer such as
    ``torch.save`` reports a full disk as its own RuntimeError, and the result is rescued only
    when the failure is known to be the file system's."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self._handle.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


def _write_file_in(folder: Path, prefix: str, write: Callable[[IO[bytes]], object], keep_name: str = ".tmp") -> str:
    fd, name = -1, ""
    try:
        with signals_deferred():  # created and registered as one step; a signal held meanwhile is raised in this try
            fd, name = tempfile.mkstemp(prefix=prefix, suffix=keep_name, dir=folder)
            register_temporary(name)
        with os.fdopen(fd, "wb") as handle:
            fd = -1  # the handle closes it now
            recording = _Recording(handle)
            try:
                write(recording)  # type: ignore[arg-type]
            except OSError:
                raise
            except Exception:
                if recording.error is not None:
                    raise recording.error from None
                raise
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(name, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
    except BaseException:
        if fd >= 0:
            os.close(fd)
        if name:
            _remove(name)
        raise
    return name


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str, force: bool = False) -> Path:
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")), force)


def check_apart(output: str | Path, reads: Reads, option: str = "--out") -> None:
    """Refuse (exit 2) an output that is, contains or sits inside a path the run reads.

    ``reads`` names what the run reads (a model file, an image folder, a spec, saved statistics).
    Compared by identity (device and inode) along each path's existing ancestors, after links:
    a symbolic link, a hard link, ``..`` or a bind mount between the two is seen through. A read
    path that does not exist is skipped (the run fails on it by itself).
    """
    out = Path(output)
    out_chain = _identity_chain(out)
    out_id = _identity(Path(os.path.realpath(out)))  # "stats/x/../.." is stats' parent even when x is not there
    for what, path in reads:
        if not isinstance(path, (str, os.PathLike)) or not os.path.lexists(path):
            continue  # None, a ModelSpec object, a name that is not a path
        read_id = _identity(Path(path))
        if read_id is None:
            continue
        if out_id is not None and out_id == read_id:
            raise SecliUsageError(f"{option} {out} is {what} {path}, which this run reads; write elsewhere")
        if out_id is not None and out_id in _identity_chain(Path(path))[1:]:
            raise SecliUsageError(f"{option} {out} contains {what} {path}, which this run reads "
                                  "(replacing it would delete that); write elsewhere")
        if read_id in out_chain:
            raise SecliUsageError(f"{option} {out} is inside {what} {path}, which this run reads; write elsewhere")


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _identity_chain(path: Path) -> list[tuple[int, int]]:
    """The identities of ``path`` (when it exists) and of every existing folder above it."""
    real = Path(os.path.realpath(path))
    chain = []
    for part in (real, *real.parents):
        found = _identity(part)
        if found is not None:
            chain.append(found)
    return chain

