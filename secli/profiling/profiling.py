"""Timing forward, backward and whole training steps of several models side by side.

The first model is the baseline; each other model is reported as a ratio to it. This module
runs the measurement: it sets the device up, measures the copy bandwidth, runs a timing
session (``secli.profiling.session``), halves the batch and starts again on out of memory
under ``--auto-batch``, merges DDP ranks and compares with the baseline. Loading models from
names and options is ``secli.profiling.workflow``; the data is ``secli.profiling.results``.
The library reports progress only through a plain callback.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from secli.cost.devices import Device
from secli.profiling.compare import compare_to_baseline, noise_warnings
from secli.profiling.environment import busy_cpu_warning, cpu_kernel_warning, device_name
from secli.profiling.prediction import predict_or_warn
from secli.profiling.ranks import gather_slowest_rank
from secli.profiling.results import Failure, ModelEntry, ModelProfile, ProfileConfig, ProfileReport, Progress
from secli.profiling.session import OutOfMemoryRetry, Prepared, Session
from secli.profiling.timing import stopwatch_for
from secli.profiling.traffic import measure_copy_bandwidth
from secli.util.device import resolve_device
from secli.util.distributed import init_distributed
from secli.util.errors import SecliUsageError


def profile_models(entries: Sequence[ModelEntry], config: ProfileConfig, progress: Progress | None = None,
                   roofline: Device | str | None = None) -> ProfileReport:
    """Time every entry in every mode of ``config``; the first entry is the baseline. Then predict
    each from its ops on ``roofline`` (``secli.profiling.prediction``: by default the device it ran on)."""
    if not entries:
        raise SecliUsageError("name at least one model to profile")
    for entry in entries:
        if config.image_size < entry.min_input:
            raise SecliUsageError(
                f"--image-size {config.image_size} is too small for {entry.label} (at least {entry.min_input})"
            )
    device = resolve_device(config.device)
    dist_ctx = None
    if config.ddp:
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
    for warning in (busy_cpu_warning(device), cpu_kernel_warning(device, [e.model for e in entries])):
        if warning:
            warnings.append(warning)
    if config.compile_mode is not None and config.warmup == 0:
        warnings.append("--compile with --warmup 0: compilation time falls into the first timed iteration")
    if config.amp == "fp16" and "train" in config.modes:
        warnings.append("fp16 training runs without a GradScaler (its inf check would sync the host each step)")

    batch = config.batch_size
    while True:
        session = Session(entries, config, device, batch, progress, dist_ctx, watch)
        try:
            prepared = session.prepare()
            for mode in config.modes:
                session.run_mode(prepared, mode)
            session.measure_memory()
            break
        except OutOfMemoryRetry:
            del session
            if device.type == "cuda":
                torch.cuda.empty_cache()
            if batch == 1:
                prepared = [
                    Prepared(e, ModelProfile(e.label, 0, len(e.sites),
                                             failure=Failure("oom", "out of memory even at batch size 1"),
                                             spec=e.spec, counts=e.counts), e.model, e.model, e.model)
                    for e in entries
                ]
                break
            warnings.append(f"out of memory at batch size {batch}; --auto-batch halved it to {batch // 2}")
            batch //= 2

    models = [item.profile for item in prepared]
    is_main = True
    if dist_ctx is not None:
        is_main = gather_slowest_rank(models, dist_ctx)
    baseline = compare_to_baseline(models, bandwidth)
    if baseline is not None and models and models[0].label != baseline:
        warnings.append(f"baseline {models[0].label} could not be measured; ratios are against {baseline}")
    warnings.extend(noise_warnings(models))
    name = device_name(device)
    prediction = predict_or_warn(entries, config.modes, config.image_size, config.amp, batch, roofline, device, name,
                                 bandwidth.bytes_per_s, warnings) if is_main and baseline is not None else None
    return ProfileReport(
        config=config,
        device=str(device),
        device_name=name,
        torch_version=torch.__version__,
        threads=torch.get_num_threads(),
        batch_size=batch,
        bandwidth=bandwidth,
        models=models,
        baseline=baseline,
        warnings=warnings,
        world_size=dist_ctx.world_size if dist_ctx else 1,
        is_main=is_main,
        prediction=prediction,
    )
