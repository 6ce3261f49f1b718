"""What several kinds share without importing one another: the hidden width, the gates, and the
check of an odd kernel size.

SE and SK both reduce C to a hidden width ``max(C // r, floor)``; SE (and any kind with a named
gate) builds its gate from the one gate table (``secli.kernels.gates``).
"""

from __future__ import annotations

import math

from torch import nn

from secli.kernels.gates import GATE_MODULES
from secli.util.errors import SecliUsageError
from secli.util.vocabulary import GATES

__all__ = ["GATE_MODULES", "check_odd_kernel", "gate_inverse", "gate_module", "hidden_width"]


def hidden_width(channels: int, ratio: int, floor: int = 1) -> int:
    """C // r with a floor; an impossible ratio is a user error, not a zero-width layer."""
    if ratio < 1:
        raise SecliUsageError(f"ratio must be >= 1, got {ratio}")
    if ratio > channels:
        raise SecliUsageError(
            f"ratio {ratio} is larger than the {channels} channels of a site",
            hint=f"use a ratio <= {channels}",
        )
    return max(channels // ratio, floor)


def check_odd_kernel(kernel_size: int, what: str, hint: str) -> None:
    """A kernel size padded by k // 2 to keep its map's size must be an odd whole number >= 1
    (ECA's 1-D filter, CBAM's spatial conv); ``what`` names it in the error, ``hint`` says why."""
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise SecliUsageError(f"{what} must be an odd whole number >= 1, got {kernel_size!r}", hint=hint)


def gate_module(name: str) -> nn.Module:
    """A fresh gate activation for a gate name of ``secli.util.vocabulary.GATES``."""
    if name not in GATE_MODULES:
        raise SecliUsageError(f"unknown gate {name!r}; choose one of: {', '.join(GATES)}")
    return GATE_MODULES[name]()


def gate_inverse(name: str, value: float) -> float:
    """The pre-activation that makes gate ``name`` output ``value`` (for an identity init)."""
    if name == "sigmoid":
        return math.log(value / (1.0 - value))
    if name == "tanh":
        return math.atanh(value)
    if name == "hardsigmoid":
        return (value - 0.5) * 6.0
    return value  # relu
