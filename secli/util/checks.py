"""Checks on option values, shared by every library entry point (so the Python API refuses what
the command line refuses): whole numbers in a range, finite numbers, image sizes."""

from __future__ import annotations

import math
from typing import Any

from secli.util.bounds import bound
from secli.util.errors import SecliUsageError, shorten

#: Smallest and largest image side secli accepts (``secli.util.bounds.BOUNDS``, where the reasons are).
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = int(bound("image_size").low), int(bound("image_size").high)


def check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    """``value`` as a whole number in ``[low, high]``; ``name`` is the option (``--batch-size``)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise SecliUsageError(f"{name} must be a whole number, got {shorten(repr(value))}")
    if value < low or (high is not None and value > high):
        allowed = f">= {low}" if high is None else f"from {low} to {high:,}"
        raise SecliUsageError(f"{name} must be {allowed}, got {shorten(str(value), 40)}")
    return value


def check_bounded(name: str, value: Any, key: str | None = None) -> int:
    """``value`` as a whole number in the range ``BOUNDS`` gives ``key`` (default: ``name`` without
    its dashes); the error states the range and why it ends there."""
    row = bound(key or name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SecliUsageError(f"{name} must be a whole number, got {shorten(repr(value))}")
    if not row.low <= value <= row.high:
        raise SecliUsageError(f"{name} must be from {row.text()} ({row.why}), got {shorten(str(value), 40)}")
    return value


def check_number(name: str, value: Any, low: float | None = None, high: float | None = None,
                 above: bool = False) -> float:
    """``value`` as a finite number ``>= low`` (``> low`` with ``above``) and ``<= high``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SecliUsageError(f"{name} must be a finite number, got {shorten(repr(value))}")
    if low is not None and (value <= low if above else value < low):
        raise SecliUsageError(f"{name} must be {'>' if above else '>='} {low:g}, got {value:g}")
    if high is not None and value > high:
        raise SecliUsageError(f"{name} must be <= {high:g}, got {value:g}")
    return float(value)


def check_image_size(name: str, value: Any) -> int | None:
    """None (the model's default) or a side from ``MIN_IMAGE_SIZE`` to ``MAX_IMAGE_SIZE`` px."""
    if value is None:
        return None
    return check_bounded(name, value, "image_size")
