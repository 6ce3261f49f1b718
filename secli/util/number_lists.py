"""Comma lists as options take them (``"2,4,8"``), for the Python API as well as the CLI.

The workflow functions accept what the command line gives (a string) or what Python code has
at hand (a list); both end up as a tuple, and a bad entry is the same one-line usage error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from secli.util.errors import SecliUsageError, shorten


def parse_int_list(value: str | int | Sequence[Any] | None, what: str) -> tuple[int, ...] | None:
    """``"3,4"``, ``3`` or ``[3, 4]`` -> (3, 4); None or an empty string -> None."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise SecliUsageError(f"{what} must be whole numbers separated by commas, got {shorten(repr(value))}")
    if isinstance(value, int):
        return (value,)
    if isinstance(value, str):
        if value.strip() == "":
            return None
        parts: Sequence[Any] = [p for p in value.replace(" ", "").split(",") if p]
        shown = value
    else:
        parts, shown = list(value), ",".join(map(str, value))
    values = [_whole_number(part) for part in parts]
    if any(v is None for v in values):
        raise SecliUsageError(f"{what} must be whole numbers separated by commas, got {shorten(repr(shown))}")
    return tuple(values)  # type: ignore[arg-type]


def _whole_number(part: Any) -> int | None:
    if isinstance(part, bool) or not isinstance(part, (int, str)):
        return None
    try:
        return int(part)
    except ValueError:
        return None


def parse_str_list(value: str | Sequence[str] | None) -> list[str] | None:
    """``"se,sk"`` or ``["se", "sk"]`` -> ["se", "sk"] (blanks dropped); None -> None."""
    if value is None:
        return None
    parts = value.split(",") if isinstance(value, str) else list(value)
    return [str(part).strip() for part in parts if str(part).strip()]


def parse_float_list(value: str | Sequence[float] | None, what: str) -> list[float] | None:
    """``"1,1.5"`` or ``[1, 1.5]`` -> [1.0, 1.5]; None or an empty string -> None."""
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    parts = [p for p in value.replace(" ", "").split(",") if p] if isinstance(value, str) else list(value)
    try:
        return [float(part) for part in parts] if parts else None
    except (TypeError, ValueError):
        shown = value if isinstance(value, str) else ",".join(map(str, value))
        raise SecliUsageError(f"{what} must be numbers separated by commas, got {shorten(repr(shown))}") from None
