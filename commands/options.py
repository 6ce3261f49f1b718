"""Reusable option declarations, so every command spells one concept one way.

Block options default to None so that a value given on the command line can override the
same key read from a ``--spec`` YAML file, and unset ones fall back to the paper's defaults;
``show_default`` text says in the help what that effective default is. Old spellings stay
accepted for one release as hidden aliases (``InputSizeAlias``); ``pick`` merges the two.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer

from secli.util.bounds import bound_help as _range
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

# The kinds are written out (not read from secli.blocks.registry) so that building the CLI does
# not import torch; tests/test_eca.py checks that every registered kind is named here.
BLOCK_HELP = ("se | sk | eca | cbam | cbam-channel | gc | coord | simam | ge | ge-plus | fca | srm | gct | none "
              "(none: analyse the SE modules a network already has; the kinds: docs/inject.md).")
SWEEP_PANEL = "Sweep (one model per value)"
Block = Annotated[Optional[str], typer.Option("--block", help=BLOCK_HELP, rich_help_panel=BLOCK_PANEL, show_default="se")]
Ratio = Annotated[Optional[int], typer.Option("--ratio", "-r", help=f"Reduction ratio r (hidden width C // r) {_range('ratio')}.", rich_help_panel=BLOCK_PANEL, show_default="16")]
MinHidden = Annotated[Optional[int], typer.Option("--min-hidden", help=f"Floor on the hidden width (SK's L) {_range('min_hidden')}.", rich_help_panel=BLOCK_PANEL, show_default="SE 1, SK 32")]
Position = Annotated[Optional[str], typer.Option("--position", help=f"SE/ECA position: {_choices(POSITIONS)} (residual networks).", rich_help_panel=BLOCK_PANEL, show_default="standard")]
Squeeze = Annotated[Optional[str], typer.Option("--squeeze", help=f"SE squeeze: {_choices(SQUEEZES)} (Table 11, Table 16).", rich_help_panel=BLOCK_PANEL, show_default="avg")]
Gate = Annotated[Optional[str], typer.Option("--gate", help=f"SE gate: {_choices(GATES)} (Table 12).", rich_help_panel=BLOCK_PANEL, show_default="sigmoid")]
Bias = Annotated[Optional[bool], typer.Option("--bias/--no-bias", help="FC biases (on in the released models; off in the paper's ablations).", rich_help_panel=BLOCK_PANEL, show_default="--bias")]
Init = Annotated[Optional[str], typer.Option("--init", help=f"SE gate init: {_choices(INITS)} (block starts as ~identity, for fine-tuning pretrained nets).", rich_help_panel=BLOCK_PANEL, show_default="default")]
Paths = Annotated[Optional[int], typer.Option("--paths", help=f"SK paths M (path m: 3x3 conv, dilation m) {_range('paths')}.", rich_help_panel=BLOCK_PANEL, show_default="2")]
Groups = Annotated[Optional[int], typer.Option("--groups", help=f"SK groups G {_range('groups')}.", rich_help_panel=BLOCK_PANEL, show_default="32")]
KernelSize = Annotated[Optional[int], typer.Option("--kernel-size", help=f"ECA 1-D kernel size k (odd); CBAM spatial kernel (odd) {_range('kernel_size')}.", rich_help_panel=BLOCK_PANEL, show_default="ECA adaptive k from C, CBAM 7")]
Impl = Annotated[Optional[str], typer.Option("--impl", help=f"SE/SK implementation: {_choices(IMPLS)} (same parameters and checkpoints; fused: fewer passes over memory in training).", rich_help_panel=BLOCK_PANEL, show_default="fused")]
_MODELS = _range("sweep_models").strip("()").split(" to ")[1]  # the most models one sweep builds
At = Annotated[Optional[str], typer.Option("--at", help="Put a block after each module whose path matches: glob patterns, comma separated ('layer*.*.bn3', 'stages.*.blocks.*'; * stays within one part of the path, ** spans parts). SK: the 3x3 convolutions it replaces. See docs/networks.md.", rich_help_panel=BLOCK_PANEL, show_default="the adapter's positions, else found by structure", metavar="<pattern,...>")]
#: ``--stages`` where it is one set (inject, train, export, visualize-excitation): a repeat is refused.
StagesSet = Annotated[Optional[list[str]], typer.Option("--stages", help="Comma list of stages in the paper's numbering (ResNet: 2..5), one set: 3,4 = stages 3 and 4.", rich_help_panel=BLOCK_PANEL, show_default="all", metavar="<3,4>")]

# -- the same options where a sweep takes a comma list, one model per value (complexity, profile)
BlockList = Annotated[Optional[str], typer.Option("--block", help="A kind (se | sk | eca | cbam | cbam-channel | gc | coord | simam | ge | ge-plus | fca | srm | gct), or a comma list such as se,eca,sk (one model each).", rich_help_panel=BLOCK_PANEL, show_default="se")]
OneRatio = Annotated[Optional[str], typer.Option("--ratio", "-r", metavar="<r>", help=f"Reduction ratio r (hidden width C // r) {_range('ratio')}. For one model per ratio: --ratios.", rich_help_panel=BLOCK_PANEL, show_default="16")]
OnePosition = Annotated[Optional[str], typer.Option("--position", help=f"SE/ECA position: {_choices(POSITIONS)}. For one model per position: --positions.", rich_help_panel=BLOCK_PANEL, show_default="standard")]
Ratios = Annotated[Optional[str], typer.Option("--ratios", help=f"Comma list of ratios, one model each (Table 10: 2,4,8,16,32); each {_range('ratio')[1:-1]}, at most {_MODELS} models a run.", rich_help_panel=SWEEP_PANEL, metavar="<2,4,8>")]
Positions = Annotated[Optional[str], typer.Option("--positions", help=f"Comma list of SE/ECA positions, one model each ({','.join(POSITIONS)}).", rich_help_panel=SWEEP_PANEL, metavar="<a,b>")]
StagesRows = Annotated[Optional[list[str]], typer.Option("--stages", help=f"A comma list is one set of stages (paper numbering, ResNet 2..5): --stages 3,4 is one model with both; repeat --stages for one model per set (at most {_MODELS} models a run).", rich_help_panel=SWEEP_PANEL, metavar="<3,4>", show_default="all")]
SqueezeList = Annotated[Optional[str], typer.Option("--squeeze", help=f"SE squeeze: {_choices(SQUEEZES)}; a comma list gives one model each.", rich_help_panel=SWEEP_PANEL, show_default="avg")]
GateList = Annotated[Optional[str], typer.Option("--gate", help=f"SE gate: {_choices(GATES)}; a comma list gives one model each.", rich_help_panel=SWEEP_PANEL, show_default="sigmoid")]
PathsList = Annotated[Optional[str], typer.Option("--paths", help=f"SK paths M {_range('paths')}; a comma list gives one model each (K3+K5+K7: 3).", rich_help_panel=SWEEP_PANEL, show_default="2")]
ImplList = Annotated[Optional[str], typer.Option("--impl", help=f"SE/SK implementation: {_choices(IMPLS)}; a comma list (eager,fused) gives one model each.", rich_help_panel=SWEEP_PANEL, show_default="fused")]


@dataclass(frozen=True)
class BlockOption:
    """One block option, declared once for every command: the ``BlockSpec`` field (``block`` for
    the kind) and its command-line form where a command builds one model (``one``) and where a
    sweep compares several (``many``); None where that kind of command does not take it."""

    name: str
    one: Any
    many: Any


#: Every block option in the order ``--help`` shows them. A kind's new option is one more
#: ``BlockSpec`` field and one more line here.
BLOCK_OPTIONS: tuple[BlockOption, ...] = (
    BlockOption("block", Block, BlockList),
    BlockOption("ratio", Ratio, OneRatio),
    BlockOption("ratios", None, Ratios),
    BlockOption("min_hidden", MinHidden, MinHidden),
    BlockOption("position", Position, OnePosition),
    BlockOption("positions", None, Positions),
    BlockOption("stages", StagesSet, StagesRows),
    BlockOption("squeeze", Squeeze, SqueezeList),
    BlockOption("gate", Gate, GateList),
    BlockOption("bias", Bias, Bias),
    BlockOption("init", Init, None),  # the gates' starting values change no count and no timing
    BlockOption("paths", Paths, PathsList),
    BlockOption("groups", Groups, Groups),
    BlockOption("kernel_size", KernelSize, KernelSize),
    BlockOption("impl", Impl, ImplList),
    BlockOption("extent", *[Annotated[Optional[int], typer.Option("--extent", help="GE gather extent: 2, 4, 8, or 0 for the whole map.", rich_help_panel=BLOCK_PANEL, show_default="ge 0 (global), ge-plus 8")]] * 2),
    BlockOption("frequencies", *[Annotated[Optional[int], typer.Option("--frequencies", help="FcaNet DCT frequencies, the paper's top-k: 1, 2, 4, 8, 16 or 32.", rich_help_panel=BLOCK_PANEL, show_default="16")]] * 2),
    BlockOption("at", At, At),  # where blocks go by module path, for any network (one set, also in a sweep)
)


@dataclass(frozen=True)
class BlockArgs:
    """The block options of one command line, as typed (None: not given)."""

    values: dict[str, Any]
    sweep: bool = False

    @property
    def kind(self) -> str | None:
        return self.values.get("block")

    def options(self) -> dict[str, Any]:
        """The options given, other than ``--block``, ready for the library (``secli.blocks.options``):
        ``--stages`` as its one set (or, in a sweep, its list of sets), ``--ratio`` as a number."""
        given = {k: v for k, v in self.values.items() if k != "block" and v is not None and v != []}
        if "stages" in given and not self.sweep:
            given["stages"] = one_set(given["stages"])
        if self.sweep:
            if "ratio" in given:
                given["ratio"] = _one_number(given["ratio"], "--ratio", "--ratios")
            if "position" in given and "," in given["position"]:
                raise SecliUsageError(f"--position takes one position, got {given['position']!r}; "
                                      f"for one model per position use --positions {given['position']}")
        return given

    def refuse(self, reason: str) -> None:
        """Refuse every block option given (not ``--block`` itself): ``reason`` as for ``refuse``."""
        refuse(reason, **{k: v for k, v in self.values.items() if k != "block"})


#: The default of a command's ``blocks`` parameter, which ``block_options`` replaces.
BLOCKS = BlockArgs({})
F = TypeVar("F", bound=Callable[..., Any])


def block_options(*, sweep: bool = False) -> Callable[[F], F]:
    """Give a command every block option, in place of its ``blocks: BlockArgs`` parameter.

    Typer reads a command's options from its signature, so the decorated function shows Typer a
    signature with one parameter per ``BLOCK_OPTIONS`` entry and receives them gathered in one
    ``BlockArgs``. ``sweep``: the forms of complexity and profile (comma lists, ``--ratios``...).
    """

    def decorate(func: F) -> F:
        signature = inspect.signature(func, eval_str=True)
        params = list(signature.parameters.values())
        at = [p.name for p in params].index("blocks")
        declared = [(o.name, o.many if sweep else o.one) for o in BLOCK_OPTIONS]
        added = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=kind)
                 for name, kind in declared if kind is not None]
        new = [*params[:at], *added, *params[at + 1:]]
        names = [p.name for p in added]

        @functools.wraps(func)
        def command(*args: Any, **kwargs: Any) -> Any:
            values = {name: kwargs.pop(name, None) for name in names}
            return func(*args, blocks=BlockArgs(values, sweep=sweep), **kwargs)

        command.__signature__ = signature.replace(parameters=new)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in new}
        return command  # type: ignore[return-value]

    return decorate


def _one_number(value: str, option: str, plural: str) -> int:
    """``--ratio 8,16`` is a sweep asked for under the single option's name: say which one sweeps."""
    if "," in value:
        raise SecliUsageError(f"{option} takes one number, got {value!r}; for one model per value use {plural} {value}")
    try:
        return int(value)
    except ValueError:
        raise SecliUsageError(f"{option} must be a whole number, got {value[:100]!r}") from None


Weights = Annotated[Optional[str], typer.Option("--weights", help="Base weights: a local state-dict file, or a torchvision name such as IMAGENET1K_V2 (downloads).", rich_help_panel=MODEL_PANEL)]
NumClasses = Annotated[Optional[int], typer.Option("--num-classes", help=f"Classifier width {_range('num_classes')}.", rich_help_panel=MODEL_PANEL, show_default="1000, or the weights' own")]
ModelKwargs = Annotated[Optional[str], typer.Option("--model-kwargs", help="Keyword arguments for the model's builder (a factory file.py:build, a timm or torchvision name): key=value,... (values read as YAML) or a YAML file.", rich_help_panel=MODEL_PANEL, metavar="<k=v,...|FILE.yaml>")]
TrustCode = Annotated[bool, typer.Option("--trust-code", help="Allow a checkpoint made from your own factory (file.py:build) to import and run that code again. Never needed for code you name on the command line.", rich_help_panel=MODEL_PANEL)]
SpecFile = Annotated[Optional[Path], typer.Option("--spec", help="Read the model spec from a YAML file; options given here override it.", rich_help_panel=MODEL_PANEL)]
Roofline = Annotated[Optional[str], typer.Option("--roofline", metavar="DEVICE", help="Predict each model's time from its FLOPs and bytes on DEVICE: h100, h100-pcie, h200, a100, a100-40gb, l4, l40s, v100, t4, rtx4090, rtx3090, rtx5090, cpu (measured now) or a device YAML file.", show_default=False)]
Force = Annotated[bool, typer.Option("--force", help="Overwrite existing output files.")]

# ------------------------------------------------------------------ one name per concept (issue 13)

#: ``--format/-f``: every command prints table | json | csv | markdown.
Format = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format (json: the results envelope).")]
#: The square input side in px, one spelling everywhere: ``--image-size``.
ImageSize = Annotated[Optional[int], typer.Option("--image-size", help=f"Square input side in px {_range('image_size')}.", show_default="the architecture's (224; Inception v3 299)", metavar="<px>")]
#: ``--input-size``: the old spelling of ``--image-size``, accepted for one release, not shown.
InputSizeAlias = Annotated[Optional[int], typer.Option("--input-size", hidden=True)]
#: One device option: spelled and resolved alike in every command (``secli.util.device``).
Device = Annotated[str, typer.Option("--device", help="auto | cpu | cuda | cuda:N (auto: CUDA when present).", metavar="<device>")]



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
