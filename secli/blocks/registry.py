"""The block kinds secli can inject: one registered entry per kind.

This is timm's ``create_attn`` idea with the metadata the rest of secli needs, so that no
other module switches on kind names: ``inject`` asks an entry how to build a block and which
sites it takes, ``sites`` asks for the name prefix, ``spec`` for the options a kind accepts and
its defaults, ``complexity`` for the closed-form parameter count, ``excitation`` for the gate
submodule and the number of paths. Adding a kind is one block module that calls ``register``
(plus its import in ``secli/blocks/__init__.py``).

``"none"`` is not a kind: it means "analyse the SE modules a network already has" and is
handled by ``inject`` itself (see ``NO_BLOCK``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from secli.util.errors import SecliUsageError, did_you_mean

if TYPE_CHECKING:
    from torch import nn

    from secli.blocks.spec import BlockSpec

#: The special ``--block`` value for networks analysed as built (their own SE modules).
NO_BLOCK = "none"

#: BlockSpec fields that belong to some kinds and not others. ``kind`` and ``stages`` apply to
#: every kind; a kind lists in ``BlockKind.options`` the ones it takes, and BlockSpec refuses
#: the others when they are set to anything but their default.
KIND_OPTIONS = (
    "ratio", "min_hidden", "position", "squeeze", "gate", "bias", "init", "paths", "groups", "kernel_size", "impl",
    "extent", "frequencies",
)

TargetKind = Literal["output", "conv3x3"]


@dataclass(frozen=True)
class SiteShape:
    """What a kind's ``build`` knows of the place its block goes: the channels there and, for a
    block that replaces a convolution (SK), that convolution's input width and stride. Networks
    say where sites are (``secli.networks``); blocks only need their shape."""

    channels: int
    in_channels: int | None = None
    stride: int = 1


@dataclass(frozen=True)
class BlockKind:
    """Everything secli needs to know about one kind of block.

    ``build(spec, site)`` makes the block for one site of shape ``site``. ``targets`` says where blocks go:
    ``"output"`` after (or around) a residual branch at ``spec.position`` (the adapter's
    ``se_targets``), ``"conv3x3"`` in place of the 3x3 convolutions (``sk_targets``).
    ``gate`` is the name of the submodule whose output is the excitation, hooked by analysis;
    ``paths_attr`` names the block attribute holding the number of paths that share one gate
    output (SK's M), None for one. ``params(channels, hidden, spec)`` is the closed-form
    parameter count of one site, or None where there is no simple one. ``check(spec)`` adds
    kind-specific validation; ``refusals`` gives the reason an option does not apply, for the
    error message. ``describe(spec)`` gives the label words after the prefix (``r=16 standard``).
    ``gate_note`` says, for a gate that is not one value per channel (CBAM's spatial gate,
    Coordinate attention's H and W gates, SimAM's per-position gate, GC's added term), what
    ``visualize-excitation`` reports of it and what it leaves out; it goes into the results' notes.
    """

    name: str
    prefix: str
    label: str
    build: Callable[[BlockSpec, SiteShape], nn.Module]
    gate: str
    options: tuple[str, ...]
    targets: TargetKind = "output"
    params: Callable[[int, int | None, BlockSpec], int] | None = None
    params_formula: str | None = None  # the closed form in words, for reports ("k per site")
    default_min_hidden: int | None = None
    paths_attr: str | None = None
    describe: Callable[[BlockSpec], list[str]] | None = None
    check: Callable[[BlockSpec], None] | None = None
    refusals: Mapping[str, str] = field(default_factory=dict)
    help: str = ""
    gate_note: str = ""

    def __post_init__(self) -> None:
        unknown = [o for o in self.options if o not in KIND_OPTIONS]
        if unknown:
            raise ValueError(f"block kind {self.name!r}: unknown option {unknown[0]!r}; options are "
                             f"{', '.join(KIND_OPTIONS)}")
        if self.targets not in ("output", "conv3x3"):
            raise ValueError(f"block kind {self.name!r}: targets must be 'output' or 'conv3x3', got {self.targets!r}")


_KINDS: dict[str, BlockKind] = {}


def register(kind: BlockKind, replace: bool = False) -> BlockKind:
    """Add ``kind`` to the registry (block modules call this when imported).

    Registering a name twice is a programming error unless ``replace`` is given, so two
    modules cannot silently fight over one name.
    """
    if kind.name == NO_BLOCK:
        raise ValueError(f"{NO_BLOCK!r} is reserved for networks analysed as built")
    if kind.name in _KINDS and not replace and _KINDS[kind.name] is not kind:
        raise ValueError(f"block kind {kind.name!r} is already registered")
    _KINDS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    """Remove a kind (for tests that register a toy kind)."""
    _KINDS.pop(name, None)


def kind_names() -> tuple[str, ...]:
    """Registered kinds in registration order (se, sk, eca, then any added later)."""
    return tuple(_KINDS)


def find_kind(name: str) -> BlockKind | None:
    """The entry for ``name``, or None (for site kinds such as ``native-se`` that have none)."""
    return _KINDS.get(name)


def get_kind(name: str) -> BlockKind:
    """The entry for ``name``; the one place an unknown kind is refused."""
    kind = find_kind(name)
    if kind is None:
        choices = [*kind_names(), NO_BLOCK]
        hint = did_you_mean(str(name), choices)
        raise SecliUsageError(f"unknown block {name!r}; choose one of: {', '.join(choices)}", hint=hint)
    return kind
