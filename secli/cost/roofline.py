"""A roofline time for every recorded op, summed: what a model should take on a device.

    time(op) = max(FLOPs / peak(kind, dtype), bytes moved / bandwidth) + launch overhead

``peak`` is the device's tensor-core rate for convolutions and matrix products at the dtype they
compute in (float32 convolutions on TF32 units where the GPU has them, as PyTorch runs them by
default) and its FP32 rate for everything else; bytes are read + written (``secli.cost.rules``);
the launch overhead is paid once per kernel. An op is *memory-bound* when its bytes term is the
larger. Nothing overlaps and caches are ignored: the figure is a floor for a perfect
implementation of these exact kernels, and what it predicts best is a ratio between two models
built of the same kinds of kernels (baseline and injected).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from secli.cost.devices import Device
from secli.cost.record import OpCost, Recording
from secli.cost.summary import ROLES, owning_site, role_of


@dataclass
class PhaseTime:
    """Predicted seconds of a set of ops, split by what bounds them."""

    seconds: float = 0.0
    compute_s: float = 0.0  # ops whose FLOPs term is the larger
    memory_s: float = 0.0  # ops whose bytes term is the larger
    launch_s: float = 0.0
    kernels: int = 0

    def add(self, op: OpCost, batch: float, device: Device) -> float:
        flops, read, written = op.at(batch)
        peak = device.matrix_peak(op.kind, op.dtype) if op.kind != "vector" else device.fp32
        compute, memory = flops / peak, (read + written) / device.bandwidth
        launch = device.launch_us * 1e-6
        if compute >= memory:
            self.compute_s += compute
        else:
            self.memory_s += memory
        self.launch_s += launch
        self.kernels += 1
        spent = max(compute, memory) + launch
        self.seconds += spent
        return spent


@dataclass
class Prediction:
    """One model on one device at one batch size: per phase, and the blocks' time by role."""

    batch: int
    phases: dict[str, PhaseTime] = field(default_factory=dict)
    roles: dict[str, float] = field(default_factory=dict)  # seconds, blocks' ops only
    outside_s: float = 0.0

    @property
    def seconds(self) -> float:
        return sum(p.seconds for p in self.phases.values())

    @property
    def ms_per_image(self) -> float:
        return 1e3 * self.seconds / self.batch

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch,
            "ms": 1e3 * self.seconds,
            "ms_per_image": self.ms_per_image,
            "images_per_s": self.batch / self.seconds if self.seconds else None,
            "phases": {
                name: {"ms": 1e3 * p.seconds, "compute_bound_ms": 1e3 * p.compute_s,
                       "memory_bound_ms": 1e3 * p.memory_s, "launch_ms": 1e3 * p.launch_s, "kernels": p.kernels}
                for name, p in self.phases.items()
            },
        }


def predict(recording: Recording, device: Device, batch: int, sites: Sequence[str] = ()) -> Prediction:
    """The roofline time of every op of ``recording`` at ``batch`` images, blocks split by role."""
    found = Prediction(batch=batch, roles=dict.fromkeys(ROLES, 0.0))
    ordered = sorted(sites, key=len, reverse=True)
    for op in recording.ops:
        spent = found.phases.setdefault(op.phase, PhaseTime()).add(op, batch, device)
        site = owning_site(op.module, ordered) if ordered else None
        if site is None:
            found.outside_s += spent
        else:
            found.roles[role_of(op, site, recording.site_bytes.get(site))] += spent
    return found


@dataclass(frozen=True)
class Overhead:
    """What the blocks add to a model's predicted time, and which of their ops it comes from."""

    baseline_ms: float
    injected_ms: float
    batch: int
    roles_ms: dict[str, float]  # the blocks' own ops
    outside_ms: float  # the change in every other op (SK replaces convolutions; a folded SE takes the residual's ReLU)

    @property
    def added_ms(self) -> float:
        return self.injected_ms - self.baseline_ms

    @property
    def overhead_pct(self) -> float:
        return 100.0 * self.added_ms / self.baseline_ms if self.baseline_ms else 0.0

    @property
    def throughput_ratio(self) -> float:
        return self.baseline_ms / self.injected_ms if self.injected_ms else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline_ms": self.baseline_ms, "injected_ms": self.injected_ms, "added_ms": self.added_ms,
            "added_ms_per_image": self.added_ms / self.batch, "overhead_pct": self.overhead_pct,
            "throughput_ratio": self.throughput_ratio,
            "by_role_ms_per_image": {**{k: v / self.batch for k, v in self.roles_ms.items()},
                                     "outside the blocks": self.outside_ms / self.batch},
        }


def overhead(base: Prediction, injected: Prediction) -> Overhead:
    """``injected`` against ``base``; the roles and the outside change sum to the added time."""
    return Overhead(
        baseline_ms=1e3 * base.seconds, injected_ms=1e3 * injected.seconds, batch=injected.batch,
        roles_ms={role: 1e3 * s for role, s in injected.roles.items()},
        outside_ms=1e3 * (injected.outside_s - base.seconds),
    )
