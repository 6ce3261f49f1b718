"""The models a profile compares, from what the user named: references as given, or one
architecture next to its injected versions (``--block se,sk``).

Labels are made unique (``#2``) because they key the report's rows and JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from secli.profiling.results import ModelEntry
from secli.util.errors import SecliUsageError
from secli.util.number_lists import parse_str_list


def load_entries(
    refs: list[str], block: str | Sequence[str] | None, impl: str | Sequence[str] | None = None, **block_options: Any
) -> tuple[list[ModelEntry], int]:
    """The entries to time, baseline first, and the first model's default input size."""
    import torch

    from secli.build.models import load_model
    from secli.build.registry import NO_BLOCK, BlockKind, get_kind, kind_names
    from secli.build.spec import BlockSpec, model_spec_from_options

    given = {k: v for k, v in block_options.items() if v is not None}
    kinds = parse_str_list(block) or []
    impls = parse_str_list(impl) or []
    if impls and not kinds:
        raise SecliUsageError("--impl needs --block se or sk (one model per implementation)")
    names = kind_names()
    if kinds and len(refs) != 1:
        raise SecliUsageError(
            "--block compares one architecture with its injected version",
            hint="to compare several models, name them all: secli profile resnet50 se_r50.pt timm:seresnet50",
        )
    if given and not kinds:
        raise SecliUsageError(f"--{next(iter(given)).replace('_', '-')} needs --block {' or '.join(names)}")
    for kind in kinds:
        if kind == NO_BLOCK:
            raise SecliUsageError(f"--block must be {', '.join(names)} or a comma list such as se,sk for profile, got {kind!r}")
    entries_of = [get_kind(kind) for kind in kinds]  # refuses unknown kinds

    def takes(entry: BlockKind, option: str) -> bool:
        return option == "stages" or option in entry.options
    torch.manual_seed(0)  # identical weights on every rank under --ddp
    loaded = []
    suffixes: list[str] = []  # " (fused)" etc. when several implementations are compared
    if kinds:
        loaded.append(load_model(refs[0], BlockSpec(kind="none")))
        if impls and not any(takes(entry, "impl") for entry in entries_of):
            raise SecliUsageError(f"--impl does not apply to {', '.join(kinds)} blocks", hint="SE and SK take --impl")
        for kind, entry in zip(kinds, entries_of, strict=True):
            # with several kinds, an option goes to the kinds that take it (--ratio: SE and SK,
            # --kernel-size: ECA); one that no listed kind takes is passed on and refused
            own = {k: v for k, v in given.items() if takes(entry, k) or not any(takes(e, k) for e in entries_of)}
            for one_impl in (impls if impls and takes(entry, "impl") else [None]):
                spec = model_spec_from_options(refs[0], None, None, None, block=kind, impl=one_impl, **own)
                loaded.append(load_model(refs[0], spec.block))
                suffixes.append(f" ({one_impl})" if one_impl is not None else "")
    else:
        loaded = [load_model(ref) for ref in refs]
    entries: list[ModelEntry] = []
    seen: dict[str, int] = {}
    for index, built in enumerate(loaded):
        short = index > 0 and kinds and not given
        label = f"{refs[0]} + {built.spec.block.label().split()[0]}" if short else built.label
        if index > 0 and kinds:
            label += suffixes[index - 1]
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            label = f"{label} #{seen[label]}"
        entries.append(ModelEntry(label, built.model, list(built.sites), built.info.min_input))
    return entries, loaded[0].info.default_input
