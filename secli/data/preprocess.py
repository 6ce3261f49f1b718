"""How images become tensors for a model: resize, centre crop, normalise.

The preprocessing follows the model's weights (torchvision's ``weights.transforms()``) where
there are any, ImageNet defaults (resize 256/224 of the size, centre crop, normalise)
otherwise. Which of these a run uses is decided in ``secli.data.sources.choose_preprocess``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from secli.networks.models import looks_like_file, torchvision_weights

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocess:
    """Resize, centre crop and normalisation; from the weights' transforms or ImageNet defaults."""

    crop: int = 224
    resize: int = 256
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    source: str = "ImageNet defaults"

    def transform(self) -> Callable[[Any], torch.Tensor]:
        from torchvision import transforms as T

        return T.Compose(
            [
                T.Resize(self.resize, antialias=True),
                T.CenterCrop(self.crop),
                T.ToTensor(),
                T.Normalize(self.mean, self.std),
            ]
        )


def weights_enum(arch: str, name: str | None) -> Any:
    """The torchvision weights enum member ``name`` of ``arch``, or None (never downloads).

    The lookup is ``secli.networks.models``' own; here every failure (a local state-dict file, a timm
    model, an arch torchvision does not list, an unknown name) means "no transforms known",
    because building the model is where a bad weights name is reported.
    """
    if not name or arch.startswith("timm:"):
        return None

    if looks_like_file(name):
        return None
    try:
        return torchvision_weights(arch, name)
    except Exception:
        return None


def preprocess_for(arch: str, weights: str | None, size: int | None = None, default_input: int = 224) -> Preprocess:
    """The weights' own preprocessing where known (at ``size``, keeping their resize ratio and
    normalisation, when one is given); ImageNet defaults at ``size`` or ``default_input`` otherwise."""
    enum = weights_enum(arch, weights)
    if enum is not None:
        tf = enum.transforms()
        crop0, resize0 = int(tf.crop_size[0]), int(tf.resize_size[0])
        crop = size or crop0
        resize = resize0 if crop == crop0 else round(crop * resize0 / crop0)
        return Preprocess(crop, resize, tuple(tf.mean), tuple(tf.std), f"{arch} {enum.name} transforms")
    crop = size or default_input
    return Preprocess(crop=crop, resize=round(crop * 256 / 224))


def weight_categories(arch: str, weights: str | None) -> list[str] | None:
    """The weights' category names (ImageNet's 1000 for torchvision's), or None when unknown."""
    enum = weights_enum(arch, weights)
    return list(enum.meta.get("categories") or []) or None if enum is not None else None
