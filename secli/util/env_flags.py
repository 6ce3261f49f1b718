"""Environment variables: read fast at every step of a model, and parsed strictly.

``SECLI_CPU_KERNELS`` and ``SECLI_TRITON`` are read at every SE site of every step; ``SECLI_DEBUG``
once per command. Every switch takes the same spellings (``switch_value``): a value that is
neither on nor off is an error, never silently one of them (``SECLI_DEBUG=false`` once turned
tracebacks on).

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

import math
import os
import sys

from secli.util.errors import SecliUsageError, shorten

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


# ---------------------------------------------------------------------------- strict values
#: The spellings of on and off every switch takes (case and surrounding blanks ignored).
ON = ("1", "true", "yes", "on")
OFF = ("0", "false", "no", "off")
#: Every switch secli reads: the extra values it takes beside on and off, and its meaning unset.
SWITCHES: dict[str, tuple[tuple[str, ...], str]] = {
    "SECLI_DEBUG": ((), "off"),  # tracebacks instead of one-line errors
    "SECLI_CPU_KERNELS": ((), "on"),  # the compiled CPU kernels of the fused blocks
    "SECLI_TRITON": (("force",), "off"),  # the Triton kernels (force: on CPU tensors too)
}
_PARSED: dict[tuple[str, str | None], str] = {}


class BadEnvironment(SecliUsageError):
    """A variable set to a value it does not take (a mistake in the request: exit 2)."""


def switch_value(name: str) -> str:
    """``"on"``, ``"off"`` (or one of the switch's extra values) for ``name`` as set now.

    Strict: ``0``, ``false``, ``no``, ``off`` (and an empty value) are off; ``1``, ``true``,
    ``yes``, ``on`` are on; anything else raises ``BadEnvironment`` rather than being read as
    either. Results are cached per raw value, so hot paths may call this at every step.
    """
    raw = env_value(name)
    key = (name, raw)
    found = _PARSED.get(key)
    if found is not None:
        return found
    extra, default = SWITCHES[name]
    text = "" if raw is None else raw.strip().lower()
    if text == "":
        value = default
    elif text in ON or text in OFF:
        value = "on" if text in ON else "off"
    elif text in extra:
        value = text
    else:
        allowed = ", ".join((*ON, *OFF, *extra))
        raise BadEnvironment(f"{name} must be one of {allowed} (or unset), got {shorten(repr(raw), 60)}")
    _PARSED[key] = value
    return value


def switch_on(name: str) -> bool:
    """Whether the switch ``name`` is on (``switch_value`` is not ``"off"``)."""
    return switch_value(name) != "off"


def check_environment() -> None:
    """Every switch and number parsed once, so a bad value is refused before a command does anything."""
    for name in SWITCHES:
        switch_value(name)
    for name in WHOLE_NUMBERS:
        whole_value(name)
    for name in SECONDS:
        seconds_value(name)


#: Variables that hold a whole number: their default and the ``secli.util.bounds`` row bounding them.
WHOLE_NUMBERS: dict[str, tuple[int, str]] = {
    "SECLI_FIGURE_WORKERS": (4, "threads"),  # processes drawing figures (1: draw in the command's own)
}


def whole_value(name: str) -> int:
    """The whole number ``name`` holds (its default when unset or empty), within its bounds;
    anything else raises ``BadEnvironment``."""
    from secli.util.bounds import bound

    default, key = WHOLE_NUMBERS[name]
    raw = env_value(name)
    if raw is None or not raw.strip():
        return default
    row = bound(key)
    try:
        value = int(raw.strip())
    except ValueError:
        value = None
    if value is None or not row.low <= value <= row.high:
        raise BadEnvironment(f"{name} must be a whole number from {row.text()}, got {shorten(repr(raw), 60)}")
    return value


#: Variables that hold a number of seconds (fractions allowed): their default and bounds row.
SECONDS: dict[str, tuple[float, str]] = {
    "SECLI_PROGRESS_INTERVAL": (10.0, "progress_interval"),  # between two plain progress lines (0: every report)
}


def seconds_value(name: str) -> float:
    """The number of seconds ``name`` holds (its default when unset or empty), finite and within
    its bounds; anything else raises ``BadEnvironment``."""
    from secli.util.bounds import bound

    default, key = SECONDS[name]
    raw = env_value(name)
    if raw is None or not raw.strip():
        return default
    row = bound(key)
    try:
        value = float(raw.strip())
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not row.low <= value <= row.high:
        raise BadEnvironment(f"{name} must be a number of seconds from {row.text()}, got {shorten(repr(raw), 60)}")
    return value
