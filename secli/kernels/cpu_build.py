"""Building and loading ``cpu_kernels.cpp``: compile once per source, compiler and CPU; cache; load.

The compiled library lives in ``$SECLI_CACHE_DIR`` or ``~/.cache/secli/kernels/<key>/`` (a
private folder under the system's temporary folder where that is not writable). It is built
under a temporary name and renamed, so concurrent processes never load half a file, and its
ABI version is checked before use. ``cpu_kernels`` calls ``load()`` once per process.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import torch

CACHE_ENV = "SECLI_CACHE_DIR"
SOURCE = Path(__file__).with_name("cpu_kernels.cpp")
ABI_VERSION = 3
COMPILE_TIMEOUT_S = 180
_BASE_FLAGS = ("-O3", "-ffp-contract=off", "-fopenmp", "-shared", "-fPIC", "-std=c++17")
SUFFIX = {torch.float32: "f32", torch.float64: "f64"}


def _compiler() -> str | None:
    named = os.environ.get("CXX")
    if named:
        return shutil.which(named) or (named if Path(named).is_file() else None)
    return shutil.which("c++") or shutil.which("g++")


def _cpu_fingerprint() -> str:
    """What ``-march=native`` depends on: the CPU's model and feature flags."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return platform.processor()
    keep = [line for line in text.splitlines() if line.startswith(("model name", "flags"))]
    return "\n".join(sorted(set(keep)))


def _cache_root() -> Path:
    named = os.environ.get(CACHE_ENV)
    if named:
        return Path(named)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "secli"


def _private_temp_root() -> Path:
    """A fallback cache only this user can write (a shared /tmp folder could hold a planted library)."""
    root = Path(tempfile.gettempdir()) / f"secli-{os.getuid()}"
    root.mkdir(mode=0o700, exist_ok=True)
    info = root.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise OSError(f"{root} is not a private folder of this user")
    return root


def _key(compiler: str) -> str:
    real = Path(compiler).resolve()
    info = real.stat()
    parts = [SOURCE.read_bytes(), str(real).encode(), f"{info.st_mtime_ns}:{info.st_size}".encode(),
             " ".join(_BASE_FLAGS).encode(), platform.machine().encode(), _cpu_fingerprint().encode()]
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part + b"\0")
    return digest.hexdigest()[:20]


def _compile(compiler: str, target: Path) -> None:
    """Compile to a temporary name beside ``target``, then rename: concurrent builds never see half a file."""
    fd, tmp_name = tempfile.mkstemp(prefix=".build-", suffix=".so", dir=target.parent)
    os.close(fd)
    errors = []
    try:
        for extra in (("-march=native",), ()):  # -march=native where the compiler knows it
            command = [compiler, *_BASE_FLAGS, *extra, "-o", tmp_name, str(SOURCE)]
            done = subprocess.run(command, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S, check=False)
            if done.returncode == 0:
                os.replace(tmp_name, target)
                return
            errors.append(done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"])
        raise OSError(f"{Path(compiler).name} failed: {errors[-1][0]}")
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def _library_path(compiler: str) -> Path:
    key = _key(compiler)
    for root in (_cache_root, _private_temp_root):
        try:
            folder = root() / "kernels" / key
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / "libsecli_cpu.so"
            if probe.exists() or os.access(folder, os.W_OK):
                return probe
        except OSError:
            continue
    raise OSError("no writable cache folder (set SECLI_CACHE_DIR)")


def load() -> tuple[ctypes.CDLL, dict[tuple[str, str, torch.dtype], Any]]:
    """Build (if needed) and load the library; its entry points by (name, layout, dtype)."""
    compiler = _compiler()
    if compiler is None:
        raise OSError("no C++ compiler found (install g++ or set CXX)")
    path = _library_path(compiler)
    if not path.exists():
        _compile(compiler, path)
    library = ctypes.CDLL(str(path))
    if library.secli_kernels_abi() != ABI_VERSION:
        raise OSError(f"{path} is from another secli version")
    return library, _declare(library)


def _declare(library: ctypes.CDLL) -> dict[tuple[str, str, torch.dtype], Any]:
    """Set argtypes for every entry point (ctypes then converts ints without guessing) and keep
    them by (name, layout, dtype), so that a call costs one dict lookup."""
    p, i, t = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    functions: dict[tuple[str, str, torch.dtype], Any] = {}
    for dtype, suffix in SUFFIX.items():
        for name, kind, args in (
            ("sar", "nchw", (p, p, p, p, i, i, t)), ("sar", "nhwc", (p, p, p, p, i, i, i, t)),
            ("ss", "nchw", (p, p, p, p, i, i, t)), ("ss", "nhwc", (p, p, p, p, i, i, i, t)),
            ("dot", "nchw", (p, p, p, p, p, i, i, t)), ("dot", "nhwc", (p, p, p, p, p, i, i, i, t)),
            ("se", "nchw", (p, p, p, p, p, p, p, p, t, i, i, i, i, t)),
            ("se", "nhwc", (p, p, p, p, p, p, p, p, t, i, i, i, i, t)),
        ):
            function = getattr(library, f"secli_{name}_{kind}_{suffix}")
            function.argtypes = list(args)
            function.restype = None
            functions[(name, kind, dtype)] = function
    return functions
