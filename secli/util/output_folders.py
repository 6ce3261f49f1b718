"""Output folders (``visualize-excitation --out DIR``): built beside the target, moved into place whole.

- The up-front check (``check_out_folder``) refuses a file or a link where a folder is wanted,
  a folder with something in it unless ``force``, and a folder that is, contains or sits inside
  a path the run reads (``secli.util.outputs.check_apart``).
- The folder is written as a hidden sibling and renamed to the target at the end; with
  ``force`` the old folder is exchanged with it and removed whole, never merged into.
- On SIGINT, SIGTERM, SIGHUP or an error the sibling is removed (registered with
  ``secli.util.signals`` too, so even a process that cannot unwind in time leaves none), except
  when a save failed part-way (disk full): then what was written stays there and the error
  names it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from secli.util.errors import SecliError, SecliUsageError
from secli.util.outputs import Reads, _umask, check_apart, test_hook
from secli.util.signals import register_temporary, signals_deferred, unregister_temporary


def check_out_folder(out: Path, force: bool, option: str = "--out", reads: Reads = ()) -> None:
    """The up-front check for an output folder: refuse a file (or a link to one), a folder with
    something in it unless ``force``, and one that is, contains or sits inside one of ``reads``.
    A folder that is not empty is a mistake in the request (exit 2), as an existing ``--out``
    file is (``secli.util.outputs.check_writable``)."""
    out = Path(out)
    check_apart(out, reads, option)
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
        raise SecliError(f"output folder {out} exists and is not empty; left it as it is (another run may have "
                         "written it meanwhile)",
                         hint="pass --force to replace it")
    check_out_folder(out, force)
    made: list[Path] = []
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with signals_deferred():  # created and registered as one step
            made.append(Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)))
            register_temporary(made[0])
    except OSError as exc:
        raise SecliError(f"cannot create a folder beside {out}: {os.strerror(exc.errno or 0)}") from None
    except BaseException:  # a signal held back while it was made: it goes before the signal does
        for path in made:
            _remove_tree(path)
        raise
    tmp = made[0]
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        try:
            yield tmp
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EACCES, errno.EDQUOT, errno.EROFS):
                _remove_tree(tmp)
                raise SecliError(f"cannot write into {out}: {os.strerror(exc.errno)}; "
                                 "nothing was changed there") from None
            raise
        test_hook("folder-written")
        with signals_deferred():  # moved and unregistered as one step
            _move_folder_into_place(tmp, out, force)
            unregister_temporary(tmp)
    except SecliError as exc:
        if f"kept in {tmp}" in str(exc):  # the whole new folder is the kept result
            unregister_temporary(tmp)
            raise
        if "the result is kept in" in str(exc) and any(tmp.iterdir()):
            # one file went to a rescue file; what was written before it stays, named, not deleted
            unregister_temporary(tmp)
            raise SecliError(f"{exc.message}; the files written before it are kept in {tmp}") from None
        _remove_tree(tmp)
        raise
    except BaseException:
        _remove_tree(tmp)
        raise


def _remove_tree(tmp: Path) -> None:
    shutil.rmtree(tmp, ignore_errors=True)
    unregister_temporary(tmp)


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
            register_temporary(tmp)  # the old folder, until it is gone
            _remove_tree(tmp)
            return
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
        register_temporary(old)
        os.rename(out, old / "old")
        os.rename(tmp, out)
        _remove_tree(old)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            _remove_tree(tmp)
            raise SecliError(f"output folder {out} was filled by another run meanwhile; left it as it is") from None
        raise SecliError(f"cannot move the results into {out}: {os.strerror(exc.errno or 0)}; "
                         f"they are kept in {tmp}") from None


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
