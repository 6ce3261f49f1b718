"""Sites: the places in a network where an attention block sits.

Every command reads sites: ``inject`` fills them, ``complexity`` groups their parameters by
stage, ``profile`` counts the bytes their blocks move, ``visualize-excitation`` hooks their
gates. A site records where its block lives (``module_path``) and which submodule's output is
the gate (``gate_path``), so analysis code never needs to know the architecture.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from torch import nn

from secli.blocks.registry import get_kind


@dataclass(frozen=True)
class Site:
    """One block in a network, named in the paper's style (``SE_3_4`` = stage 3, 4th block)."""

    name: str
    # a registered block kind ("se", "sk", "eca", ...) or "native-se", "native-eca"... (found in a model as built)
    kind: str
    module_path: str
    gate_path: str | None
    channels: int
    hidden: int | None
    stage: int
    index: int
    position: str
    params: int
    impl: str | None = None  # the implementation the block runs (eager | fused), None where not secli's
    source: str = "adapter"  # where the site came from: adapter | pattern | structure | native
    paths: int = 1  # gate vectors per image (a network's own SK: its M paths; secli's kinds say it themselves)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def site_name(kind: str, stage: int, index: int) -> str:
    """``<prefix>_<stage>_<index>`` with the kind's registered prefix (SE_3_4, SK_3_4, ECA_3_4)."""
    return f"{get_kind(kind).prefix}_{stage}_{index}"


def stage_of(path: str) -> int:
    """The stage a module path belongs to: its first number, with torchvision's and timm's
    ``layerK`` (K = 1..4) shifted to the paper's stage K+1; 0 for a path without numbers.

    One rule for sites found by pattern, by structure and in a network's own modules, so
    ``--stages`` and site names read the same whichever found them."""
    numbers = [int(n) for n in re.findall(r"\d+", path)]
    stage = numbers[0] if numbers else 0
    return stage + 1 if path.startswith("layer") else stage


def number_sites(paths: list[str]) -> list[tuple[int, int]]:
    """(stage, index) for each path, in the order given: index counts from 1 within a stage."""
    seen: dict[int, int] = {}
    numbered = []
    for path in paths:
        stage = stage_of(path)
        seen[stage] = seen.get(stage, 0) + 1
        numbered.append((stage, seen[stage]))
    return numbered


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def get_module(model: nn.Module, path: str) -> nn.Module:
    return model.get_submodule(path) if path else model


def set_module(model: nn.Module, path: str, new: nn.Module) -> None:
    """Replace the submodule at dotted ``path`` (works for Sequential indices too)."""
    parent_path, _, name = path.rpartition(".")
    parent = get_module(model, parent_path)
    setattr(parent, name, new)
