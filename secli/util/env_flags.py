"""Environment variables read at every step of a model (``SECLI_CPU_KERNELS``, ``SECLI_TRITON``).

Why not ``os.environ.get``: for a variable that is not set (the usual case) it raises and
catches a KeyError inside, about 1 µs on this project's CPU, and these switches are read at
every SE site of every inference step, where at batch 1 each microsecond of Python costs
several once the convolutions have pushed the interpreter out of the caches. On POSIX,
``os.environ`` keeps its values in a bytes-keyed dict that every change made through it
(``os.environ[...] = ``, ``del``, pytest's ``monkeypatch.setenv``) updates at once, so a plain
``dict.get`` there returns what ``os.environ.get`` would, about twenty times faster. Elsewhere
(Windows keys are case-folded) this is ``os.environ.get``.
"""

from __future__ import annotations

import os
import sys

_ENVIRON = os.environ
_DATA = getattr(_ENVIRON, "_data", None)
_BYTES_KEYS = os.name == "posix" and isinstance(_DATA, dict)
_ENCODING = sys.getfilesystemencoding()


def env_value(name: str) -> str | None:
    """``os.environ.get(name)``, without its exception when the variable is unset (and exactly
    that where ``os.environ`` has been replaced, as ``mock.patch.object(os, "environ", ...)`` does)."""
    if not _BYTES_KEYS or os.environ is not _ENVIRON:
        return os.environ.get(name)
    raw = _DATA.get(name.encode(_ENCODING, "surrogateescape"))  # type: ignore[union-attr]
    return None if raw is None else raw.decode(_ENCODING, "surrogateescape")
