"""The options only ``secli complexity`` takes, declared as ``commands.options`` declares the shared
ones (same metavars, panels and default style)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from commands import options as opt
from secli.util.bounds import bound_help as _range

ANALYSIS = opt.ANALYSIS_PANEL
Model = opt.model_argument("A sweep YAML too.")
ComplexitySpec = opt.spec_file("a complexity experiment (see examples/) or a model spec")
ImageSize = opt.image_size("the architecture's (224 for most; secli inject --list shows each)")
ByStage = Annotated[bool, typer.Option(
    "--by-stage", rich_help_panel=ANALYSIS,
    help="Also show each stage: N_s, C_s, block params, the paper's formula, block FLOPs.",
)]
ByModule = Annotated[bool, typer.Option(
    "--by-module", rich_help_panel=ANALYSIS,
    help="Also show parameters and FLOPs (FC only, all ops) per module as a tree, blocks marked.",
)]
Depth = Annotated[Optional[int], typer.Option(
    "--depth", rich_help_panel=ANALYSIS, show_default="3",
    help=f"With --by-module: how deep the tree goes (0 = the model) {_range('depth')}.",
)]
TrainingStep = Annotated[bool, typer.Option(
    "--training-step", rich_help_panel=ANALYSIS,
    help="Also count one training step: forward + backward FLOPs and the activation memory kept for backward.",
)]
Dtype = Annotated[str, typer.Option(
    "--dtype", metavar="<dtype>", rich_help_panel=ANALYSIS,
    help="fp32 | bf16 | fp16: the dtype of the bytes count and of --roofline (bf16, fp16: what torch.autocast "
         "runs in them, AMP).",
)]
RooflineBatch = Annotated[Optional[int], typer.Option(
    "--roofline-batch", rich_help_panel=ANALYSIS, show_default="1",
    help="With --roofline: images per step of the prediction.",
)]
