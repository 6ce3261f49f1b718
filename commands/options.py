"""Reusable option declarations, so every command spells one concept one way.

Block options default to None so that a value given on the command line can override the
same key read from a ``--spec`` YAML file, and unset ones fall back to the paper's defaults;
``show_default`` text says in the help what that effective default is. Old spellings stay
accepted for one release as hidden aliases (``InputSizeAlias``); ``pick`` merges the two.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer

from secli.util.errors import SecliUsageError
from secli.util.vocabulary import GATES, IMPLS, INITS, OUTPUT_FORMATS, POSITIONS, SQUEEZES

#: table | json | csv | markdown, from the one vocabulary module.
OutputFormat = Enum("OutputFormat", {name: name for name in OUTPUT_FORMATS}, type=str)  # type: ignore[misc]


def _choices(values: tuple[str, ...]) -> str:
    return " | ".join(values)


class TableOrJson(str, Enum):
    table = "table"
    json = "json"


T = TypeVar("T")

BLOCK_PANEL = "Block"
MODEL_PANEL = "Model"

# The kinds are written out (not read from secli.build.registry) so that building the CLI does
# not import torch; tests/test_eca.py checks that every registered kind is named here.
BLOCK_HELP = "se | sk | eca | none (none: analyse the SE modules a network already has)."
Block = Annotated[Optional[str], typer.Option("--block", help=BLOCK_HELP, rich_help_panel=BLOCK_PANEL, show_default="se")]
Ratio = Annotated[Optional[int], typer.Option("--ratio", "-r", help="Reduction ratio r (hidden width C // r).", rich_help_panel=BLOCK_PANEL, show_default="16")]
MinHidden = Annotated[Optional[int], typer.Option("--min-hidden", help="Floor on the hidden width (SK's L).", rich_help_panel=BLOCK_PANEL, show_default="SE 1, SK 32")]
Position = Annotated[Optional[str], typer.Option("--position", help=f"SE/ECA position: {_choices(POSITIONS)} (residual networks).", rich_help_panel=BLOCK_PANEL, show_default="standard")]
Stages = Annotated[Optional[str], typer.Option("--stages", help="Comma list of stages in the paper's numbering (ResNet: 2..5), one set: 3,4 = stages 3 and 4.", rich_help_panel=BLOCK_PANEL, show_default="all", metavar="<3,4>")]
Squeeze = Annotated[Optional[str], typer.Option("--squeeze", help=f"SE squeeze: {_choices(SQUEEZES)} (Table 11, Table 16).", rich_help_panel=BLOCK_PANEL, show_default="avg")]
Gate = Annotated[Optional[str], typer.Option("--gate", help=f"SE gate: {_choices(GATES)} (Table 12).", rich_help_panel=BLOCK_PANEL, show_default="sigmoid")]
Bias = Annotated[Optional[bool], typer.Option("--bias/--no-bias", help="FC biases (on in the released models; off in the paper's ablations).", rich_help_panel=BLOCK_PANEL, show_default="--bias")]
Init = Annotated[Optional[str], typer.Option("--init", help=f"SE gate init: {_choices(INITS)} (block starts as ~identity, for fine-tuning pretrained nets).", rich_help_panel=BLOCK_PANEL, show_default="default")]
Paths = Annotated[Optional[int], typer.Option("--paths", help="SK paths M (path m: 3x3 conv, dilation m).", rich_help_panel=BLOCK_PANEL, show_default="2")]
Groups = Annotated[Optional[int], typer.Option("--groups", help="SK groups G.", rich_help_panel=BLOCK_PANEL, show_default="32")]
KernelSize = Annotated[Optional[int], typer.Option("--kernel-size", help="ECA 1-D kernel size k (odd).", rich_help_panel=BLOCK_PANEL, show_default="adaptive k from C")]
Impl = Annotated[Optional[str], typer.Option("--impl", help=f"SE/SK implementation: {_choices(IMPLS)} (same parameters and checkpoints; fused: fewer passes over memory in training).", rich_help_panel=BLOCK_PANEL, show_default="fused")]
Weights = Annotated[Optional[str], typer.Option("--weights", help="Base weights: a local state-dict file, or a torchvision name such as IMAGENET1K_V2 (downloads).", rich_help_panel=MODEL_PANEL)]
NumClasses = Annotated[Optional[int], typer.Option("--num-classes", help="Classifier width.", rich_help_panel=MODEL_PANEL, show_default="1000, or the weights' own")]
SpecFile = Annotated[Optional[Path], typer.Option("--spec", help="Read the model spec from a YAML file; options given here override it.", rich_help_panel=MODEL_PANEL)]
Force = Annotated[bool, typer.Option("--force", help="Overwrite existing output files.")]

# ------------------------------------------------------------------ one name per concept (issue 13)

#: ``--format/-f``: every command prints table | json | csv | markdown.
Format = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format (json: the results envelope).")]
#: The square input side in px, one spelling everywhere: ``--image-size``.
ImageSize = Annotated[Optional[int], typer.Option("--image-size", help="Square input side in px.", show_default="the architecture's (224; Inception v3 299)", metavar="<px>")]
#: ``--input-size``: the old spelling of ``--image-size``, accepted for one release, not shown.
InputSizeAlias = Annotated[Optional[int], typer.Option("--input-size", hidden=True)]
#: One device option: spelled and resolved alike in every command (``secli.util.device``).
Device = Annotated[str, typer.Option("--device", help="auto | cpu | cuda | cuda:N (auto: CUDA when present).", metavar="<device>")]


#: ``--stages`` where it is one set (inject, train): repeating it is refused, not "last one wins".
StagesSet = Annotated[Optional[list[str]], typer.Option("--stages", help="Comma list of stages in the paper's numbering (ResNet: 2..5), one set: 3,4 = stages 3 and 4.", rich_help_panel=BLOCK_PANEL, show_default="all", metavar="<3,4>")]


def one_set(stages: list[str] | None) -> str | None:
    """The one ``--stages`` value of a command that takes one set (only complexity sweeps sets)."""
    if not stages:
        return None
    if len(stages) > 1:
        raise SecliUsageError("--stages is one comma list here (--stages 3,4); only complexity takes it repeated, one row per set")
    return stages[0]


def pick(new_name: str, new: T | None, old_name: str, old: T | None) -> T | None:
    """The value of an option given under its new name or its old (hidden) one, never both.

    Why refuse both: two values for one setting is a typo whichever wins.
    """
    if new is not None and old is not None:
        raise SecliUsageError(f"{old_name} is the old spelling of {new_name}; give {new_name} only")
    return new if new is not None else old


def refuse(reason: str, **given: Any) -> None:
    """Raise a usage error naming the first option in ``given`` that was set (not None/False/empty).

    Why: an option that does not apply and is silently ignored makes a user believe it took effect.
    ``reason`` completes "--NAME does not apply ...", e.g. "with --list".
    """
    for name, value in given.items():
        if value is not None and value is not False and value != [] and value != ():
            raise SecliUsageError(f"--{name.replace('_', '-')} does not apply {reason}")
