"""The device a roofline is drawn for: a table entry, ``cpu`` measured on the spot, or a YAML file.

A device file holds a few numbers, checked and bounded like every file secli reads::

    name: My GPU                # shown in tables (<= 100 characters)
    bandwidth_gb_per_s: 1000    # memory bandwidth, GB/s (1e9 bytes/s)
    fp32_tflops: 50             # dense peak of the FP32 (vector) units
    tf32_tflops: 100            # optional: tensor cores for float32 convolutions
    bf16_tflops: 200            # optional: dense bf16 tensor-core peak (FP32 accumulate)
    fp16_tflops: 200            # optional
    launch_us: 4                # optional: time one more kernel costs (default 4)
    source: vendor data sheet   # optional: where the numbers come from

``cpu`` is measured where secli runs (about half a second): a copy of a 64 MiB buffer (bytes read
plus written per second), a float32 matrix product (and a bf16/fp16 one when that dtype is
asked), and the time one tiny module call costs (Python, dispatch and kernel start, the
overhead every op of an eager model pays), all at torch's current thread count.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from secli.cost.devices import DEVICES, GB, GPU_LAUNCH_US, Device, T, known
from secli.util.checks import check_number
from secli.util.errors import SecliUsageError, shorten
from secli.util.yaml_files import read_yaml, reject_unknown_keys

FILE_KEYS = ("name", "bandwidth_gb_per_s", "fp32_tflops", "tf32_tflops", "bf16_tflops", "fp16_tflops", "launch_us",
             "source")
MAX_TFLOPS = 1e6  # 1 EFLOP/s: far above any device, low enough to catch a unit mistake
MAX_GB_PER_S = 1e6
MAX_LAUNCH_US = 1e5


def resolve(device: str, dtype: str = "fp32", bandwidth: float | None = None) -> Device:
    """``device``: a table key (``h100``), ``cpu`` (measured now; ``bandwidth`` in bytes/s, when
    the caller measured it already, is reused), or a device YAML file."""
    if not isinstance(device, str) or not device.strip():
        raise SecliUsageError("--roofline needs a device: a name (h100, a100, ...), cpu, or a device YAML file")
    if device.strip().lower() == "cpu":
        return measure_cpu(dtype, bandwidth)
    found = known(device)
    if found is not None:
        return found
    if device.endswith((".yaml", ".yml")) or Path(device).is_file():
        return read_device_file(device)
    raise SecliUsageError(
        f"unknown device {shorten(repr(device))} for --roofline",
        hint=f"choose one of: cpu, {', '.join(DEVICES)}, or a device YAML file",
    )


def read_device_file(path: str | Path) -> Device:
    """A user's device (module doc): every key checked, unknown keys refused, numbers bounded."""
    if not Path(path).is_file():
        raise SecliUsageError(f"device file not found: {path}")
    data = read_yaml(path)
    where = f"device file {path}"
    if not isinstance(data, dict):
        raise SecliUsageError(f"{where}: expected a mapping of keys ({', '.join(FILE_KEYS)})")
    reject_unknown_keys(data, FILE_KEYS, where)
    for key in ("name", "bandwidth_gb_per_s", "fp32_tflops"):
        if key not in data:
            raise SecliUsageError(f"{where}: missing key {key!r}")
    name, source = data["name"], data.get("source", f"device file {Path(path).name}")
    for key, text in (("name", name), ("source", source)):
        if not isinstance(text, str) or not text.strip() or len(text) > (100 if key == "name" else 1000):
            raise SecliUsageError(f"{where}: {key} must be a non-empty string of at most "
                                  f"{100 if key == 'name' else 1000} characters")

    def tflops(key: str) -> float | None:
        value = data.get(key)
        return None if value is None else check_number(f"{where}: {key}", value, 0, MAX_TFLOPS, above=True) * T

    fp32 = tflops("fp32_tflops")
    assert fp32 is not None
    return Device(
        key=Path(path).stem, name=name.strip(),
        bandwidth=check_number(f"{where}: bandwidth_gb_per_s", data["bandwidth_gb_per_s"], 0, MAX_GB_PER_S,
                               above=True) * GB,
        fp32=fp32, tf32=tflops("tf32_tflops"), bf16=tflops("bf16_tflops"), fp16=tflops("fp16_tflops"),
        launch_us=check_number(f"{where}: launch_us", data.get("launch_us", GPU_LAUNCH_US), 0, MAX_LAUNCH_US),
        source=source.strip(),
    )


def _median_s(action: Callable[[], Any], repeats: int) -> float:
    action()  # warm-up: allocation, first-call dispatch
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return max(statistics.median(times), 1e-9)


def copy_bandwidth(buffer_bytes: int = 64 * 2**20, repeats: int = 5) -> float:
    """Bytes read plus written per second by ``dst.copy_(src)`` on a buffer larger than any cache."""
    src = torch.ones(buffer_bytes // 4, dtype=torch.float32)
    dst = torch.empty_like(src)
    return 2 * buffer_bytes / _median_s(lambda: dst.copy_(src), repeats)


def matmul_flops(dtype: torch.dtype = torch.float32, n: int = 1024, repeats: int = 3) -> float:
    """FLOP/s of an n x n matrix product (2 n^3 FLOPs)."""
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    return 2 * n**3 / _median_s(lambda: torch.mm(a, b), repeats)


def launch_seconds(calls: int = 2000) -> float:
    """What one tiny module call costs: the overhead each op of an eager model pays."""
    module, x = nn.ReLU(), torch.ones(1)

    def many() -> None:
        for _ in range(calls):
            module(x)

    return _median_s(many, 3) / calls


def measure_cpu(dtype: str = "fp32", bandwidth: float | None = None) -> Device:
    """This CPU as a device (module doc); 16-bit products measured only when ``dtype`` asks."""
    fp32 = matmul_flops()
    low = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(dtype)
    measured_low = matmul_flops(low, n=512) if low is not None else None
    threads = torch.get_num_threads()
    bw = bandwidth if bandwidth is not None else copy_bandwidth()
    return Device(
        key="cpu", name=f"this CPU ({threads} thread{'s' if threads != 1 else ''})", bandwidth=bw, fp32=fp32, tf32=None,
        bf16=measured_low if dtype == "bf16" else None, fp16=measured_low if dtype == "fp16" else None,
        launch_us=launch_seconds() * 1e6, gpu=False, measured=True,
        source="measured now: 64 MiB copy_ (read + write), torch.mm 1024x1024 float32"
               + (f" and 512x512 {dtype}" if low is not None else "") + ", one tiny module call",
    )
