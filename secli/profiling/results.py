"""The plain data of a profile run: what to measure, and what was measured.

Kept apart from the measuring code so that the CLI, the tests and a notebook read the same
dataclasses, and so a JSON payload (``to_dict``) is one call away.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from secli.networks.sites import Site
from secli.profiling.memory import MemoryReading
from secli.profiling.timing import Stats
from secli.profiling.traffic import Bandwidth, BlockTraffic
from secli.util.checks import MAX_IMAGE_SIZE, check_bounded, check_int
from secli.util.envelope import envelope
from secli.util.errors import SecliUsageError

if TYPE_CHECKING:
    from secli.profiling.prediction import RunPrediction

MODES = ("inference", "train")
#: auto | cpu | cuda | cuda:N; secli.util.device.resolve_device checks that the device exists.
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:[0-9]+)?")
AMP_DTYPES: dict[str, torch.dtype | None] = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")

#: Progress callback: (steps done, steps in all, what is running now).
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class ProfileConfig:
    """What to measure and how. Validated on creation so bad values fail before any model is built."""

    device: str = "auto"
    batch_size: int = 8
    image_size: int = 224
    modes: tuple[str, ...] = ("inference",)
    amp: str = "off"
    channels_last: bool = False
    compile_mode: str | None = None
    iters: int = 20
    warmup: int = 5
    threads: int | None = None
    auto_batch: bool = False
    ddp: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.device, str) or not DEVICE_PATTERN.fullmatch(self.device):
            raise SecliUsageError(f"unknown device {str(self.device)[:100]!r}; use auto, cpu, cuda or cuda:N")
        for name, value in (("--batch-size", self.batch_size), ("--iters", self.iters), ("--warmup", self.warmup)):
            check_bounded(name, value)  # ranges and their reasons: secli.util.bounds
        check_int("--image-size", self.image_size, 1, MAX_IMAGE_SIZE)  # 1: the first model's default, set later
        if self.threads is not None:
            check_bounded("--threads", self.threads)  # 100,000 crashed torch (rc 139)
        if not self.modes or any(m not in MODES for m in self.modes):
            raise SecliUsageError(f"unknown mode in {self.modes!r}; choose inference, train or both")
        if self.amp not in AMP_DTYPES:
            raise SecliUsageError(f"unknown --amp {self.amp!r}; choose one of: {', '.join(AMP_DTYPES)}")
        if self.compile_mode is not None and self.compile_mode not in COMPILE_MODES:
            raise SecliUsageError(
                f"unknown compile mode {self.compile_mode!r}; choose one of: {', '.join(COMPILE_MODES)}"
            )


@dataclass
class ModelEntry:
    """One model to profile: a label for tables, the module, and its attention sites."""

    label: str
    model: nn.Module
    sites: list[Site] = field(default_factory=list)
    min_input: int = 1
    spec: dict[str, Any] | None = None  # the ModelSpec it was built from (joins rows across commands)
    counts: dict[str, int] | None = None  # parameters and FLOPs at the run's image size, when asked


@dataclass(frozen=True)
class Failure:
    """Why a model has no figures: kind is oom, compile, backward or error."""

    kind: str
    message: str
    mode: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "mode": self.mode}


@dataclass
class ModeTiming:
    """One model in one mode. In inference mode forward == step and backward is None."""

    mode: str
    forward: Stats
    backward: Stats | None
    step: Stats
    batch_size: int
    world_size: int = 1
    memory: MemoryReading | None = None
    slowest_rank: int | None = None
    rank_step_ms: list[float] | None = None

    @property
    def images_per_s(self) -> float:
        return self.batch_size * self.world_size / (self.step.median_ms / 1e3)

    def to_dict(self) -> dict[str, Any]:
        return {
            "forward": self.forward.to_dict(),
            "backward": self.backward.to_dict() if self.backward else None,
            "step": self.step.to_dict(),
            "images_per_s": self.images_per_s,
            "memory": self.memory.to_dict() if self.memory else None,
            "slowest_rank": self.slowest_rank,
            "rank_step_median_ms": self.rank_step_ms,
        }


@dataclass(frozen=True)
class Comparison:
    """A model against the baseline in one mode, from the medians of the whole step."""

    throughput_ratio: float
    overhead_pct: float
    overhead_us_per_image: float
    implied_passes: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "throughput_ratio": self.throughput_ratio,
            "overhead_pct": self.overhead_pct,
            "overhead_us_per_image": self.overhead_us_per_image,
            "implied_passes": self.implied_passes,
        }


@dataclass
class ModelProfile:
    label: str
    params: int
    sites: int
    compiled: bool = False
    traffic: BlockTraffic | None = None
    failure: Failure | None = None
    timings: dict[str, ModeTiming] = field(default_factory=dict)
    comparisons: dict[str, Comparison] = field(default_factory=dict)
    spec: dict[str, Any] | None = None  # the ModelSpec, as ModelEntry.spec
    counts: dict[str, int] | None = None  # with_complexity: params, flops_fc_only, flops_all_ops (batch 1)

    @property
    def ok(self) -> bool:
        return self.failure is None and bool(self.timings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "spec": self.spec,
            "params": self.params,
            "flops": None if self.counts is None else {k: v for k, v in self.counts.items() if k != "params"},
            "sites": self.sites,
            "compiled": self.compiled,
            "block_traffic": self.traffic.to_dict() if self.traffic else None,
            "failure": self.failure.to_dict() if self.failure else None,
            "modes": {m: t.to_dict() for m, t in self.timings.items()},
            "vs_baseline": {m: c.to_dict() for m, c in self.comparisons.items()},
        }


@dataclass
class ProfileReport:
    """A whole run. ``inputs`` is what was asked (models, variants, settings) as the envelope's
    ``inputs``; the rest is what was found. ``to_dict()`` is the ``secli-profile`` envelope."""

    config: ProfileConfig
    device: str
    device_name: str
    torch_version: str
    threads: int
    batch_size: int
    bandwidth: Bandwidth | None
    models: list[ModelProfile]
    baseline: str | None
    warnings: list[str] = field(default_factory=list)
    world_size: int = 1
    is_main: bool = True
    inputs: dict[str, Any] = field(default_factory=dict)
    prediction: RunPrediction | None = None  # the roofline beside the timings (secli.profiling.prediction)

    @property
    def measured(self) -> list[ModelProfile]:
        return [m for m in self.models if m.ok]

    def settings(self) -> dict[str, Any]:
        """The timing settings as asked, for the envelope's ``inputs``."""
        c = self.config
        return {
            "image_size": c.image_size,
            "modes": list(c.modes),
            "device": c.device,
            "batch_size": c.batch_size,
            "amp": c.amp,
            "channels_last": c.channels_last,
            "compile_mode": c.compile_mode,
            "iters": c.iters,
            "warmup": c.warmup,
            "threads": c.threads,
            "auto_batch": c.auto_batch,
            "ddp": c.ddp,
        }

    def results(self) -> dict[str, Any]:
        """What was measured, and on what: the envelope's ``results``."""
        return {
            "device": self.device,
            "device_name": self.device_name,
            "torch": self.torch_version,
            "threads": self.threads,
            "batch_size": self.batch_size,
            "image_size": self.config.image_size,
            "world_size": self.world_size,
            "baseline": self.baseline,
            "bandwidth": self.bandwidth.to_dict() if self.bandwidth else None,
            "models": [m.to_dict() for m in self.models],
            "warnings": self.warnings,
            "prediction": None if self.prediction is None else self.prediction.to_dict(self.measured, self.baseline),
        }

    def to_dict(self) -> dict[str, Any]:
        """The ``secli-profile`` envelope: what ``--format json`` prints and ``--out`` writes."""
        return envelope("profile", {**self.inputs, **self.settings()}, self.results())
