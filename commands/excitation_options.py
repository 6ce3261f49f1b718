"""The options only ``secli visualize-excitation`` takes, declared as ``commands.options`` declares
the shared ones (same metavars, panels and default style)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from commands import options as opt
from secli.util.bounds import bound as _bound
from secli.util.bounds import bound_help as _range

INPUT, ANALYSIS, OUTPUT = opt.INPUT_PANEL, opt.ANALYSIS_PANEL, opt.OUTPUT_PANEL

Model = opt.model_argument("With --block, or its own attention modules.")
Classes = Annotated[Optional[str], typer.Option(
    "--classes", metavar="<class,...>", rich_help_panel=INPUT, show_default="all",
    help="Comma list of class names (or indices).",
)]
PerClass = Annotated[Optional[int], typer.Option(
    "--per-class", rich_help_panel=INPUT, show_default="all; synthetic 50",
    help=f"Images per class {_range('per_class')}, sampled with --seed (synthetic: generated).",
)]
ImageSize = opt.image_size("the checkpoint's, the weights' transforms, or 48 for synthetic")
BatchSize = opt.batch_size("images per forward pass; memory is estimated first")
FromStats = Annotated[Optional[Path], typer.Option(
    "--from-stats", metavar=opt.DIR, rich_help_panel=INPUT,
    help="Read the stats.npz + summary.json in this folder (no network): print its scores, and re-plot with --out.",
)]
Sites = Annotated[Optional[str], typer.Option(
    "--sites", metavar="<site,...>", rich_help_panel=ANALYSIS, show_default="all",
    help="Comma list of sites (e.g. SE_2_3,SE_5_2).",
)]
Scales = Annotated[Optional[str], typer.Option(
    "--scales", metavar="<float,...>", rich_help_panel=ANALYSIS, show_default="1.0",
    help=f"Object scales for the SK test, e.g. 1.0,1.5,2.0 (centre crop 1/s, resize back); each "
         f"{_range('scale')[1:-1]}, at most {int(_bound('scales').high)}.",
)]
Bins = Annotated[int, typer.Option(
    "--bins", rich_help_panel=ANALYSIS,
    help=f"Histogram bins over the gate's range {_range('bins')}; memory is estimated first.",
)]
Ablate = Annotated[bool, typer.Option(
    "--ablate", rich_help_panel=ANALYSIS,
    help="Per site, top-1 accuracy on these images with its gate replaced by its class-agnostic mean and by none "
         "(1; SK: 1/M). Needs a model whose outputs are the data's classes (secli train).",
)]
Seed = opt.seed("--per-class sampling and of synthetic images")
Ddp = opt.ddp("each rank takes a shard; sums are all-reduced")
Out = opt.out("Folder for figures, stats.npz and summary.json (required, except with --from-stats: without it the "
              "saved scores are printed).", metavar=opt.DIR)
Channels = Annotated[int, typer.Option(
    "--channels", rich_help_panel=OUTPUT, help=f"Channels shown per curve (evenly spaced) {_range('channels')}.",
)]
Figures = Annotated[str, typer.Option(
    "--figures", metavar="<set>", rich_help_panel=OUTPUT,
    help="default | all: default draws class means, scores by depth, distributions (and SK's); all adds two figures "
         "per site.",
)]
Svg = Annotated[bool, typer.Option("--svg", rich_help_panel=OUTPUT, help="Also write SVG figures.")]
SaveRaw = Annotated[bool, typer.Option(
    "--save-raw", rich_help_panel=OUTPUT,
    help="Also keep every image's gate vectors (raw.npz: '<scale>/<site>' (N, paths, C) and 'labels'; with --ddp, "
         "gathered from all ranks).",
)]
