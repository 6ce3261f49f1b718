"""The models a profile compares, from what the user named: references as given, or one
architecture next to its block variants (one model per BlockSpec).

Which variants to build (``--block se,sk``, ``--ratios``, ``--impl eager,fused``, a sweep file)
is decided above this layer (``secli.api.profile``, which reuses complexity's sweep); here each
variant is built and labelled. Labels are made unique (``#2``) because they key the report's
rows and JSON.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from torch import nn

from secli.blocks.registry import NO_BLOCK
from secli.blocks.spec import BlockSpec
from secli.networks.models import ModelRef, load_model, looks_like_file
from secli.networks.native_se import strip_native_se
from secli.networks.variants import stripped_label, variant_labels
from secli.profiling.results import ModelEntry
from secli.util.errors import SecliUsageError


def load_entries(
    refs: Sequence[ModelRef], variants: Sequence[BlockSpec] | None = None, num_classes: int | None = None,
    model_kwargs: str | dict[str, Any] | None = None, trust_code: bool = False, native: bool = False,
) -> tuple[list[ModelEntry], int]:
    """The entries to time, baseline first, and the first model's default image size.

    With ``variants``: ``refs`` is one network (a name, a factory built with ``model_kwargs``, or
    an ``nn.Module``), built plain (the baseline) and once per variant. ``native``: one
    architecture with SE modules of its own, as built, after the same network with them replaced
    by identities (the baseline). Otherwise: every reference as given (architectures, timm names,
    factories, network objects, saved models; a checkpoint made from a factory imports it only
    with ``trust_code``).
    """
    import torch


    refs = list(refs)
    if not refs:
        raise SecliUsageError("name at least one model, e.g. 'secli profile resnet50 --block se'")
    torch.manual_seed(0)  # identical weights on every rank under --ddp
    if native:
        return _native_entries(refs, num_classes)
    if variants:
        if len(refs) != 1:
            raise SecliUsageError(
                "--block compares one architecture with its injected versions",
                hint="to compare several models, name them all: secli profile resnet50 se_r50.pt timm:seresnet50",
            )
        arch = refs[0]
        kwargs = None if isinstance(arch, nn.Module) else model_kwargs
        loaded = [load_model(arch, BlockSpec(kind="none"), num_classes=num_classes, model_kwargs=kwargs)]
        loaded += [load_model(arch, block, num_classes=num_classes, model_kwargs=kwargs) for block in variants]
        labels = [loaded[0].label, *variant_labels(loaded[0].label, variants)]
    else:
        loaded = [load_model(ref, trust_code=trust_code) if isinstance(ref, nn.Module) or looks_like_file(ref)
                  else load_model(ref, model_kwargs=model_kwargs) for ref in refs]
        labels = [built.label for built in loaded]
    entries: list[ModelEntry] = []
    seen: dict[str, int] = {}
    for label, built in zip(labels, loaded, strict=True):
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            label = f"{label} #{seen[label]}"
        entries.append(ModelEntry(label, built.model, list(built.sites), built.info.min_input,
                                  spec=built.spec.to_dict()))
    return entries, loaded[0].info.default_input


def _native_entries(refs: Sequence[ModelRef], num_classes: int | None) -> tuple[list[ModelEntry], int]:
    """``refs[0]`` without its own SE modules (the baseline), then as built."""
    if len(refs) != 1 or not isinstance(refs[0], str) or looks_like_file(refs[0]):
        raise SecliUsageError("--block none compares one architecture with its own SE modules against it without them; "
                              "name one architecture")
    arch = refs[0]
    built = load_model(arch, BlockSpec(kind=NO_BLOCK), num_classes=num_classes)
    stripped = copy.deepcopy(built.model)
    if not strip_native_se(stripped, built.sites):  # only SE modules are stripped: they keep every shape
        raise SecliUsageError(f"{arch} has no SE modules of its own; --block none has nothing to compare",
                              hint="add blocks with --block se, eca or sk")
    spec = built.spec.to_dict()
    entries = [ModelEntry(stripped_label(arch), stripped, [], built.info.min_input,
                          spec={**spec, "stripped_native": True}),
               ModelEntry(arch, built.model, list(built.sites), built.info.min_input, spec=spec)]
    return entries, built.info.default_input
