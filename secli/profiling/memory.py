"""How much memory one step needs: peak allocated on a GPU, peak resident set size on a CPU.

GPU: the caching allocator keeps exact counters, so the peak above what was allocated just
before the step is ``max_memory_allocated() - memory_allocated()`` after
``reset_peak_memory_stats()``; it counts tensors, not the allocator's cached free blocks.

CPU: there is no allocator counter, so the process is measured from outside. On Linux,
writing ``5`` to ``/proc/self/clear_refs`` resets the kernel's high-water mark (VmHWM) to the
current resident size; after the step, VmHWM minus the resident size before the step is the
step's peak RSS delta. Pages the C allocator kept from earlier steps would be reused without
being counted (glibc keeps freed activations in its heap), so ``malloc_trim(0)`` first hands
every free page back to the kernel; the step then faults in what it really touches. The
delta is relative to what was resident before the step, so gradients freed by
``zero_grad(set_to_none=True)`` and allocated again in backward cancel out, as on the GPU.
Without clear_refs (non-Linux) the fallback is ``getrusage`` ru_maxrss, which only grows:
the delta is then a lower bound, and the reading says so.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


@dataclass(frozen=True)
class MemoryReading:
    """Memory a step needed: ``delta_bytes`` above what was held before it; how it was read."""

    delta_bytes: int
    peak_bytes: int | None
    method: str  # "cuda-allocator", "linux-vmhwm" or "ru_maxrss-lower-bound"

    def to_dict(self) -> dict[str, Any]:
        return {"delta_bytes": self.delta_bytes, "peak_bytes": self.peak_bytes, "method": self.method}


def _status_kib(field: str) -> int | None:
    try:
        with open(_STATUS, encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    try:
        with open(_CLEAR_REFS, "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def release_free_heap() -> bool:
    """Give the C heap's free pages back to the kernel (glibc ``malloc_trim``; False elsewhere)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        return bool(ctypes.CDLL(name).malloc_trim(0))
    except (OSError, AttributeError):
        return False


def _maxrss_bytes() -> int:
    # Linux reports KiB, macOS bytes.
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value if os.uname().sysname == "Darwin" else value * 1024


def cpu_step_memory(step: Callable[[], object]) -> MemoryReading:
    """Peak RSS delta of one call of ``step`` (see the module docstring for the method)."""
    release_free_heap()
    rss_before = _status_kib("VmRSS")
    if rss_before is not None and _reset_hwm():
        step()
        hwm = _status_kib("VmHWM")
        if hwm is not None:
            return MemoryReading(max(hwm - rss_before, 0) * 1024, hwm * 1024, "linux-vmhwm")
    before = _maxrss_bytes()
    step()
    after = _maxrss_bytes()
    return MemoryReading(max(after - before, 0), after, "ru_maxrss-lower-bound")


def cuda_step_memory(step: Callable[[], object], device: Any) -> MemoryReading:
    """Peak bytes allocated during one call of ``step`` above what was allocated before it."""
    import torch

    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    step()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device)
    return MemoryReading(max(peak - before, 0), peak, "cuda-allocator")


def step_memory(step: Callable[[], object], device: Any) -> MemoryReading:
    if getattr(device, "type", str(device)) == "cuda":
        return cuda_step_memory(step, device)
    return cpu_step_memory(step)
