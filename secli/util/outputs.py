"""Writing result files safely: never clobber silently, never leave a half-written file.

- A new file is written to a temporary file beside the target, then linked into place with
  ``os.link``, which fails if the target appeared meanwhile: two runs racing for one ``--out``
  cannot both win. With ``force`` the temporary file is renamed over the target instead.
- Only a regular file is ever replaced (never a FIFO, a device, a folder, or a link to one).
- An output folder is built in a sibling temporary folder and renamed into place at the end
  (with ``force``, exchanged with the old folder, which is then removed whole).
- When the final save fails (disk full, permission), the result is kept in a named place and
  the error says where. Temporary files are removed on any exception, SIGINT or SIGTERM
  included (see ``secli.util.signals``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from secli.util.errors import SecliError, SecliUsageError

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
        raise SecliError(f"{path} is not a regular file ({_kind(mode)}); secli replaces only regular files, even with --force")


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a special file"


def check_writable(path: str | Path, force: bool = False, option: str = "--out") -> Path:
    """The up-front check every command makes before its slow part: refuse an existing file
    unless ``force``, and anything but a regular file even with it; create missing parent folders.

    A folder or an existing file named by ``option`` is a mistake in the request (exit 2), found
    before minutes of work; the same file appearing by the end of the run is a race with another
    process, which ``atomic_write`` reports as a runtime failure (exit 1).
    """
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        raise SecliUsageError(f"{option} {path} is a folder; give a file name")
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
        if force:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise SecliError(f"{path} appeared while this run was writing it (another run?); left it as it is") from None
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                    raise
                _exclusive_rename(tmp, path)  # a file system without hard links
            os.unlink(tmp)
    except SecliError:
        Path(tmp).unlink(missing_ok=True)
        raise
    except OSError as exc:
        raise SecliError(f"cannot save {path}: {os.strerror(exc.errno or 0)}; the result is kept in {tmp}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


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
        rescued = _write_file_in(Path(tempfile.gettempdir()), f"secli-rescued-{path.stem}-", write, keep_name=path.suffix)
    except OSError:
        raise SecliError(f"cannot save {path}: {reason}; the result could not be kept anywhere else either") from None
    raise SecliError(f"cannot save {path}: {reason}; the result is kept in {rescued}")


def _write_file_in(folder: Path, prefix: str, write: Callable[[IO[bytes]], object], keep_name: str = ".tmp") -> str:
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=keep_name, dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(name, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return name


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str, force: bool = False) -> Path:
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")), force)


def check_out_folder(out: Path, force: bool, option: str = "--out") -> None:
    """The up-front check for an output folder: refuse a file (or a link to one), and a folder
    with something in it unless ``force``. A folder that is not empty is a mistake in the request
    (exit 2), as an existing ``--out`` file is (``check_writable``)."""
    if out.is_symlink():
        raise SecliError(f"{option} {out} is a symbolic link; give the folder itself")
    if out.exists() and not out.is_dir():
        raise SecliError(f"{option} {out} is a file, not a folder")
    if out.exists() and any(out.iterdir()) and not force:
        raise SecliUsageError(f"{option} {out} exists and is not empty", hint="pass --force to replace it")


@contextlib.contextmanager
def atomic_folder(out: str | Path, force: bool = False) -> Iterator[Path]:
    """A sibling temporary folder to write into; renamed to ``out`` when the block ends.

    Without ``force`` an ``out`` holding anything at the end (another run got there first) is
    left alone and this run fails. With ``force`` the old folder is replaced whole, never merged
    into. On an interruption (SIGINT, SIGTERM) or an error the temporary folder is removed, except
    when a save failed part-way (disk full): then the files written so far stay there and the
    error names the folder.
    """
    out = Path(out)
    if out.exists() and out.is_dir() and not out.is_symlink() and any(out.iterdir()) and not force:
        # after the run's work: another run filled it meanwhile (the up-front check is check_out_folder)
        raise SecliError(f"output folder {out} exists and is not empty; left it as it is (another run may have written it meanwhile)",
                         hint="pass --force to replace it")
    check_out_folder(out, force)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as exc:
        raise SecliError(f"cannot create a folder beside {out}: {os.strerror(exc.errno or 0)}") from None
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        try:
            yield tmp
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EACCES, errno.EDQUOT, errno.EROFS):
                shutil.rmtree(tmp, ignore_errors=True)
                raise SecliError(f"cannot write into {out}: {os.strerror(exc.errno)}; nothing was changed there") from None
            raise
        test_hook("folder-written")
        _move_folder_into_place(tmp, out, force)
    except SecliError as exc:
        if f"kept in {tmp}" in str(exc):  # the whole new folder is the kept result
            raise
        if "the result is kept in" in str(exc) and any(tmp.iterdir()):
            # one file went to a rescue file; what was written before it stays, named, not deleted
            raise SecliError(f"{exc.message}; the files written before it are kept in {tmp}") from None
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _move_folder_into_place(tmp: Path, out: Path, force: bool) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise SecliError(f"--out {out} was replaced by a file or a link meanwhile; left it as it is")
    try:
        if not out.exists():
            os.rename(tmp, out)  # fails if another run's folder got there first (not empty)
            return
        if not force:
            os.rename(tmp, out)  # replaces an empty folder; fails on a non-empty one
            return
        if _exchange(tmp, out):  # tmp now holds the old folder
            shutil.rmtree(tmp, ignore_errors=True)
            return
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
        os.rename(out, old / "old")
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            shutil.rmtree(tmp, ignore_errors=True)
            raise SecliError(f"output folder {out} was filled by another run meanwhile; left it as it is") from None
        raise SecliError(f"cannot move the results into {out}: {os.strerror(exc.errno or 0)}; they are kept in {tmp}") from None


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return bool(result == 0)
