"""The memory traffic an attention block cannot avoid, and the device bandwidth to judge it by.

An SE block is memory-bound: its pooling reads the site's feature map U (C x H x W per image)
and its scaling reads U and writes the result. So one pass over every site's tensor is the
natural unit: ``bytes_per_pass = sum over sites of C*H*W * element size``. The time a model
adds over its baseline, times the device's bandwidth, divided by that unit, is the number of
passes the implementation effectively makes. Ideal fusion needs ~1-2 passes; separate kernels
for pool, FCs and scale ~3 or more. SK blocks also add convolutions (compute), so for them the
figure is an upper bound on traffic, not a memory floor.

Shapes are read by hooking each site's module during one forward at the run's input size and
dtype (AMP included), so nothing is assumed about the architecture.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from secli.networks.sites import Site, get_module
from secli.profiling.timing import Stopwatch, median_time_ms
from secli.util.tensors import first_tensor


@dataclass(frozen=True)
class SiteTraffic:
    name: str
    shape: tuple[int, ...]  # per image: (C, H, W)
    element_size: int

    @property
    def bytes(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count * self.element_size


@dataclass
class BlockTraffic:
    """Per-image bytes of one pass over every site's output tensor."""

    sites: list[SiteTraffic] = field(default_factory=list)

    @property
    def bytes_per_image(self) -> int:
        return sum(site.bytes for site in self.sites)

    def to_dict(self) -> dict[str, Any]:
        return {
            "bytes_per_image": self.bytes_per_image,
            "sites": [
                {"name": s.name, "shape": list(s.shape), "element_size": s.element_size, "bytes": s.bytes}
                for s in self.sites
            ],
        }


def measure_site_traffic(model: nn.Module, sites: Sequence[Site], run_forward: Callable[[], Any]) -> BlockTraffic:
    """Hook every site's module, call ``run_forward`` once, and record each output's shape."""
    seen: dict[str, SiteTraffic] = {}
    handles = []
    for site in sites:
        module = get_module(model, site.module_path)

        def hook(_module: nn.Module, _inputs: Any, output: Any, site: Site = site) -> None:
            tensor = first_tensor(output)
            if tensor is not None and tensor.dim() >= 2:
                seen[site.name] = SiteTraffic(site.name, tuple(tensor.shape[1:]), tensor.element_size())

        handles.append(module.register_forward_hook(hook))
    try:
        run_forward()
    finally:
        for handle in handles:
            handle.remove()
    return BlockTraffic([seen[s.name] for s in sites if s.name in seen])


@dataclass(frozen=True)
class Bandwidth:
    """Achieved copy bandwidth: bytes read plus bytes written per second."""

    bytes_per_s: float
    buffer_bytes: int
    method: str

    @property
    def gb_per_s(self) -> float:
        return self.bytes_per_s / 1e9

    def to_dict(self) -> dict[str, Any]:
        return {"gb_per_s": self.gb_per_s, "buffer_bytes": self.buffer_bytes, "method": self.method}


def measure_copy_bandwidth(device: torch.device, watch: Stopwatch, buffer_bytes: int | None = None,
                           repeats: int = 7) -> Bandwidth:
    """Time ``dst.copy_(src)`` on ``device``; a copy reads and writes, so it moves 2x the buffer.

    The buffer is far larger than any cache (64 MiB on CPU, 512 MiB on GPU) so the figure is
    main-memory bandwidth as this process gets it right now, which is what the blocks see.
    """
    if buffer_bytes is None:
        buffer_bytes = (512 if device.type == "cuda" else 64) * 2**20
    numel = buffer_bytes // 4
    src = torch.ones(numel, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    for _ in range(2):
        dst.copy_(src)
    median_ms = median_time_ms(lambda: dst.copy_(src), repeats, watch)
    moved = 2 * numel * 4
    kind = "device-to-device copy" if device.type == "cuda" else "memory copy (torch copy_)"

    median_ms = max(median_ms, 1e-6)  # a clock too coarse to see the copy must not divide by 0
    return Bandwidth(moved / (median_ms / 1e3), numel * 4, kind)


def implied_passes(added_ms: float, bandwidth: Bandwidth, bytes_per_pass: float) -> float | None:
    """How many passes over the sites' tensors the added time would pay for at full bandwidth.

    None when there is nothing to divide by, or when the model was not slower (noise or a
    faster kernel choice): a negative number of passes means nothing.
    """
    if bytes_per_pass <= 0 or added_ms <= 0:
        return None
    return (added_ms / 1e3) * bandwidth.bytes_per_s / bytes_per_pass
