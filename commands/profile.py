"""``secli profile``: forward/backward timing and memory, baseline against its block variants.

Its options are in ``commands.profile_options``, its tables in ``commands.profile_tables``.
"""

from __future__ import annotations

import os

import typer

from commands import options as opt
from commands.block_options import BLOCKS, BlockArgs, block_options
from commands.common import handle_errors, report_error, warn
from commands.profile_options import (
    Amp,
    AmpOption,
    AutoBatch,
    BatchSize,
    ChannelsLast,
    Compile,
    CompileMode,
    Ddp,
    ImageSize,
    Iters,
    Mode,
    Models,
    ModeOption,
    ProfileFormat,
    Spec,
    Threads,
    Warmup,
    WithComplexity,
)
from commands.profile_tables import CSV_COLUMNS, csv_tables, rendered, tables
from commands.progress import progress_bar
from commands.render import emit, out_format, write_results

#: what other modules read here: the command, and its tables for ``secli report`` (``commands.report``)
__all__ = ["CSV_COLUMNS", "csv_tables", "profile_command", "rendered", "tables"]


@handle_errors
@block_options(sweep=True, unset_kind="none added: the models as named")
def profile_command(
    models: Models = None,
    model_kwargs: opt.ModelKwargs = None,
    trust_code: opt.TrustCode = False,
    spec: Spec = None,
    blocks: BlockArgs = BLOCKS,
    batch_size: BatchSize = 8,
    image_size: ImageSize = None,
    input_size: opt.InputSizeAlias = None,
    mode: ModeOption = Mode.inference,
    amp: AmpOption = Amp.off,
    channels_last: ChannelsLast = False,
    compile_: Compile = False,
    compile_mode: CompileMode = None,
    iters: Iters = 20,
    warmup: Warmup = 5,
    auto_batch: AutoBatch = False,
    with_complexity: WithComplexity = False,
    roofline: opt.Roofline = None,
    device: opt.Device = "auto",
    threads: Threads = None,
    ddp: Ddp = False,
    out: opt.ResultsOut = None,
    force: opt.Force = False,
    fmt: ProfileFormat = opt.OutputFormat.table,
) -> None:
    """Time forward, backward and whole steps of models side by side; the first is the baseline.

    Models run interleaved (A, B, A, B, ...) after warm-up; medians and IQRs are reported with
    throughput ratios to the baseline, the step's peak memory, and for attention-block models the
    bytes their blocks must move with the implied passes at the measured copy bandwidth. --ratios,
    --positions, --stages, --paths, --impl and --spec add one model per variant to the same run.

    Example: secli profile resnet18 --block se,eca --image-size 64 --batch-size 2 --iters 3 --warmup 1

    Example: secli profile resnet18 --block se --mode both --with-complexity --out run.json
    """
    from secli.api import profile
    from secli.util.errors import SecliUsageError

    if force and out is None:
        raise SecliUsageError("--force applies to --out FILE; add --out or drop --force")
    file_fmt = out_format(out, fmt.value)  # a .csv or .md file is written here, the envelope by the library
    if file_fmt not in (None, "json"):
        from secli.util.outputs import check_writable

        check_writable(out, force)  # before minutes of timing, not after
    main_rank = not ddp or os.environ.get("RANK", "0") == "0"  # one progress display, not one per rank
    with progress_bar("profiling", None, enabled=main_rank) as bar:
        report = profile(
            models, block=blocks.kind, **blocks.options(), spec=spec, image_size=image_size, input_size=input_size,
            mode=mode.value, device=device, batch_size=batch_size, amp=amp.value, channels_last=channels_last,
            compile=compile_, compile_mode=compile_mode, iters=iters, warmup=warmup, threads=threads,
            auto_batch=auto_batch, ddp=ddp, roofline=roofline, with_complexity=with_complexity, progress=bar.update,
            out=out if file_fmt == "json" else None, force=force, model_kwargs=model_kwargs, trust_code=trust_code,
        )
    if not report.is_main:
        return
    for warning in report.warnings:
        warn(warning)
    for model in report.models:
        if model.failure is not None:
            report_error(f"{model.label}: {model.failure.message}")
    document = report.to_dict()
    emit(fmt.value, rendered(document, fmt.value), document)
    if file_fmt in ("csv", "markdown"):
        write_results(out, file_fmt, rendered(document, file_fmt), document, force)
    if not report.measured:
        raise typer.Exit(1)
