"""Reusable option declarations, so every command spells one concept one way in ``--help``.

The conventions ``tests/test_help.py`` holds every command to:

- **Metavars** are lowercase words in angle brackets, as Typer writes ``<int>`` and ``<float>``:
  ``<px>`` an image side, ``<file>`` a file read or written, ``<dir>`` a folder, ``<device>``,
  ``<name|file>`` either, ``<kind>``... A value chosen from a list has a noun for its metavar and
  its choices in the help text (``a | b | c``). A comma list adds ``,...`` (``<stage,...>``), and
  the sweep form of a block option (complexity, profile) is its one-model metavar plus ``,...``.
- **Defaults** are Typer's ``[default: x]`` only, never a sentence of the help: an option whose
  value None means something says what with ``show_default="..."`` (``commands.app`` renders
  that text as it renders a real default, without parentheses). Flags show none.
- **Panels**: an option sits in the same panel in every command: Model, Block, Sweep, Input,
  Training or Timing, Analysis, Run, Output (in that order in help).

Shared options are declared here once; where a command's meaning differs only in what an unset
value means or in one more sentence, a function gives the declaration with that part filled in
(``image_size("the checkpoint's")``), and the rest (name, metavar, panel, range) stays here.
The block options are in ``commands.block_options``. Old spellings stay accepted for one release
as hidden aliases (``InputSizeAlias``); ``pick`` merges the two.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer

from secli.util.bounds import bound_help as _range
from secli.util.errors import SecliUsageError
from secli.util.vocabulary import OUTPUT_FORMATS

#: table | json | csv | markdown, from the one vocabulary module.
OutputFormat = Enum("OutputFormat", {name: name for name in OUTPUT_FORMATS}, type=str)  # type: ignore[misc]
T = TypeVar("T")

# ----------------------------------------------------------------------------- panels, in help's order
MODEL_PANEL = "Model"
BLOCK_PANEL = "Block"
SWEEP_PANEL = "Sweep (one model per value)"
INPUT_PANEL = "Input"
TRAINING_PANEL = "Training"
TIMING_PANEL = "Timing"
ANALYSIS_PANEL = "Analysis"
RUN_PANEL = "Run"
OUTPUT_PANEL = "Output"

# ----------------------------------------------------------------------------- metavars, one per concept
PX = "<px>"
FILE = "<file>"
DIR = "<dir>"
DEVICE = "<device>"
NAME_OR_FILE = "<name|file>"
NAME_OR_DIR = "<name|dir>"
INT = "<int>"  # Typer's own for int options; named here for the str options that take a number
FORMAT = "<format>"

#: Every registered block kind, written out (not read from ``secli.blocks.registry``) so that
#: building the CLI imports no torch; tests/test_eca.py and tests/test_help.py check it against
#: the registry.
KINDS = ("se", "sk", "eca", "cbam", "cbam-channel", "gc", "coord", "simam", "ge", "ge-plus", "fca", "srm", "gct")
BLOCK_HELP = (f"The kind: {' | '.join(KINDS)} | none (none: no blocks added, the network as built with any "
              "attention modules of its own). The kinds: docs/inject.md.")
#: What ``secli --help`` says secli is: the three papers' kinds by name, every other one listed.
APP_HELP = (
    "Analyse channel-attention blocks in CNNs: SE (Squeeze-and-Excitation), SK (Selective Kernel), ECA "
    f"(Efficient Channel Attention) and {len(KINDS) - 3} more attention blocks.\n\n"
    f"Every kind (--block): {', '.join(KINDS)} (docs/inject.md). "
    "Set SECLI_DEBUG=1 to see tracebacks instead of one-line errors.\n\n"
    "Example: secli complexity resnet50 --block se,eca,sk"
)

# ----------------------------------------------------------------------------- Model
#: What help shows in the type column of each positional argument, by its name (Typer would show
#: ``<str>`` and ``<list[Path]>``): the same metavars as the options'.
ARGUMENT_TYPES = {"model": NAME_OR_FILE, "arch": NAME_OR_FILE, "models": NAME_OR_FILE, "files": FILE}
_NETWORK = ("A network: a name (resnet50, convnext_tiny, timm:<name>), your factory (path/to/file.py:build or "
            "package.module:build)")


def model_argument(what_else: str, checkpoint: bool = True) -> Any:
    """The one positional MODEL every command but profile and report takes; ``what_else`` is the
    command's own last sentence."""
    network = f"{_NETWORK}, or a secli checkpoint" if checkpoint else _NETWORK
    return Annotated[Optional[str], typer.Argument(show_default=False, help=f"{network}. {what_else}".rstrip())]


Weights = Annotated[Optional[str], typer.Option(
    "--weights", metavar=NAME_OR_FILE, rich_help_panel=MODEL_PANEL,
    help="Base weights: a torchvision name such as IMAGENET1K_V2 (downloads), or a local state-dict file.",
)]
NumClasses = Annotated[Optional[int], typer.Option(
    "--num-classes", help=f"Classifier width {_range('num_classes')}.", rich_help_panel=MODEL_PANEL,
    show_default="1000, or the weights' own",
)]
ModelKwargs = Annotated[Optional[str], typer.Option(
    "--model-kwargs", metavar="<k=v,...|file>", rich_help_panel=MODEL_PANEL,
    help="Keyword arguments for the model's builder (a factory file.py:build, a timm or torchvision name): "
         "key=value,... (values read as YAML) or a YAML file.",
)]
TrustCode = Annotated[bool, typer.Option(
    "--trust-code", rich_help_panel=MODEL_PANEL,
    help="Allow a checkpoint made from your own factory (file.py:build) to import and run that code again. "
         "Never needed for code you name on the command line.",
)]


def spec_file(what: str = "a model spec") -> Any:
    """``--spec``: ``what`` the YAML file holds in this command."""
    return Annotated[Optional[Path], typer.Option(
        "--spec", metavar=FILE, rich_help_panel=MODEL_PANEL,
        help=f"Read {what} from a YAML file; options given here override it.",
    )]


SpecFile = spec_file()

# ----------------------------------------------------------------------------- Input


def image_size(default: str, note: str = "") -> Any:
    """``--image-size``: ``default`` says what an unset one is in this command, ``note`` adds a sentence."""
    return Annotated[Optional[int], typer.Option(
        "--image-size", metavar=PX, rich_help_panel=INPUT_PANEL, show_default=default,
        help=f"Square input side in px {_range('image_size')}.{note and ' ' + note}",
    )]


#: ``--input-size``: the old spelling of ``--image-size``, accepted for one release, not shown.
InputSizeAlias = Annotated[Optional[int], typer.Option("--input-size", hidden=True)]


def batch_size(note: str) -> Any:
    """``--batch-size/-b``; its default is the command's parameter default."""
    return Annotated[int, typer.Option(
        "--batch-size", "-b", rich_help_panel=INPUT_PANEL, help=f"Images per step {_range('batch_size')}; {note}.",
    )]


Data = Annotated[Optional[str], typer.Option(
    "--data", metavar=NAME_OR_DIR, rich_help_panel=INPUT_PANEL,
    help="An image folder (root/<class>/<image>), or a built-in set: synthetic | synthetic-parts (parts: the "
         "classes differ only in where their parts sit).",
)]

# ----------------------------------------------------------------------------- Analysis
Roofline = Annotated[Optional[str], typer.Option(
    "--roofline", metavar=NAME_OR_FILE, rich_help_panel=ANALYSIS_PANEL,
    help="Predict each model's time from its FLOPs and bytes on a device: h100 | h100-pcie | h200 | a100 | "
         "a100-40gb | l4 | l40s | v100 | t4 | rtx4090 | rtx3090 | rtx5090 | cpu (measured now), or a device YAML file.",
)]

# ----------------------------------------------------------------------------- Run
#: One device option: spelled and resolved alike in every command (``secli.util.device``).
Device = Annotated[str, typer.Option(
    "--device", metavar=DEVICE, rich_help_panel=RUN_PANEL,
    help="auto | cpu | cuda | cuda:N (auto: CUDA when present).",
)]
Workers = Annotated[int, typer.Option(
    "--workers", rich_help_panel=RUN_PANEL, help=f"Data loader worker processes {_range('workers')}.",
)]


def seed(what: str) -> Any:
    """``--seed``: ``what`` it seeds in this command."""
    return Annotated[int, typer.Option("--seed", rich_help_panel=RUN_PANEL, help=f"Seed of {what} {_range('seed')}.")]


def ddp(what: str) -> Any:
    """``--ddp``: ``what`` each rank does in this command."""
    return Annotated[bool, typer.Option("--ddp", rich_help_panel=RUN_PANEL, help=f"Under torchrun: {what}.")]


# ----------------------------------------------------------------------------- Output


def output_format(note: str = "json: the results envelope") -> Any:
    """``--format/-f``: every command prints table | json | csv | markdown; ``note`` says more."""
    return Annotated[OutputFormat, typer.Option(
        "--format", "-f", metavar=FORMAT, rich_help_panel=OUTPUT_PANEL,
        help=f"{' | '.join(OUTPUT_FORMATS)} ({note}).",
    )]


Format = output_format()


def out(what: str, metavar: str = FILE) -> Any:
    """``--out/-o``: ``what`` is written there (a sentence)."""
    return Annotated[Optional[Path], typer.Option("--out", "-o", metavar=metavar, rich_help_panel=OUTPUT_PANEL,
                                                  help=what)]


#: complexity's and profile's ``--out``: the results, in the format the file's extension names.
ResultsOut = out("Also write the results to this file, in the format its extension names: .json (the envelope; "
                 "'secli report FILE' shows it again), .csv or .md.")
Force = Annotated[bool, typer.Option("--force", rich_help_panel=OUTPUT_PANEL, help="Overwrite existing output files.")]


# ----------------------------------------------------------------------------- checks shared by commands


def one_set(stages: list[str] | None) -> str | None:
    """The one ``--stages`` value of a command that takes one set (only complexity sweeps sets)."""
    if not stages:
        return None
    if len(stages) > 1:
        raise SecliUsageError("--stages is one comma list here (--stages 3,4); only complexity takes it repeated, "
                              "one row per set")
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
