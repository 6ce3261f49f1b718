"""Reusable option declarations, so every command spells the block options the same way.

Block options default to None so that a value given on the command line can override the
same key read from a ``--spec`` YAML file, and unset ones fall back to the paper's defaults.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from secli.util.vocabulary import GATES, IMPLS, INITS, OUTPUT_FORMATS, POSITIONS, SQUEEZES

#: table | json | csv | markdown, from the one vocabulary module.
OutputFormat = Enum("OutputFormat", {name: name for name in OUTPUT_FORMATS}, type=str)  # type: ignore[misc]


def _choices(values: tuple[str, ...]) -> str:
    return " | ".join(values)


class TableOrJson(str, Enum):
    table = "table"
    json = "json"


BLOCK_PANEL = "Block"
MODEL_PANEL = "Model"

# The kinds are written out (not read from secli.build.registry) so that building the CLI does
# not import torch; tests/test_eca.py checks that every registered kind is named here.
BLOCK_HELP = "se | sk | eca | none (none: analyse the SE modules a network already has)."
Block = Annotated[Optional[str], typer.Option("--block", help=BLOCK_HELP, rich_help_panel=BLOCK_PANEL)]
Ratio = Annotated[Optional[int], typer.Option("--ratio", "-r", help="Reduction ratio r (hidden width C // r). Default 16.", rich_help_panel=BLOCK_PANEL)]
MinHidden = Annotated[Optional[int], typer.Option("--min-hidden", help="Floor on the hidden width (SE default 1; SK's L, default 32).", rich_help_panel=BLOCK_PANEL)]
Position = Annotated[Optional[str], typer.Option("--position", help=f"SE/ECA position: {_choices(POSITIONS)} (residual networks).", rich_help_panel=BLOCK_PANEL)]
Stages = Annotated[Optional[str], typer.Option("--stages", help="Comma list of stages in the paper's numbering (ResNet: 2..5). Default: all.", rich_help_panel=BLOCK_PANEL)]
Squeeze = Annotated[Optional[str], typer.Option("--squeeze", help=f"SE squeeze: {_choices(SQUEEZES)} (Table 11, Table 16).", rich_help_panel=BLOCK_PANEL)]
Gate = Annotated[Optional[str], typer.Option("--gate", help=f"SE gate: {_choices(GATES)} (Table 12).", rich_help_panel=BLOCK_PANEL)]
Bias = Annotated[Optional[bool], typer.Option("--bias/--no-bias", help="FC biases (on in the released models; off in the paper's ablations).", rich_help_panel=BLOCK_PANEL, show_default=False)]
Init = Annotated[Optional[str], typer.Option("--init", help=f"SE gate init: {_choices(INITS)} (block starts as ~identity, for fine-tuning pretrained nets).", rich_help_panel=BLOCK_PANEL)]
Paths = Annotated[Optional[int], typer.Option("--paths", help="SK paths M (path m: 3x3 conv, dilation m). Default 2.", rich_help_panel=BLOCK_PANEL)]
Groups = Annotated[Optional[int], typer.Option("--groups", help="SK groups G. Default 32.", rich_help_panel=BLOCK_PANEL)]
KernelSize = Annotated[Optional[int], typer.Option("--kernel-size", help="ECA 1-D kernel size k (odd). Default: the paper's adaptive k from C.", rich_help_panel=BLOCK_PANEL)]
Impl = Annotated[Optional[str], typer.Option("--impl", help=f"SE/SK implementation: {_choices(IMPLS)} (same parameters and checkpoints; fused: fewer passes over memory in training).", rich_help_panel=BLOCK_PANEL)]
Weights = Annotated[Optional[str], typer.Option("--weights", help="Base weights: a local state-dict file, or a torchvision name such as IMAGENET1K_V2 (downloads).", rich_help_panel=MODEL_PANEL)]
NumClasses = Annotated[Optional[int], typer.Option("--num-classes", help="Classifier width (default: 1000, or the weights' own).", rich_help_panel=MODEL_PANEL)]
SpecFile = Annotated[Optional[Path], typer.Option("--spec", help="Read the model spec from a YAML file; options given here override it.", rich_help_panel=MODEL_PANEL)]
Force = Annotated[bool, typer.Option("--force", help="Overwrite existing output files.")]
