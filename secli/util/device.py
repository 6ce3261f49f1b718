"""The one place a device name from the user becomes a ``torch.device``.

Every command takes the same spellings (``auto``, ``cpu``, ``cuda``, ``cuda:N``), so they share
one resolver: asking for CUDA where there is none is a runtime failure (exit 1, the request is
fine, the machine lacks it), an unknown spelling is a usage mistake (exit 2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from secli.util.errors import SecliError, SecliUsageError

if TYPE_CHECKING:
    import torch

AUTO_NAMES = (None, "", "auto")


def resolve_device(name: str | None) -> torch.device:
    """``auto`` (or None) picks CUDA when present, else the CPU; other names are checked."""
    import torch

    if name in AUTO_NAMES:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert name is not None
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SecliUsageError(f"unknown device {name[:100]!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise SecliUsageError(f"unsupported device {name[:100]!r}; use auto, cpu, cuda or cuda:N")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            build = f"torch {torch.__version__}" + (
                ", built without CUDA" if torch.version.cuda is None else ", no GPU visible"
            )
            raise SecliError(
                f"--device {name} was asked for, but CUDA is not available ({build})",
                hint="use --device cpu or --device auto",
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise SecliUsageError(
                f"--device {name}: there are only {torch.cuda.device_count()} CUDA devices here"
            )
    return device
