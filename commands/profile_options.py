"""The options only ``secli profile`` takes, declared as ``commands.options`` declares the shared ones
(same metavars, panels and default style); kept apart so that profile.py holds the command and its tables."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Optional

import typer

from commands import options as opt
from secli.util.bounds import bound_help as _range

TIMING = opt.TIMING_PANEL


class Mode(str, Enum):
    inference = "inference"
    train = "train"
    both = "both"


class Amp(str, Enum):
    off = "off"
    bf16 = "bf16"
    fp16 = "fp16"


Models = Annotated[Optional[list[str]], typer.Argument(
    show_default=False,
    help="Models, baseline first: architecture names, timm:<name>, your factories (file.py:build), or saved .pt "
         "files.",
)]
Spec = opt.spec_file("a sweep (as for complexity: arch, block, rows, sweep)")
BatchSize = opt.batch_size("refused when the estimated activations exceed the free memory")
ImageSize = opt.image_size("the first model's (224 for most; secli inject --list shows each)",
                           "Memory is estimated first.")
ModeOption = Annotated[Mode, typer.Option(
    "--mode", "-m", metavar="<mode>", rich_help_panel=TIMING,
    help="inference | train | both: inference is a forward under inference_mode; train is zero_grad, forward, "
         "loss, backward, SGD step.",
)]
AmpOption = Annotated[Amp, typer.Option(
    "--amp", metavar="<amp>", rich_help_panel=TIMING,
    help="off | bf16 | fp16: the autocast dtype for forward and loss.",
)]
ChannelsLast = Annotated[bool, typer.Option(
    "--channels-last", rich_help_panel=TIMING, help="Models and input in channels_last memory format.",
)]
Compile = Annotated[bool, typer.Option(
    "--compile", rich_help_panel=TIMING, help="torch.compile every model (mode: --compile-mode).",
)]
CompileMode = Annotated[Optional[str], typer.Option(
    "--compile-mode", metavar="<mode>", rich_help_panel=TIMING, show_default="default",
    help="With --compile: default | reduce-overhead | max-autotune | max-autotune-no-cudagraphs.",
)]
Iters = Annotated[int, typer.Option(
    "--iters", rich_help_panel=TIMING, help=f"Timed iterations per model and mode {_range('iters')}.",
)]
Warmup = Annotated[int, typer.Option(
    "--warmup", rich_help_panel=TIMING, help=f"Untimed iterations first {_range('warmup')}.",
)]
AutoBatch = Annotated[bool, typer.Option(
    "--auto-batch", rich_help_panel=TIMING, help="On out-of-memory, halve the batch and start again (not with --ddp).",
)]
WithComplexity = Annotated[bool, typer.Option(
    "--with-complexity", rich_help_panel=opt.ANALYSIS_PANEL,
    help="Also count each model's parameters and FLOPs (as secli complexity: fvcore, batch 1, at --image-size) "
         "into the same rows.",
)]
Threads = Annotated[Optional[int], typer.Option(
    "--threads", rich_help_panel=opt.RUN_PANEL, show_default="torch's own choice",
    help=f"CPU threads for torch (CPU runs only) {_range('threads')}.",
)]
Ddp = opt.ddp("with --mode train or both, every rank times its DistributedDataParallel step; rank 0 reports the "
              "slowest rank")
ProfileFormat = opt.output_format("json: the results envelope; csv: one row per model and mode")
