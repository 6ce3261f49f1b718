"""The machine a profile runs on: a name for the report, and a warning when it is too busy.

Both go into the report so that a reader of saved JSON can tell a slow machine from a slow
model.
"""

from __future__ import annotations

import torch

from secli.kernels import cpu_kernels


def busy_cpu_warning(device: torch.device) -> str | None:
    """Multi-threaded CPU timing on a loaded machine measures the scheduler, not the model.

    Each parallel region waits for its slowest thread; when other processes hold the cores,
    that thread waits a scheduler slice (milliseconds) for every op. Seen here: two 1x1 convs
    on an (8, 256, 1, 1) tensor took 0.05 ms with one thread and 48 ms with two.
    """
    import os

    cores = os.cpu_count() or 1
    threads = torch.get_num_threads()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return None
    if device.type != "cpu" or threads <= 1 or load <= cores:
        return None
    return (
        f"the machine is busy (load {load:.1f} on {cores} cores) and torch uses {threads} threads: "
        "every parallel op waits for descheduled threads; --threads 1 measures the models more faithfully"
    )


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return name


def cpu_kernel_warning(device: torch.device, models: list[torch.nn.Module]) -> str | None:
    """Fused blocks on CPU without their compiled kernels run ATen's slower composition; a
    reader comparing ``fused`` figures across machines needs to know which one ran."""
    if device.type != "cpu":
        return None
    fused = any(getattr(m, "impl_used", None) == "fused" for model in models for m in model.modules())
    if not fused:
        return None

    return None if cpu_kernels.available() else cpu_kernels.status()
