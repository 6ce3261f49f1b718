"""Block options as a caller gives them, laid over a spec: one convention for every command.

Every library function that builds a network takes its block the same way: ``block`` (a kind
such as ``"se"``, or a whole ``BlockSpec``) and the other options as keywords named like the
``BlockSpec`` fields (``ratio=8``, ``stages="3,4"``). Options are collected here, by those names,
so a kind's new option is one ``BlockSpec`` field and needs no change in any signature.

An option given is a request: it overrides the spec file's value, and one the kind does not take
is refused even when it equals the default (``--block se --paths 2``), because a spec file holds
every field and can only be refused for values away from the default (``BlockSpec``'s own check).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secli.blocks.registry import KIND_OPTIONS, NO_BLOCK, get_kind, kind_names
from secli.blocks.spec import BlockSpec, ModelSpec, does_not_apply, load_spec_yaml
from secli.util.errors import SecliUsageError, did_you_mean
from secli.util.number_lists import parse_int_list

#: The options a caller may name: every BlockSpec field, with ``block`` the spelling of ``kind``.
OPTION_NAMES: tuple[str, ...] = tuple("block" if f.name == "kind" else f.name for f in dataclasses.fields(BlockSpec))


@dataclass(frozen=True)
class BlockOptions:
    """The block options a caller set, keyed by ``BlockSpec`` field names (``kind`` for the kind);
    an option left out (or None) was not given."""

    values: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, block: str | None = None, **options: Any) -> BlockOptions:
        """Options as the commands and the API name them: ``block`` and the other BlockSpec fields.

        ``stages`` may be "2,3", 3 or [2, 3]. An unknown name is refused with the closest ones.
        """
        unknown = [name for name in options if name not in OPTION_NAMES]
        if unknown:
            raise SecliUsageError(f"unknown block option {unknown[0]!r}",
                                  hint=did_you_mean(unknown[0], list(OPTION_NAMES)))
        given = {key: value for key, value in options.items() if value is not None}
        if block is not None:
            given["kind"] = block
        if "stages" in given:
            given["stages"] = parse_int_list(given["stages"], "--stages")
        return cls(given)

    @property
    def kind(self) -> str | None:
        return self.values.get("kind")

    def named(self) -> list[str]:
        """The options given other than the kind, as the command line spells them (``min_hidden``)."""
        return [name for name in self.values if name != "kind"]

    def apply(self, base: BlockSpec | None, default_kind: str = "se") -> BlockSpec:
        """These options over ``base`` (a spec file's block), or over ``default_kind``'s defaults."""
        fields = dict(base.__dict__) if base is not None else {"kind": default_kind}
        fields.update(self.values)
        block = BlockSpec(**fields)
        refuse_given_options(block.kind, self.values)
        return block


def refuse_given_options(kind_name: str, given: Iterable[str]) -> None:
    """Refuse any option in ``given`` (BlockSpec field names the caller set) that the kind does
    not take, whatever its value. ``none`` (the network's own modules) is left to the commands,
    which refuse every option there."""
    if kind_name == NO_BLOCK:
        return
    options = get_kind(kind_name).options
    for name in given:
        if name in KIND_OPTIONS and name not in options:
            raise does_not_apply(kind_name, name)


def resolve_model_spec(
    arch: str | None,
    spec: ModelSpec | str | Path | None,
    weights: str | None,
    num_classes: int | None,
    block: str | BlockSpec | BlockOptions | None = None,
    default_kind: str = "se",
    **options: Any,
) -> ModelSpec:
    """A ModelSpec from ``spec`` (a ModelSpec or a YAML file), overlaid with what is given here.

    ``block``: a kind name (with ``options`` over the spec's block), a ``BlockSpec`` (used as it
    is; no options beside it) or ``BlockOptions``. Without a spec the block is ``default_kind``'s
    defaults with the options over them.
    """
    base = spec if isinstance(spec, ModelSpec) or spec is None else load_spec_yaml(spec)
    if arch is None and base is None:
        raise SecliUsageError("name an architecture (e.g. resnet50) or pass --spec FILE.yaml")
    if isinstance(block, BlockSpec):
        if any(value is not None for value in options.values()):
            raise SecliUsageError("give a BlockSpec or block options, not both")
        chosen = block
    else:
        given = block if isinstance(block, BlockOptions) else BlockOptions.of(block, **options)
        chosen = given.apply(base.block if base else None, default_kind)
    return ModelSpec(
        arch=arch or base.arch,  # type: ignore[union-attr]
        block=chosen,
        weights=weights if weights is not None else (base.weights if base else None),
        num_classes=num_classes if num_classes is not None else (base.num_classes if base else None),
    )


def optional_block(block: BlockSpec | str | None, options: Mapping[str, Any]) -> BlockSpec | None:
    """The block an analysis injects into an architecture, for commands where none may be given
    (a checkpoint, or a network analysed as built): ``block`` as it is, or a kind with ``options``
    over its defaults. Options without a kind name the kinds that take them."""
    given = {k: v for k, v in options.items() if v is not None}
    if block is None or isinstance(block, BlockSpec) or block == NO_BLOCK:
        if given:
            name = next(iter(given))
            kinds = [kind for kind in kind_names() if name in get_kind(kind).options] or list(kind_names())
            raise SecliUsageError(f"--{name.replace('_', '-')} is a block option; add --block {' or '.join(kinds)} "
                                  "to inject blocks into an architecture")
        return block if isinstance(block, BlockSpec) else (None if block is None else BlockSpec(kind=NO_BLOCK))
    return BlockOptions.of(block, **given).apply(None)
