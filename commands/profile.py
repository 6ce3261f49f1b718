"""``secli profile``: forward/backward timing and memory, baseline against injected."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Optional

import typer

from commands import options as opt
from commands.common import handle_errors, report_error, warn
from commands.progress import progress_bar
from commands.render import Table, emit

TIMING_PANEL = "Timing"


class Mode(str, Enum):
    inference = "inference"
    train = "train"
    both = "both"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Amp(str, Enum):
    off = "off"
    bf16 = "bf16"
    fp16 = "fp16"


@handle_errors
def profile_command(
    models: Annotated[Optional[list[str]], typer.Argument(help="Models, baseline first: architecture names, timm:<name>, or saved .pt files.", show_default=False)] = None,
    block: Annotated[Optional[str], typer.Option("--block", help="With one architecture: compare it with itself injected (se, sk, eca, or a comma list such as se,sk).", rich_help_panel=opt.BLOCK_PANEL)] = None,
    ratio: opt.Ratio = None,
    position: opt.Position = None,
    stages: opt.Stages = None,
    paths: opt.Paths = None,
    groups: opt.Groups = None,
    kernel_size: opt.KernelSize = None,
    impl: Annotated[Optional[str], typer.Option("--impl", help="SE/SK implementation: eager | fused, or a comma list (eager,fused) for one model each.", rich_help_panel=opt.BLOCK_PANEL)] = None,
    mode: Annotated[Mode, typer.Option("--mode", "-m", help="inference (forward under inference_mode), train (zero_grad, forward, loss, backward, SGD step) or both.", rich_help_panel=TIMING_PANEL)] = Mode.inference,
    device: Annotated[Device, typer.Option("--device", help="auto picks CUDA when available.", rich_help_panel=TIMING_PANEL)] = Device.auto,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", help="Images per step.", rich_help_panel=TIMING_PANEL)] = 8,
    input_size: Annotated[Optional[int], typer.Option("--input-size", help="Square input side (default: the first model's, e.g. 224).", rich_help_panel=TIMING_PANEL)] = None,
    amp: Annotated[Amp, typer.Option("--amp", help="Autocast dtype for forward and loss.", rich_help_panel=TIMING_PANEL)] = Amp.off,
    channels_last: Annotated[bool, typer.Option("--channels-last", help="Models and input in channels_last memory format.", rich_help_panel=TIMING_PANEL)] = False,
    compile_: Annotated[bool, typer.Option("--compile", help="torch.compile every model (see --compile-mode).", rich_help_panel=TIMING_PANEL)] = False,
    compile_mode: Annotated[Optional[str], typer.Option("--compile-mode", help="default | reduce-overhead | max-autotune | max-autotune-no-cudagraphs (implies --compile).", rich_help_panel=TIMING_PANEL)] = None,
    iters: Annotated[int, typer.Option("--iters", help="Timed iterations per model and mode.", rich_help_panel=TIMING_PANEL)] = 20,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed iterations first.", rich_help_panel=TIMING_PANEL)] = 5,
    threads: Annotated[Optional[int], typer.Option("--threads", help="CPU threads for torch (default: torch's own choice).", rich_help_panel=TIMING_PANEL)] = None,
    auto_batch: Annotated[bool, typer.Option("--auto-batch", help="On out-of-memory, halve the batch and start again.", rich_help_panel=TIMING_PANEL)] = False,
    ddp: Annotated[bool, typer.Option("--ddp", help="Under torchrun: every rank times its DistributedDataParallel step; rank 0 reports the slowest rank.", rich_help_panel=TIMING_PANEL)] = False,
    fmt: Annotated[opt.TableOrJson, typer.Option("--format", "-f", help="Output format.")] = opt.TableOrJson.table,
) -> None:
    """Time forward, backward and whole steps of models side by side; the first is the baseline.

    Models run interleaved (A, B, A, B, ...) after warm-up; medians and IQRs are reported with
    throughput ratios to the baseline, the step's peak memory, and for SE/SK/ECA models the bytes
    their blocks must move with the implied passes at the measured copy bandwidth.
    """
    from secli.profiling.workflow import profile

    with progress_bar("profiling", None, enabled=fmt.value == "table") as bar:
        report = profile(
            models, block=block, ratio=ratio, position=position, stages=stages, paths=paths, groups=groups, kernel_size=kernel_size, impl=impl,
            mode=mode.value, device=device.value, batch_size=batch_size, input_size=input_size, amp=amp.value,
            channels_last=channels_last, compile=compile_, compile_mode=compile_mode, iters=iters, warmup=warmup,
            threads=threads, auto_batch=auto_batch, ddp=ddp, progress=bar.update,
        )
    if not report.is_main:
        return
    for warning in report.warnings:
        warn(warning)
    for model in report.models:
        if model.failure is not None:
            report_error(f"{model.label}: {model.failure.message}")
    emit(fmt.value, _tables(report), report.to_dict())
    if not report.measured:
        raise typer.Exit(1)


def _mb(value: int | None) -> float | None:
    return None if value is None else value / 2**20


def _tables(report: Any) -> list[Table]:
    c = report.config
    setting = (
        f"batch {report.batch_size}, {c.input_size}x{c.input_size}, {report.device}"
        f"{'' if report.device.startswith('cuda') else f' ({report.threads} threads)'}"
        f", amp {c.amp}{', channels_last' if c.channels_last else ''}"
        f"{f', compiled ({c.compile_mode})' if c.compile_mode else ''}"
        f"{f', DDP x{report.world_size} (slowest rank)' if report.world_size > 1 else ''}"
    )
    tables = []
    for mode in c.modes:
        if mode == "inference":
            columns = ["model", "ms", "IQR", "img/s", "ratio", "+%", "+µs/img"]
        else:
            columns = ["model", "fwd", "bwd", "step", "IQR", "img/s", "ratio", "+%", "+µs/img"]
        rows = []
        for model in report.models:
            timing = model.timings.get(mode)
            if timing is None:
                status = model.failure.kind if model.failure else "not run"
                rows.append([f"{model.label} ({status} failed)" if model.failure else model.label] + [None] * (len(columns) - 1))
                continue
            cmp = model.comparisons.get(mode)
            label = model.label + (" [compiled]" if model.compiled else "")
            tail = [timing.step.iqr_ms, timing.images_per_s, cmp.throughput_ratio if cmp else None, cmp.overhead_pct if cmp else None, cmp.overhead_us_per_image if cmp else None]
            if mode == "inference":
                rows.append([label, timing.step.median_ms] + tail)
            else:
                rows.append([label, timing.forward.median_ms, timing.backward.median_ms, timing.step.median_ms] + tail)
        table = Table(title=f"{mode}: {setting}", columns=columns, rows=rows)
        table.notes.append(
            f"ms: median of {c.iters} interleaved iterations after {c.warmup} warm-up (IQR of the "
            f"{'step' if mode == 'train' else 'time'}); ratio: throughput vs {report.baseline or '-'}; "
            "+%, +µs/img: added time over it"
        )
        tables.append(table)
    tables.append(_memory_table(report))
    return tables


def _memory_table(report: Any) -> Table:
    c = report.config
    short = {"inference": "inf", "train": "train"}
    columns = ["model"] + [f"{short[m]} peak Δ MB" for m in c.modes] + ["block MB/pass"] + [f"{short[m]} passes" for m in c.modes]
    rows = []
    methods = set()
    for model in report.models:
        row: list[Any] = [model.label]
        for mode in c.modes:
            timing = model.timings.get(mode)
            memory = timing.memory if timing else None
            if memory is not None:
                methods.add(memory.method)
            row.append(_mb(memory.delta_bytes) if memory else None)
        traffic = model.traffic.bytes_per_image * report.batch_size if model.traffic and model.traffic.sites else None
        row.append(_mb(traffic))
        for mode in c.modes:
            cmp = model.comparisons.get(mode)
            row.append(cmp.implied_passes if cmp else None)
        rows.append(row)
    table = Table(title="memory and block traffic", columns=columns, rows=rows)
    how = {
        "cuda-allocator": "peak Δ: max_memory_allocated above what was allocated before the step",
        "linux-vmhwm": "peak Δ: peak RSS (VmHWM after clear_refs) above RSS before the step",
        "ru_maxrss-lower-bound": "peak Δ: ru_maxrss growth (a lower bound)",
    }
    for method in sorted(methods):
        table.notes.append(how.get(method, method))
    if report.bandwidth is not None:
        table.notes.append(
            f"block MB/pass: one read of every site's output (C·H·W·bytes) for the batch; passes = added time x "
            f"{report.bandwidth.gb_per_s:.1f} GB/s ({report.bandwidth.method}) / block bytes; SK adds convolutions too"
        )
    return table
