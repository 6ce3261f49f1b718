"""The block variants a complexity or profile run compares, from the options a caller gave.

One rule for both commands (they used to differ): ``block`` is a kind or a comma list of kinds
(``se,eca,sk``), each compared on its own; ``ratios``, ``positions`` and the options a sweep
takes as lists (``squeeze``, ``gate``, ``paths``, ``impl``; ``stages``, each entry one set) give
one model per value, every combination for each kind; the other options set one value. With
several kinds an option goes to the kinds that take it (``--ratio`` to SE and SK,
``--kernel-size`` to ECA); one that no listed kind takes is passed on and refused. A sweep file
(``spec``) gives the architecture, rows and grid; options given here override it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from secli.blocks.options import OPTION_NAMES
from secli.blocks.registry import NO_BLOCK, BlockKind, get_kind, kind_names
from secli.blocks.spec import BlockSpec
from secli.networks.sweep import Sweep, check_sweep_size, load_sweep, override
from secli.util.bounds import BOUNDS
from secli.util.errors import SecliUsageError, did_you_mean, shorten
from secli.util.number_lists import parse_int_list, parse_str_list

#: Options that take one value per model in a sweep (a list, or a comma-separated string), by the
#: name a caller uses and the BlockSpec field it sets. ``ratio`` and ``position`` take one value;
#: their lists are spelled ``ratios`` and ``positions``.
LIST_OPTIONS: dict[str, str] = {
    "ratios": "ratio", "positions": "position", "stages": "stages", "squeeze": "squeeze", "gate": "gate",
    "paths": "paths", "impl": "impl",
}
#: Every name a sweep takes: the list options and the single-valued BlockSpec fields.
SWEEP_OPTION_NAMES: tuple[str, ...] = tuple(dict.fromkeys((*LIST_OPTIONS, *(n for n in OPTION_NAMES if n != "block"))))
_POSITIVE = ("ratio", "paths")


@dataclass(frozen=True)
class Variants:
    """What to compare: the architecture, its block variants (one model each) and the sweep file's
    other settings (title, image size, classes, the weights it names)."""

    arch: str
    blocks: list[BlockSpec]
    sweep: Sweep


def sweep_lists(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """Split ``options`` into single values and lists (keyed by BlockSpec field), checked."""
    unknown = [name for name in options if name not in SWEEP_OPTION_NAMES]
    if unknown:
        raise SecliUsageError(f"unknown block option {unknown[0]!r}",
                              hint=did_you_mean(unknown[0], list(SWEEP_OPTION_NAMES)))
    for one, many in (("ratio", "ratios"), ("position", "positions")):
        if options.get(one) is not None and options.get(many) is not None:
            raise SecliUsageError(f"give either --{one} or --{many}, not both")
    single = {k: v for k, v in options.items() if v is not None and k not in LIST_OPTIONS}
    lists: dict[str, list[Any]] = {}
    for name, field_name in LIST_OPTIONS.items():
        values = _parse_list(name, field_name, options.get(name))
        if values:
            lists[field_name] = values
    return single, lists


def _parse_list(name: str, field_name: str, value: Any) -> list[Any] | None:
    flag = f"--{name.replace('_', '-')}"
    if value is None:
        return None
    if field_name == "stages":  # one set per entry; a single string or number is one set
        if not value:
            return None
        rows: Sequence[Any] = [value] if isinstance(value, (str, int)) else value
        return [parse_int_list(row, "--stages") for row in rows]
    if field_name in _POSITIVE:
        numbers = parse_int_list(value, flag)
        if numbers is None:
            return None
        row = BOUNDS[field_name]
        for number in numbers:
            if not row.low <= number <= row.high:
                raise SecliUsageError(f"{flag} must be whole numbers >= 1 and <= {row.high:,} ({row.why}), "
                                      f"got {shorten(str(number), 40)} in {shorten(repr(value))}")
        return list(numbers)
    return parse_str_list(value)


def block_variants(
    arch: str | None,
    block: str | Sequence[str] | None,
    spec: str | Path | None,
    options: dict[str, Any],
    allow_none: bool = False,
) -> Variants | None:
    """The variants to compare, or None when neither a kind nor a sweep file was given (the
    models are then compared as named; any option given is refused, since it has no model)."""
    single, lists = sweep_lists(options)
    kinds = parse_str_list(block) or []
    if spec is None and not kinds:
        given = [*single, *lists]
        if given:
            option = "--" + given[0].replace("_", "-")
            raise SecliUsageError(f"{option} needs --block {' or '.join(kind_names())} (one model per variant)")
        return None
    if NO_BLOCK in kinds and not (allow_none and kinds == [NO_BLOCK]):
        raise SecliUsageError(f"--block must be {', '.join(kind_names())} or a comma list such as se,sk, "
                              f"got {','.join(kinds)!r}")
    entries = [get_kind(kind) for kind in kinds if kind != NO_BLOCK]  # refuses unknown kinds

    def takes(kind: BlockKind | None, option: str) -> bool:
        return (kind is None or option == "stages" or option in kind.options
                or not any(option in e.options for e in entries))

    base = load_sweep(spec) if spec is not None else Sweep(arch=arch or "")
    blocks: list[BlockSpec] = []
    each: list[BlockKind | None] = list(entries) or [None]  # None: the spec file's own kinds (or none)
    for kind in each:
        name = kind.name if kind else (NO_BLOCK if kinds == [NO_BLOCK] else None)
        own_single = {k: v for k, v in single.items() if takes(kind, k)}
        own_lists = {k: v for k, v in lists.items() if takes(kind, k)}
        swept = override(base, arch=arch, single={"kind": name, **own_single}, lists=own_lists)
        blocks += swept.blocks()
    check_sweep_size(len(blocks))  # each kind's sweep was counted; so are they all
    return Variants(arch=arch or base.arch, blocks=blocks, sweep=base)


def variant_labels(arch: str, blocks: Sequence[BlockSpec]) -> list[str]:
    """The row labels of ``arch`` with each of ``blocks``, one scheme for complexity, profile and
    report: ``resnet18 + SE`` while every variant has its kind's defaults, else each block's full
    label (``resnet18 + SE r=8 standard``), so that a sweep's rows can be told apart. The
    implementation is added (``(eager)``) when it is not the default or variants of one kind
    differ in it. ``none`` (the network as built, with its own SE modules if any) is ``arch``."""
    default_impl = BlockSpec().impl
    plain = [dataclasses.replace(b, impl=default_impl) for b in blocks]
    short = all(p == BlockSpec(kind=p.kind) for p in plain)
    labels = []
    for block, bare in zip(blocks, plain, strict=True):
        if block.kind == NO_BLOCK:
            labels.append(arch)
            continue
        label = f"{arch} + {bare.label().split()[0] if short else bare.label()}"
        if block.impl != default_impl or len({b.impl for b in blocks if b.kind == block.kind}) > 1:
            label += f" ({block.impl})"
        labels.append(label)
    return labels


def stripped_label(arch: str) -> str:
    """The label of ``arch`` with its own SE modules replaced by identities (the baseline that
    ``--block none`` compares the network as built with)."""
    return f"{arch} without its SE"
