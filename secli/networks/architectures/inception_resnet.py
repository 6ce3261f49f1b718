"""Inception-ResNet-v2 (timm's ``inception_resnet_v2``): SE on each Inception-ResNet module's branch.

The SE paper (Fig. 3) puts the block on the residual branch of an Inception-ResNet module, after
the 1x1 convolution that projects the concatenated branches back to the trunk's width and before
the scaled sum ``branch * scale + x``. In timm that projection is each module's ``conv2d``, so
the block wraps it: ``Sequential(conv2d, SE)``.

Stages are numbered as for Inception v3, whose Mixed_5/6/7 modules work at the same 35x35,
17x17 and 8x8 resolutions: Block35 (``repeat``, 10 modules, 320 channels) is stage 5, Block17
(``repeat_1``, 20 modules, 1088 channels) stage 6, Block8 (``repeat_2``, 9 modules, and the last
one, ``block8``, 2080 channels) stage 7. Modules are counted from 1 within a stage in network
order, so ``block8`` is SE_7_10. The reduction modules (Mixed_6a, Mixed_7a) and the stem have no
residual branch and get no block, as in the paper.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from secli.networks.architectures.base import StandardOnlyAdapter, Target, wrap_after
from secli.util.errors import SecliUsageError

#: (container attribute, stage): the order of the residual Inception modules in the network.
_CONTAINERS: tuple[tuple[str, int], ...] = (("repeat", 5), ("repeat_1", 6), ("repeat_2", 7), ("block8", 7))


def is_inception_resnet_v2(model: nn.Module) -> bool:
    """timm's Inception-ResNet-v2, recognised by the attributes the adapter relies on."""
    return all(hasattr(model, name) for name, _ in _CONTAINERS) and hasattr(model, "mixed_5b")


def _modules(model: nn.Module) -> list[tuple[int, str, Any]]:
    """(stage, path, module) for every Inception-ResNet module with a residual branch."""
    found: list[tuple[int, str, Any]] = []
    for name, stage in _CONTAINERS:
        container = getattr(model, name)
        members = ([(f"{name}.{i}", m) for i, m in enumerate(container)] if isinstance(container, nn.Sequential)
                   else [(name, container)])
        for path, module in members:
            if not isinstance(getattr(module, "conv2d", None), nn.Conv2d):
                raise SecliUsageError(f"{path} has no 1x1 up-projection 'conv2d'; not timm's "
                                      "Inception-ResNet-v2 layout")
            found.append((stage, path, module))
    return found


class InceptionResNetV2Adapter(StandardOnlyAdapter):
    family = "inception_resnet_v2"

    def standard_targets(self, model: nn.Module) -> list[Target]:
        targets: list[Target] = []
        per_stage: dict[int, int] = {}
        for stage, path, module in _modules(model):
            per_stage[stage] = per_stage.get(stage, 0) + 1
            channels = module.conv2d.out_channels
            targets.append(Target(stage, per_stage[stage], channels, wrap_after(model, f"{path}.conv2d")))
        return targets

    def sk_targets(self, model: nn.Module) -> list[Target]:
        """Refused: SK replaces the single 3x3 convolution of a ResNet block; an Inception-ResNet
        branch has several convolutions of different shapes, with no one of them to replace."""
        raise SecliUsageError(
            "SK blocks replace the 3x3 convolution of ResNet-style blocks; Inception-ResNet modules "
            "have multi-branch convolutions instead",
            hint="use --block se, or a ResNet/ResNeXt/Wide-ResNet",
        )
