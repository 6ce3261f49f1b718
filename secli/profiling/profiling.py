"""Timing forward, backward and whole training steps of several models side by side.

The first model is the baseline; each other model is reported as a ratio to it. What makes the
comparison fair:
- inputs and targets are created once, on the device, before any timing;
- warm-up iterations before timing (cudnn autotuning, allocator growth, torch.compile);
- models are measured interleaved (A, B, A, B, ...) so that a noisy neighbour or a clock
  change hits every model alike instead of whichever happened to run at that moment;
- on a GPU, CUDA events mark each region and the host synchronizes once after the loop;
- memory is measured afterwards, one model at a time, in a separate step.

A model that fails (out of memory, torch.compile error, no backward) is marked and dropped;
the others go on. The library reports progress only through a plain callback.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import nn

from secli.util.errors import SecliUsageError
from secli.profiling.memory import step_memory
from secli.profiling.results import (  # noqa: F401 - re-exported: secli.profiling.profiling is the entry point
    AMP_DTYPES,
    COMPILE_MODES,
    DEVICES,
    MODES,
    Comparison,
    Failure,
    ModelEntry,
    ModelProfile,
    ModeTiming,
    ProfileConfig,
    ProfileReport,
    Progress,
)
from secli.profiling.steps import StepRunner, classify_failure
from secli.util.device import resolve_device
from secli.util.tensors import logits_of
from secli.profiling.timing import HostStopwatch, stopwatch_for
from secli.profiling.traffic import Bandwidth, implied_passes, measure_copy_bandwidth, measure_site_traffic

class _OutOfMemory(Exception):
    """Some model ran out of memory and --auto-batch asked to retry with a smaller batch."""


def compile_model(model: nn.Module, mode: str) -> Any:
    """torch.compile, kept apart so that tests can make it fail for one model."""
    return torch.compile(model, mode=mode)


@dataclass
class _Prepared:
    entry: ModelEntry
    profile: ModelProfile
    fn: Any  # the callable to time: the module, its DDP wrapper, or the compiled one
    train_module: nn.Module
    inference_fn: Any


class _Session:
    """One attempt at one batch size: prepares every model, then times each mode."""

    def __init__(self, entries: Sequence[ModelEntry], config: ProfileConfig, device: torch.device, batch: int, progress: Progress | None, dist_ctx: Any) -> None:
        self.entries = entries
        self.config = config
        self.device = device
        self.batch = batch
        self.progress = progress
        self.dist = dist_ctx
        self.amp = AMP_DTYPES[config.amp]
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.done = 0
        self.runners: dict[str, list[tuple[_Prepared, StepRunner]]] = {}
        self.num_classes: int | None = None
        per_mode = config.warmup + config.iters + 1
        self.total = len(entries) * (1 + per_mode * len(config.modes))

    def _tick(self, what: str) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total, what)

    def _fail(self, prepared: _Prepared, exc: BaseException, phase: str, mode: str) -> None:
        failure = classify_failure(exc, phase, mode, self.batch, prepared.profile.compiled)
        if failure.kind == "oom":
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            if self.config.auto_batch:
                raise _OutOfMemory() from exc
        prepared.profile.failure = failure
        prepared.profile.timings.clear()

    def _input(self, batch: int) -> torch.Tensor:
        size = self.config.input_size
        return torch.randn(batch, 3, size, size, device=self.device).contiguous(memory_format=self.memory_format)

    def prepare(self) -> list[_Prepared]:
        prepared = []
        probe_x = self._input(1)
        for entry in self.entries:
            from secli.build.sites import count_params

            profile = ModelProfile(entry.label, count_params(entry.model), len(entry.sites))
            model = entry.model.to(self.device).to(memory_format=self.memory_format)
            item = _Prepared(entry, profile, model, model, model)
            prepared.append(item)
            try:
                model.eval()
                amp = contextlib.nullcontext() if self.amp is None else torch.autocast(self.device.type, dtype=self.amp)

                def probe(model: nn.Module = model) -> None:
                    with torch.inference_mode(), amp:
                        classes = int(logits_of(model(probe_x)).shape[-1])
                        self.num_classes = min(classes, self.num_classes or classes)

                if entry.sites:
                    profile.traffic = measure_site_traffic(model, entry.sites, probe)
                else:
                    probe()
            except Exception as exc:  # noqa: BLE001 - one model's fault must not stop the others
                self._fail(item, exc, "forward", "inference")
                self._tick(entry.label)
                continue
            train_module: nn.Module = model
            if self.dist is not None and "train" in self.config.modes:
                from torch.nn.parallel import DistributedDataParallel

                ids = [self.device.index if self.device.index is not None else torch.cuda.current_device()] if self.device.type == "cuda" else None
                train_module = DistributedDataParallel(model, device_ids=ids)
            item.train_module = train_module
            item.fn, item.inference_fn = train_module, model
            if self.config.compile_mode is not None:
                try:
                    item.fn = compile_model(train_module, self.config.compile_mode)
                    item.inference_fn = item.fn if train_module is model else compile_model(model, self.config.compile_mode)
                    profile.compiled = True
                except Exception as exc:  # noqa: BLE001
                    profile.compiled = True
                    self._fail(item, exc, "forward", "inference")
            self._tick(entry.label)
        return prepared

    def run_mode(self, prepared: list[_Prepared], mode: str) -> None:
        x = self._input(self.batch)
        y = torch.randint(0, max(self.num_classes or 1, 1), (self.batch,), device=self.device)
        runners: list[tuple[_Prepared, StepRunner]] = []
        for item in prepared:
            if item.profile.failure is not None:
                continue
            item.entry.model.train(mode == "train")
            fn = item.fn if mode == "train" else item.inference_fn
            runners.append((item, StepRunner(item.entry, fn, mode, x, y, self.amp, self.device, item.train_module)))
        watch = stopwatch_for(self.device)
        untimed = HostStopwatch()
        for _ in range(self.config.warmup):
            self._each(runners, mode, lambda r: r.step(untimed), sync=True)
        self._sync_failures(runners)
        for _ in range(self.config.iters):
            self._each(runners, mode, lambda r: r.marks.append(r.step(watch)))
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
            for item, runner in runners:
                if item.profile.failure is None:
                    item.entry.model.train(mode == "train")
                    try:
                        item.profile.timings[mode].memory = step_memory(lambda: runner.step(untimed), self.device)
                    except Exception as exc:  # noqa: BLE001
                        self._fail(item, exc, runner.phase, mode)
                self._tick(f"{item.profile.label} ({mode}, memory)")

    def _each(self, runners: list[tuple[_Prepared, StepRunner]], mode: str, action: Callable[[StepRunner], Any], sync: bool = False) -> None:
        for item, runner in runners:
            if item.profile.failure is None:
                try:
                    action(runner)
                    if sync and self.device.type == "cuda":
                        torch.cuda.synchronize(self.device)  # surface async errors during warm-up
                except Exception as exc:  # noqa: BLE001
                    self._fail(item, exc, runner.phase, mode)
            self._tick(f"{item.profile.label} ({mode})")

    def _sync_failures(self, runners: list[tuple[_Prepared, StepRunner]]) -> None:
        """Under DDP every rank must drop the same models, or the next all-reduce would hang."""
        if self.dist is None:
            return
        from secli.util.distributed import any_rank

        for item, _ in runners:
            if any_rank(item.profile.failure is not None, self.device) and item.profile.failure is None:
                item.profile.failure = Failure("error", "failed on another rank")


def _compare(models: list[ModelProfile], bandwidth: Bandwidth | None) -> str | None:
    """Fill each model's comparisons against the baseline; return the baseline's label."""
    measured = [m for m in models if m.ok]
    if not measured:
        return None
    base = measured[0]
    for model in measured:
        for mode, timing in model.timings.items():
            ref = base.timings.get(mode)
            if ref is None:
                continue
            added_ms = timing.step.median_ms - ref.step.median_ms
            passes = None
            if model is not base and bandwidth is not None and model.traffic and not (base.traffic and base.traffic.sites):
                per_pass = model.traffic.bytes_per_image * timing.batch_size
                passes = implied_passes(added_ms, bandwidth, per_pass)
            model.comparisons[mode] = Comparison(
                throughput_ratio=ref.step.median_ms / timing.step.median_ms,
                overhead_pct=100.0 * (timing.step.median_ms / ref.step.median_ms - 1.0),
                overhead_us_per_image=added_ms * 1e3 / timing.batch_size,
                implied_passes=passes,
            )
    return base.label


def _noise_warnings(models: list[ModelProfile]) -> list[str]:
    """One line naming every whole-step timing whose IQR exceeds 10% of its median."""
    noisy = [
        f"{model.label} {mode} {timing.step.relative_iqr:.0%}"
        for model in models
        for mode, timing in model.timings.items()
        if timing.step.noisy
    ]
    if not noisy:
        return []
    return [f"noisy timings (IQR/median > 10%): {', '.join(noisy)}; use more --iters or a quieter machine"]


def _gather_ranks(models: list[ModelProfile], dist_ctx: Any) -> bool:
    """Rank 0 keeps, per model and mode, the timings of the slowest rank. True on rank 0."""
    from secli.util.distributed import gather_to_main

    mine = [{m: t for m, t in model.timings.items()} if model.ok else None for model in models]
    gathered = gather_to_main(mine)
    if gathered is None:
        return False
    for index, model in enumerate(models):
        if not model.ok:
            continue
        for mode, timing in list(model.timings.items()):
            per_rank = [rank_timings[index][mode] if rank_timings[index] else None for rank_timings in gathered]
            if any(t is None for t in per_rank):
                model.failure = Failure("error", "no timings from every rank", mode)
                model.timings.clear()
                break
            slowest = max(range(len(per_rank)), key=lambda r: per_rank[r].step.median_ms)
            chosen = per_rank[slowest]
            chosen.world_size = dist_ctx.world_size
            chosen.slowest_rank = slowest
            chosen.rank_step_ms = [t.step.median_ms for t in per_rank]
            deltas = [t.memory for t in per_rank if t.memory is not None]
            chosen.memory = max(deltas, key=lambda m: m.delta_bytes) if deltas else None
            model.timings[mode] = chosen
    return True


def profile_models(entries: Sequence[ModelEntry], config: ProfileConfig, progress: Progress | None = None) -> ProfileReport:
    """Time every entry in every mode of ``config``; the first entry is the baseline."""
    if not entries:
        raise SecliUsageError("name at least one model to profile")
    for entry in entries:
        if config.input_size < entry.min_input:
            raise SecliUsageError(
                f"input size {config.input_size} is too small for {entry.label} (at least {entry.min_input})"
            )
    device = resolve_device(config.device)
    dist_ctx = None
    if config.ddp:
        from secli.util.distributed import init_distributed

        dist_ctx = init_distributed(device.type)
        if device.type == "cuda":
            device = torch.device("cuda", dist_ctx.local_rank)
    if config.threads is not None and device.type == "cpu":
        torch.set_num_threads(config.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    watch = stopwatch_for(device)
    bandwidth = measure_copy_bandwidth(device, watch)
    warnings: list[str] = []
    busy = _busy_cpu_warning(device)
    if busy:
        warnings.append(busy)
    if config.compile_mode is not None and config.warmup == 0:
        warnings.append("--compile with --warmup 0: compilation time falls into the first timed iteration")
    if config.amp == "fp16" and "train" in config.modes:
        warnings.append("fp16 training runs without a GradScaler (its inf check would sync the host each step)")

    batch = config.batch_size
    while True:
        session = _Session(entries, config, device, batch, progress, dist_ctx)
        try:
            prepared = session.prepare()
            for mode in config.modes:
                session.run_mode(prepared, mode)
            session.measure_memory()
            break
        except _OutOfMemory:
            del session
            if device.type == "cuda":
                torch.cuda.empty_cache()
            if batch == 1:
                prepared = [
                    _Prepared(e, ModelProfile(e.label, 0, len(e.sites), failure=Failure("oom", "out of memory even at batch size 1")), e.model, e.model, e.model)
                    for e in entries
                ]
                break
            warnings.append(f"out of memory at batch size {batch}; --auto-batch halved it to {batch // 2}")
            batch //= 2

    models = [item.profile for item in prepared]
    is_main = True
    if dist_ctx is not None:
        is_main = _gather_ranks(models, dist_ctx)
    baseline = _compare(models, bandwidth)
    if baseline is not None and models and models[0].label != baseline:
        warnings.append(f"baseline {models[0].label} could not be measured; ratios are against {baseline}")
    warnings.extend(_noise_warnings(models))
    return ProfileReport(
        config=config,
        device=str(device),
        device_name=_device_name(device),
        torch_version=torch.__version__,
        threads=torch.get_num_threads(),
        batch_size=batch,
        bandwidth=bandwidth,
        models=models,
        baseline=baseline,
        warnings=warnings,
        world_size=dist_ctx.world_size if dist_ctx else 1,
        is_main=is_main,
    )


def _busy_cpu_warning(device: torch.device) -> str | None:
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


def _device_name(device: torch.device) -> str:
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
