"""One reader for every file secli reads back: results, summaries, statistics, checkpoints, specs.

Each is untrusted (a user's, or one that may have been edited), so every read is bounded before
anything is built from it:

- only a regular file is read: a FIFO (which would block forever), a device (``/dev/zero``, which
  would grow until memory runs out), a folder or a socket is refused, after opening it
  non-blocking and looking at what was opened (``open_regular``);
- the size on disk is bounded, and so is what is read (a file growing while it is read);
- JSON (``read_json``): UTF-8 only, no NaN or Infinity, no duplicate keys, at most ``MAX_DEPTH``
  levels deep (deeper JSON once gave a RecursionError), numbers of sane length, bounded in the
  values it expands to;
- zip archives (``.npz`` statistics, PyTorch checkpoints: ``zip_members``): the directory's
  uncompressed sizes are read and bounded *before* anything is decompressed (a 3 MB ``stats.npz``
  once decompressed to 21.5 GB), and an ``.npz`` member's array header must fit its member
  (``read_npz``), so nothing is allocated on a header's word alone.

Every refusal is a ``SecliUsageError`` (exit 2) naming the file and the reason in words.
"""

from __future__ import annotations

import io
import json
import math
import os
import stat
import zipfile
from pathlib import Path
from typing import IO, Any

from secli.util.bounds import check_python_size
from secli.util.errors import SecliUsageError, shorten

#: JSON nesting secli's own files never come near (an envelope is about 6 levels deep).
MAX_DEPTH = 64
#: Members of an archive (statistics: fields x sites x scales; a checkpoint: a record per tensor).
MAX_MEMBERS = 100_000


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str | Path, what: str, max_bytes: int) -> IO[bytes]:
    """``path`` opened for reading when it is a regular file of at most ``max_bytes``, else a
    one-line refusal. Opened non-blocking, so a FIFO is refused, not waited on."""
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise SecliUsageError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise SecliUsageError(f"cannot read {what} {path}: {os.strerror(exc.errno or 0)}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SecliUsageError(f"{what} {path} is {_kind(info.st_mode)}, not a regular file")
        if info.st_size > max_bytes:
            raise SecliUsageError(f"{what} {path} is {info.st_size:,} bytes; at most {max_bytes:,} are read")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str | Path, what: str, max_bytes: int) -> bytes:
    """The whole of a regular file of at most ``max_bytes`` (checked on disk and while reading)."""
    with open_regular(path, what, max_bytes) as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise SecliUsageError(f"{what} {path} grew past {max_bytes:,} bytes while it was read")
    return data


def read_text(path: str | Path, what: str, max_bytes: int) -> str:
    """A regular file's text, which must be UTF-8."""
    data = read_bytes(path, what, max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SecliUsageError(f"{what} {path} is not UTF-8 text (byte {exc.start:,})") from None


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]
        raise ValueError(f"the key {shorten(repr(duplicate), 60)} appears twice in one object")
    return document


def parse_json(text: str, where: str) -> Any:
    """``text`` as JSON, strictly (see the module's docstring); a one-line refusal otherwise."""
    try:
        document = json.loads(text, parse_constant=_constant, object_pairs_hook=_no_duplicates)
    except RecursionError:
        raise SecliUsageError(f"{where} is nested too deeply to be a secli file") from None
    except json.JSONDecodeError as exc:
        raise SecliUsageError(f"{where} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except ValueError as exc:  # our refusals above, or a number of thousands of digits
        ours = "JSON number" in str(exc) or "appears twice" in str(exc)
        reason = str(exc) if ours else "a number has too many digits"
        raise SecliUsageError(f"{where} is not valid JSON for secli: {reason}") from None
    check_depth(document, where)
    check_python_size(document, where, 5_000_000)
    return document


def check_depth(document: Any, where: str, limit: int = MAX_DEPTH) -> None:
    """Refuse a document nested deeper than ``limit`` (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(document, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            raise SecliUsageError(f"{where} is nested more than {limit} levels deep; not a secli file")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def read_json(path: str | Path, what: str, max_bytes: int) -> Any:
    """A regular file of at most ``max_bytes``, parsed as strict JSON (``parse_json``)."""
    return parse_json(read_text(path, what, max_bytes), f"{what} {path}")


def zip_members(handle: IO[bytes], where: str, max_total: int) -> list[zipfile.ZipInfo]:
    """The members of the zip archive ``handle``, refused before anything is decompressed when
    there are more than ``MAX_MEMBERS`` or their uncompressed sizes add up to more than
    ``max_total`` (Python's zip reader never returns more than a member's recorded size)."""
    try:
        members = zipfile.ZipFile(handle).infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise SecliUsageError(f"{where} is not a readable zip archive ({shorten(str(exc), 80)})") from None
    if len(members) > MAX_MEMBERS:
        raise SecliUsageError(f"{where} holds {len(members):,} files; at most {MAX_MEMBERS:,}")
    total = sum(m.file_size for m in members)
    if total > max_total:
        raise SecliUsageError(f"{where} would decompress to {total:,} bytes; at most {max_total:,} are read")
    return members


def read_npz(path: str | Path, what: str, max_bytes: int, max_total: int) -> dict[str, Any]:
    """The arrays of an ``.npz`` file: numbers only (no pickles), every header checked against
    its member's size before the array is read, the total bounded before decompression."""
    import numpy as np
    from numpy.lib import format as npy

    where = f"{what} {path}"
    arrays: dict[str, Any] = {}
    with open_regular(path, what, max_bytes) as handle:
        members = zip_members(handle, where, max_total)
        archive = zipfile.ZipFile(handle)
        for member in members:
            if not member.filename.endswith(".npy"):
                raise SecliUsageError(f"{where} holds {shorten(repr(member.filename), 60)}, not an array")
            try:
                with archive.open(member) as stream:
                    data = stream.read(member.file_size + 1)
                array = _npy_array(io.BytesIO(data), len(data), npy, np)
            except SecliUsageError as exc:
                raise SecliUsageError(f"{where}: {shorten(repr(member.filename), 60)} {exc.message}") from None
            except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
                raise SecliUsageError(f"{where}: {shorten(repr(member.filename), 60)} is damaged "
                                      f"({shorten(str(exc), 80)})") from None
            arrays[member.filename.removesuffix(".npy")] = array
    return arrays


def _npy_array(stream: IO[bytes], size: int, npy: Any, np: Any) -> Any:
    version = npy.read_magic(stream)
    readers = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}
    if version not in readers:
        raise SecliUsageError(f"is an .npy file of version {version}, which secli does not write")
    shape, fortran, dtype = readers[version](stream)
    if dtype.hasobject or dtype.kind not in "biuf":
        raise SecliUsageError(f"holds {dtype} values, not numbers")
    needed = math.prod(shape) * dtype.itemsize
    if needed > size - stream.tell():
        raise SecliUsageError(f"claims {needed:,} bytes of data in a member of {size:,}")
    count = math.prod(shape)
    array = np.frombuffer(stream.read(needed), dtype=dtype, count=count).copy()  # writable, owns its memory
    return array.reshape(shape[::-1]).transpose() if fortran else array.reshape(shape)
