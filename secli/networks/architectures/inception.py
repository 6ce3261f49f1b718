"""Inception v3 and GoogLeNet: SE on each Inception module's output (SE paper, Fig. 2).

Module names carry the stage (``Mixed_6c`` and ``inception4b`` are in stages 6 and 4); blocks are
counted from 1 within a stage in network order (``Mixed_5b`` -> SE_5_1, ``inception4b`` -> SE_4_2).
The output widths of Inception modules are sums over branches of different shapes, so they are
read from one small forward pass instead of re-deriving each module type's arithmetic.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from secli.networks.architectures.base import StandardOnlyAdapter, Target, wrap_after

_MODULE_NAME = re.compile(r"^(?:Mixed_|inception)(\d)([a-z])$")


def _probe_out_channels(model: nn.Module, names: list[str], input_size: int) -> dict[str, int]:
    widths: dict[str, int] = {}
    hooks = [
        getattr(model, name).register_forward_hook(
            lambda _m, _i, out, name=name: widths.__setitem__(name, out.shape[1])
        )
        for name in names
    ]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, input_size, input_size))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return widths


class InceptionAdapter(StandardOnlyAdapter):
    def __init__(self, family: str, probe_size: int) -> None:
        self.family = family
        self.probe_size = probe_size

    def standard_targets(self, model: nn.Module) -> list[Target]:
        names = [name for name, _ in model.named_children() if _MODULE_NAME.match(name)]
        widths = _probe_out_channels(model, names, self.probe_size)
        targets: list[Target] = []
        per_stage: dict[int, int] = {}
        for name in names:
            match = _MODULE_NAME.match(name)
            assert match is not None  # names were chosen by this pattern above
            stage = int(match.group(1))
            per_stage[stage] = per_stage.get(stage, 0) + 1
            targets.append(Target(stage, per_stage[stage], widths[name], wrap_after(model, name)))
        return targets
