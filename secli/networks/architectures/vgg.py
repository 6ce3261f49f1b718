"""VGG (with and without BN): SE after the ReLU that follows each convolution.

Stages are the paper's conv1_x..conv5_x: a new stage starts after each max-pooling.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from secli.networks.architectures.base import StandardOnlyAdapter, Target, wrap_after


class VGGAdapter(StandardOnlyAdapter):
    family = "vgg"

    def standard_targets(self, model: nn.Module) -> list[Target]:
        targets: list[Target] = []
        stage, index, channels = 1, 0, 0
        features: Any = model.features  # torchvision's VGG: a Sequential of layers
        for i, layer in enumerate(features):
            if isinstance(layer, nn.Conv2d):
                channels = layer.out_channels
            elif isinstance(layer, nn.ReLU):
                index += 1
                targets.append(Target(stage, index, channels, wrap_after(model, f"features.{i}")))
            elif isinstance(layer, nn.MaxPool2d):
                stage, index = stage + 1, 0
        return targets
