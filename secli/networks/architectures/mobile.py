"""Mobile networks: MobileNetV2 and ShuffleNetV2, "following similar schemes" (SE paper, 5.1).

- MobileNetV2: inside each inverted residual, after the depthwise convolution (+BN+ReLU6) and
  before the linear projection, so the block sees the expanded width. Stages are the groups of
  the network's bottleneck table (consecutive blocks with the same output width), numbered
  from 1.
- ShuffleNetV2: at the end of the convolutional branch (``branch2``), before the concatenation
  and the channel shuffle. Stages keep torchvision's names: ``stage2``..``stage4``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from secli.networks.architectures.base import StandardOnlyAdapter, Target, wrap_after
from secli.util.errors import SecliUsageError


def _is_depthwise_unit(layer: Any) -> bool:
    """A Sequential that starts with a depthwise convolution (conv + BN + ReLU6 in torchvision)."""
    if not isinstance(layer, nn.Sequential) or not isinstance(layer[0], nn.Conv2d):
        return False
    conv = layer[0]
    return conv.groups > 1 and conv.groups == conv.in_channels


class MobileNetV2Adapter(StandardOnlyAdapter):
    family = "mobilenet_v2"

    def standard_targets(self, model: nn.Module) -> list[Target]:
        targets: list[Target] = []
        stage, index, last_width = 0, 0, None
        features: Any = model.features  # duck-typed: torchvision's InvertedResidual blocks
        for i, block in enumerate(features):
            if not hasattr(block, "use_res_connect"):
                continue  # the stem and the final 1x1 conv
            if block.out_channels != last_width:
                stage, index, last_width = stage + 1, 0, block.out_channels
            index += 1
            depthwise = [j for j, layer in enumerate(block.conv) if _is_depthwise_unit(layer)]
            if not depthwise:
                raise SecliUsageError(f"features.{i} has no depthwise convolution to follow")
            j = depthwise[0]
            channels = block.conv[j][0].out_channels
            targets.append(Target(stage, index, channels, wrap_after(model, f"features.{i}.conv.{j}")))
        return targets


class ShuffleNetV2Adapter(StandardOnlyAdapter):
    family = "shufflenet_v2"

    def standard_targets(self, model: nn.Module) -> list[Target]:
        targets: list[Target] = []
        for stage in (2, 3, 4):
            for i, unit in enumerate(getattr(model, f"stage{stage}")):
                convs = [m for m in unit.branch2 if isinstance(m, nn.Conv2d)]
                channels = convs[-1].out_channels
                targets.append(Target(stage, i + 1, channels, wrap_after(model, f"stage{stage}.{i}.branch2")))
        return targets
