"""One timing session: every model prepared on the device, then timed mode by mode, interleaved.

What makes the comparison fair is done here:
- inputs and targets are created once, on the device, before any timing;
- warm-up iterations before timing (cudnn autotuning, allocator growth, torch.compile);
- models are measured interleaved (A, B, A, B, ...) so that a noisy neighbour or a clock
  change hits every model alike instead of whichever happened to run at that moment;
- on a GPU, CUDA events mark each region and the host synchronizes once after the loop;
- memory is measured afterwards, one model at a time, in a separate step.

A model that fails (out of memory, torch.compile error, no backward) is marked and dropped;
the others go on. Out of memory under ``--auto-batch`` ends the session instead, so the caller
can start a new one at half the batch.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from secli.networks.sites import count_params
from secli.profiling.memory import step_memory
from secli.profiling.results import (
    AMP_DTYPES,
    Failure,
    ModelEntry,
    ModelProfile,
    ModeTiming,
    ProfileConfig,
    Progress,
)
from secli.profiling.steps import StepRunner, classify_failure
from secli.profiling.timing import HostStopwatch, Stopwatch
from secli.profiling.traffic import measure_site_traffic
from secli.util.distributed import any_rank
from secli.util.tensors import logits_of


class OutOfMemoryRetry(Exception):
    """Some model ran out of memory and --auto-batch asked to retry with a smaller batch."""


def compile_model(model: nn.Module, mode: str) -> Any:
    """torch.compile, kept apart so that tests can make it fail for one model."""
    return torch.compile(model, mode=mode)


@dataclass
class Prepared:
    entry: ModelEntry
    profile: ModelProfile
    fn: Any  # the callable to time: the module, its DDP wrapper, or the compiled one
    train_module: nn.Module
    inference_fn: Any


class Session:
    """One attempt at one batch size: prepares every model, then times each mode.

    ``watch`` marks the timed regions; it is handed in (not made here) so that the run and its
    bandwidth probe read the same clock, which is also what lets tests substitute a virtual one.
    """

    def __init__(self, entries: Sequence[ModelEntry], config: ProfileConfig, device: torch.device, batch: int,
                 progress: Progress | None, dist_ctx: Any, watch: Stopwatch) -> None:
        self.entries = entries
        self.config = config
        self.device = device
        self.batch = batch
        self.progress = progress
        self.dist = dist_ctx
        self.watch = watch
        self.amp = AMP_DTYPES[config.amp]
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.done = 0
        self.runners: dict[str, list[tuple[Prepared, StepRunner]]] = {}
        self.num_classes: int | None = None
        per_mode = config.warmup + config.iters + 1
        self.total = len(entries) * (1 + per_mode * len(config.modes))

    def _tick(self, what: str) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total, what)

    def _fail(self, prepared: Prepared, exc: BaseException, phase: str, mode: str) -> None:
        failure = classify_failure(exc, phase, mode, self.batch, prepared.profile.compiled)
        if failure.kind == "oom":
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            if self.config.auto_batch:
                raise OutOfMemoryRetry() from exc
        prepared.profile.failure = failure
        prepared.profile.timings.clear()

    def _input(self, batch: int) -> torch.Tensor:
        size = self.config.image_size
        return torch.randn(batch, 3, size, size, device=self.device).contiguous(memory_format=self.memory_format)

    def prepare(self) -> list[Prepared]:
        prepared = []
        probe_x = self._input(1)
        for number, entry in enumerate(self.entries, 1):
            preparing = f"preparing model {number}/{len(self.entries)} ({entry.label})"
            profile = ModelProfile(entry.label, count_params(entry.model), len(entry.sites), spec=entry.spec,
                                   counts=entry.counts)
            model = entry.model.to(self.device).to(memory_format=self.memory_format)
            item = Prepared(entry, profile, model, model, model)
            prepared.append(item)
            try:
                model.eval()
                amp = contextlib.nullcontext() if self.amp is None else torch.autocast(self.device.type, dtype=self.amp)

                def probe(model: nn.Module = model, amp: contextlib.AbstractContextManager[Any] = amp) -> None:
                    with torch.inference_mode(), amp:
                        classes = int(logits_of(model(probe_x)).shape[-1])
                        self.num_classes = min(classes, self.num_classes or classes)

                if entry.sites:
                    profile.traffic = measure_site_traffic(model, entry.sites, probe)
                else:
                    probe()
            except Exception as exc:  # one model's fault must not stop the others
                self._fail(item, exc, "forward", "inference")
                self._tick(preparing)
                continue
            train_module: nn.Module = model
            if self.dist is not None and "train" in self.config.modes:
                from torch.nn.parallel import DistributedDataParallel

                ids = None
                if self.device.type == "cuda":
                    ids = [self.device.index if self.device.index is not None else torch.cuda.current_device()]
                train_module = DistributedDataParallel(model, device_ids=ids)
            item.train_module = train_module
            item.fn, item.inference_fn = train_module, model
            if self.config.compile_mode is not None:
                try:
                    item.fn = compile_model(train_module, self.config.compile_mode)
                    item.inference_fn = (item.fn if train_module is model
                                         else compile_model(model, self.config.compile_mode))
                    profile.compiled = True
                except Exception as exc:
                    profile.compiled = True
                    self._fail(item, exc, "forward", "inference")
            self._tick(preparing)
        return prepared

    def run_mode(self, prepared: list[Prepared], mode: str) -> None:
        x = self._input(self.batch)
        y = torch.randint(0, max(self.num_classes or 1, 1), (self.batch,), device=self.device)
        runners: list[tuple[Prepared, StepRunner]] = []
        for item in prepared:
            if item.profile.failure is not None:
                continue
            item.entry.model.train(mode == "train")
            fn = item.fn if mode == "train" else item.inference_fn
            runners.append((item, StepRunner(item.entry, fn, mode, x, y, self.amp, self.device, item.train_module)))
        watch = self.watch
        untimed = HostStopwatch()
        warmup, iters = self.config.warmup, self.config.iters
        for k in range(warmup):
            self._each(runners, mode, f"warm-up {k + 1}/{warmup}", lambda r: r.step(untimed), sync=True)
        self._sync_failures(runners)
        for k in range(iters):
            self._each(runners, mode, f"iteration {k + 1}/{iters}", lambda r: r.marks.append(r.step(watch)))
        watch.finish()
        for item, runner in runners:
            if item.profile.failure is not None:
                continue
            forward, backward, step = runner.stats(watch)
            item.profile.timings[mode] = ModeTiming(mode, forward, backward, step, self.batch)
        self.runners[mode] = runners

    def measure_memory(self) -> None:
        """One extra step per model and mode, one model at a time, after all the timing."""
        untimed = HostStopwatch()
        for mode, runners in self.runners.items():
            for number, (item, runner) in enumerate(runners, 1):
                if item.profile.failure is None:
                    item.entry.model.train(mode == "train")
                    try:
                        item.profile.timings[mode].memory = step_memory(functools.partial(runner.step, untimed),
                                                                        self.device)
                    except Exception as exc:
                        self._fail(item, exc, runner.phase, mode)
                self._tick(f"{mode} memory: model {number}/{len(runners)} ({item.profile.label})")

    def _each(self, runners: list[tuple[Prepared, StepRunner]], mode: str, phase: str,
              action: Callable[[StepRunner], Any], sync: bool = False) -> None:
        """One iteration of every model in turn; progress reads "train: iteration 13/50, model 2/4 (label)"."""
        for number, (item, runner) in enumerate(runners, 1):
            if item.profile.failure is None:
                try:
                    action(runner)
                    if sync and self.device.type == "cuda":
                        torch.cuda.synchronize(self.device)  # surface async errors during warm-up
                except Exception as exc:
                    self._fail(item, exc, runner.phase, mode)
            self._tick(f"{mode}: {phase}, model {number}/{len(runners)} ({item.profile.label})")

    def _sync_failures(self, runners: list[tuple[Prepared, StepRunner]]) -> None:
        """Under DDP every rank must drop the same models, or the next all-reduce would hang."""
        if self.dist is None:
            return

        for item, _ in runners:
            if any_rank(item.profile.failure is not None, self.device) and item.profile.failure is None:
                item.profile.failure = Failure("error", "failed on another rank")
