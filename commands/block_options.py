"""The block options (``--block``, ``--ratio``, ``--paths``...), declared once for every command.

Block options default to None so that a value given on the command line can override the
same key read from a ``--spec`` YAML file, and unset ones fall back to the paper's defaults;
``show_default`` text says in the help what that effective default is. A command takes them
all with ``@block_options()`` (``sweep=True``: the comma-list forms of complexity and profile)
and receives them gathered in one ``blocks: BlockArgs``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Optional, TypeVar

import typer

from commands.options import BLOCK_HELP, BLOCK_PANEL, INT, KINDS, SWEEP_PANEL, one_set, refuse
from secli.util.bounds import bound_help as _range
from secli.util.errors import SecliUsageError
from secli.util.vocabulary import GATES, IMPLS, INITS, POSITIONS, SQUEEZES

F = TypeVar("F", bound=Callable[..., Any])
_MODELS = _range("sweep_models").strip("()").split(" to ")[1]  # the most models one sweep builds
_EACH = "; a comma list gives one model each"


def _choices(values: tuple[str, ...]) -> str:
    return " | ".join(values)


def _block(name: str, metavar: str, help: str, default: str, *, short: str = "", kind: Any = Optional[str]) -> Any:
    """One block option's declaration: in the Block panel, with the default it takes when unset."""
    names = [name, short] if short else [name]
    return Annotated[kind, typer.Option(*names, metavar=metavar, help=help, rich_help_panel=BLOCK_PANEL,
                                        show_default=default)]


# -- the form of inject, train, export and visualize-excitation: one model
Block = _block("--block", "<kind>", BLOCK_HELP, "se")
Ratio = _block("--ratio", INT, f"Reduction ratio r (hidden width C // r) {_range('ratio')}.", "16", short="-r",
               kind=Optional[int])
MinHidden = _block("--min-hidden", INT, f"Floor on the hidden width (SK's L) {_range('min_hidden')}.", "SE 1, SK 32",
                   kind=Optional[int])
Position = _block("--position", "<position>", f"SE/ECA position: {_choices(POSITIONS)} (residual networks).",
                  "standard")
Squeeze = _block("--squeeze", "<squeeze>", f"SE squeeze: {_choices(SQUEEZES)} (Table 11, Table 16).", "avg")
Gate = _block("--gate", "<gate>", f"SE gate: {_choices(GATES)} (Table 12).", "sigmoid")
Bias = Annotated[Optional[bool], typer.Option(
    "--bias/--no-bias", rich_help_panel=BLOCK_PANEL, show_default="--bias",
    help="FC biases (on in the released models; off in the paper's ablations).",
)]
Init = _block("--init", "<init>", f"SE gate init: {_choices(INITS)} (identity: the block starts as ~identity, for "
              "fine-tuning pretrained nets).", "default")
Paths = _block("--paths", INT, f"SK paths M (path m: 3x3 conv, dilation m) {_range('paths')}.", "2",
               kind=Optional[int])
Groups = _block("--groups", INT, f"SK groups G {_range('groups')}.", "32", kind=Optional[int])
KernelSize = _block("--kernel-size", INT, "ECA 1-D kernel size k (odd); CBAM spatial kernel (odd) "
                    f"{_range('kernel_size')}.", "ECA adaptive k from C, CBAM 7", kind=Optional[int])
Impl = _block("--impl", "<impl>", f"SE/SK implementation: {_choices(IMPLS)} (same parameters and checkpoints; "
              "fused: fewer passes over memory in training).", "fused")
Extent = _block("--extent", INT, f"GE gather extent: 0 (the whole map), 2, 4 or 8 {_range('extent')}.",
                "ge 0, ge-plus 8", kind=Optional[int])
Frequencies = _block("--frequencies", INT, "FcaNet DCT frequencies, the paper's top-k: 1, 2, 4, 8, 16 or 32 "
                     f"{_range('frequencies')}.", "16", kind=Optional[int])
At = _block("--at", "<pattern,...>", "Put a block after each module whose path matches: glob patterns, comma "
            "separated ('layer*.*.bn3', 'stages.*.blocks.*'; * stays within one part of the path, ** spans parts). "
            "SK: the 3x3 convolutions it replaces. See docs/networks.md.",
            "the adapter's positions, else found by structure")
#: ``--stages`` where it is one set (inject, train, export, visualize-excitation): a repeat is refused.
StagesSet = _block("--stages", "<stage,...>", "Comma list of stages in the paper's numbering (ResNet: 2..5), one "
                   "set: 3,4 = stages 3 and 4.", "all", kind=Optional[list[str]])

# -- the same options where a sweep takes a comma list, one model per value (complexity, profile)


def block_list(default: str) -> Any:
    """The sweep form of ``--block``; ``default`` says what an unset one does in this command."""
    return _block("--block", "<kind,...>", f"The kind: {_choices(KINDS)}, or a comma list such as se,eca,sk (one "
                  "model each); none: the network as built, against itself without its own attention modules.",
                  default)


BlockList = block_list("se")
OneRatio = _block("--ratio", INT, f"Reduction ratio r (hidden width C // r) {_range('ratio')}. For one model per "
                  "ratio: --ratios.", "16", short="-r")
OnePosition = _block("--position", "<position>", f"SE/ECA position: {_choices(POSITIONS)}. For one model per "
                     "position: --positions.", "standard")
StagesRows = _block("--stages", "<stage,...>", "A comma list is one set of stages (paper numbering, ResNet 2..5): "
                    "--stages 3,4 is one model with both; repeat --stages for one model per set (at most "
                    f"{_MODELS} models a run).", "all", kind=Optional[list[str]])
SqueezeList = _block("--squeeze", "<squeeze,...>", f"SE squeeze: {_choices(SQUEEZES)}{_EACH}.", "avg")
GateList = _block("--gate", "<gate,...>", f"SE gate: {_choices(GATES)}{_EACH}.", "sigmoid")
PathsList = _block("--paths", "<int,...>", f"SK paths M {_range('paths')}{_EACH} (K3+K5+K7: 3).", "2")
ImplList = _block("--impl", "<impl,...>", f"SE/SK implementation: {_choices(IMPLS)}{_EACH} (eager,fused).", "fused")
#: Only in a sweep: one model per value.
Ratios = Annotated[Optional[str], typer.Option(
    "--ratios", metavar="<int,...>", rich_help_panel=SWEEP_PANEL,
    help=f"Comma list of ratios, one model each (Table 10: 2,4,8,16,32); each {_range('ratio')[1:-1]}, at most "
         f"{_MODELS} models a run.",
)]
Positions = Annotated[Optional[str], typer.Option(
    "--positions", metavar="<position,...>", rich_help_panel=SWEEP_PANEL,
    help=f"Comma list of SE/ECA positions, one model each: {_choices(POSITIONS)}.",
)]


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
    BlockOption("extent", Extent, Extent),
    BlockOption("frequencies", Frequencies, Frequencies),
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


def block_options(*, sweep: bool = False, unset_kind: str | None = None) -> Callable[[F], F]:
    """Give a command every block option, in place of its ``blocks: BlockArgs`` parameter.

    Typer reads a command's options from its signature, so the decorated function shows Typer a
    signature with one parameter per ``BLOCK_OPTIONS`` entry and receives them gathered in one
    ``BlockArgs``. ``sweep``: the forms of complexity and profile (comma lists, ``--ratios``...).
    ``unset_kind``: what a sweep command does without ``--block``, where that is not SE (help says it).
    """

    def decorate(func: F) -> F:
        signature = inspect.signature(func, eval_str=True)
        params = list(signature.parameters.values())
        at = [p.name for p in params].index("blocks")
        declared = [(o.name, o.many if sweep else o.one) for o in BLOCK_OPTIONS]
        if unset_kind is not None:  # the first entry is --block
            declared[0] = ("block", block_list(unset_kind))
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
