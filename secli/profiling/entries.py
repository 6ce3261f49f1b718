"""The models a profile compares, from what the user named: references as given, or one
architecture next to its block variants (one model per BlockSpec).

Which variants to build (``--block se,sk``, ``--ratios``, ``--impl eager,fused``, a sweep file)
is decided above this layer (``secli.api.profile``, which reuses complexity's sweep); here each
variant is built and labelled. Labels are made unique (``#2``) because they key the report's
rows and JSON.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from torch import nn

from secli.blocks.spec import BlockSpec
from secli.networks.models import ModelRef, load_model, looks_like_file
from secli.profiling.results import ModelEntry
from secli.util.errors import SecliUsageError


def variant_labels(arch: str, blocks: Sequence[BlockSpec]) -> list[str]:
    """``resnet18 + SE`` while every variant has its kind's defaults, else each block's full label
    (``resnet18 + SE r=8 standard``), so that a sweep's rows can be told apart. The implementation
    is added (``(eager)``) when it is not the default or variants of one kind differ in it."""
    default_impl = BlockSpec().impl
    plain = [dataclasses.replace(b, impl=default_impl) for b in blocks]
    short = all(p == BlockSpec(kind=p.kind) for p in plain)
    labels = []
    for block, bare in zip(blocks, plain, strict=True):
        label = f"{arch} + {bare.label().split()[0] if short else bare.label()}"
        if block.impl != default_impl or len({b.impl for b in blocks if b.kind == block.kind}) > 1:
            label += f" ({block.impl})"
        labels.append(label)
    return labels


def load_entries(
    refs: Sequence[ModelRef], variants: Sequence[BlockSpec] | None = None, num_classes: int | None = None,
    model_kwargs: str | dict[str, Any] | None = None, trust_code: bool = False,
) -> tuple[list[ModelEntry], int]:
    """The entries to time, baseline first, and the first model's default image size.

    With ``variants``: ``refs`` is one network (a name, a factory built with ``model_kwargs``, or
    an ``nn.Module``), built plain (the baseline) and once per variant. Without: every reference
    as given (architectures, timm names, factories, network objects, saved models; a checkpoint
    made from a factory imports it only with ``trust_code``).
    """
    import torch


    refs = list(refs)
    if not refs:
        raise SecliUsageError("name at least one model, e.g. 'secli profile resnet50 --block se'")
    torch.manual_seed(0)  # identical weights on every rank under --ddp
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
        entries.append(ModelEntry(label, built.model, list(built.sites), built.info.min_input))
    return entries, loaded[0].info.default_input
