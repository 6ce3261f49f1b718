"""Writing result files safely: never clobber silently, never leave a half-written file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from secli.util.errors import SecliError


def check_writable(path: str | Path, force: bool = False) -> Path:
    """Refuse to overwrite an existing file unless ``force``; create missing parent folders."""
    path = Path(path)
    if path.exists() and not force:
        raise SecliError(f"{path} already exists", hint="pass --force to overwrite it")
    if path.exists() and path.is_dir():
        raise SecliError(f"{path} is a directory, not a file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SecliError(f"cannot create folder {path.parent}: {exc.strerror}") from None
    return path


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], object], force: bool = False) -> Path:
    """Write through a temporary file in the same folder, then rename it over ``path``.

    The rename is atomic on POSIX, so readers see either the old file or the complete new one,
    and an interrupted run leaves no truncated output behind.
    """
    path = check_writable(path, force)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str, force: bool = False) -> Path:
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")), force)
