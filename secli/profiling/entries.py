"""The models a profile compares, from what the user named: references as given, or one
architecture next to its injected versions (``--block se,sk``).

Labels are made unique (``#2``) because they key the report's rows and JSON.
"""

from __future__ import annotations

from typing import Any, Sequence

from secli.profiling.results import ModelEntry
from secli.util.errors import SecliUsageError
from secli.util.number_lists import parse_str_list


def load_entries(refs: list[str], block: str | Sequence[str] | None, **block_options: Any) -> tuple[list[ModelEntry], int]:
    """The entries to time, baseline first, and the first model's default input size."""
    import torch

    from secli.build.models import load_model
    from secli.build.spec import BlockSpec
    from secli.build.workflow import model_spec_from_options

    given = {k: v for k, v in block_options.items() if v is not None}
    kinds = parse_str_list(block) or []
    if kinds and len(refs) != 1:
        raise SecliUsageError(
            "--block compares one architecture with its injected version",
            hint="to compare several models, name them all: secli profile resnet50 se_r50.pt timm:seresnet50",
        )
    if given and not kinds:
        raise SecliUsageError(f"--{next(iter(given))} needs --block se or sk")
    for kind in kinds:
        if kind not in ("se", "sk"):
            raise SecliUsageError(f"--block must be se, sk or se,sk for profile, got {kind!r}")
    torch.manual_seed(0)  # identical weights on every rank under --ddp
    loaded = []
    if kinds:
        loaded.append(load_model(refs[0], BlockSpec(kind="none")))
        for kind in kinds:
            spec = model_spec_from_options(refs[0], None, None, None, block=kind, **given)
            loaded.append(load_model(refs[0], spec.block))
    else:
        loaded = [load_model(ref) for ref in refs]
    entries: list[ModelEntry] = []
    seen: dict[str, int] = {}
    for index, built in enumerate(loaded):
        short = index > 0 and kinds and not given
        label = f"{refs[0]} + {kinds[index - 1].upper()}" if short else built.label
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            label = f"{label} #{seen[label]}"
        entries.append(ModelEntry(label, built.model, list(built.sites), built.info.min_input))
    return entries, loaded[0].info.default_input
