"""The classifier at the end of a network: check its width against the data, or replace it."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from secli.networks.sites import set_module
from secli.util.errors import SecliUsageError
from secli.util.tensors import logits_of


def check_head(model: nn.Module, sample: torch.Tensor, classes: int) -> None:
    """Refuse a network whose output is narrower than the number of classes in the data."""
    model.eval()
    with torch.inference_mode():
        width = logits_of(model(sample[:1])).shape[1]
    if width < classes:
        raise SecliUsageError(
            f"the model predicts {width} classes but the data has {classes}",
            hint=f"pass --num-classes {classes}",
        )


def _last_layer(module: nn.Module, prefix: str) -> tuple[str, nn.Module] | None:
    """The last Linear (or Conv2d, as in SqueezeNet) at or under ``module``, with its path."""
    found = None
    for name, child in module.named_modules():
        if isinstance(child, (nn.Linear, nn.Conv2d)):
            found = (f"{prefix}.{name}" if name else prefix, child)
    return found


def replace_head(model: nn.Module, classes: int) -> str | None:
    """Give a pretrained network a fresh final classifier for ``classes`` classes.

    Pretrained weights come with their own head (1000 ImageNet classes); to train them on other
    data the body is kept and only the last layer is replaced: timm's ``reset_classifier``
    where the model has one, else the last Linear/Conv2d of ``fc``, ``classifier``, ``heads``
    or ``head`` (torchvision's names). A head that already has ``classes`` outputs is kept (an
    ImageNet folder on ImageNet weights). Returns the replaced layer's path, or None when kept.
    """
    if hasattr(model, "reset_classifier") and hasattr(model, "get_classifier"):  # timm models
        timm_model: Any = model  # timm's classifier API, duck-typed
        current = timm_model.get_classifier()
        if getattr(current, "out_features", None) == classes:
            return None
        timm_model.reset_classifier(classes)
        return "classifier (timm reset_classifier)"
    for attr in ("fc", "classifier", "heads", "head"):
        module = getattr(model, attr, None)
        if not isinstance(module, nn.Module):
            continue
        found = _last_layer(module, attr)
        if found is None:
            continue
        path, found_layer = found
        layer: Any = found_layer  # a Linear or a Conv2d, told apart below
        if isinstance(layer, nn.Linear):
            if layer.out_features == classes:
                return None
            new: nn.Module = nn.Linear(layer.in_features, classes, bias=layer.bias is not None)
        else:
            if layer.out_channels == classes:
                return None
            new = nn.Conv2d(layer.in_channels, classes, kernel_size=layer.kernel_size, stride=layer.stride,
                            padding=layer.padding, bias=layer.bias is not None)
        set_module(model, path, new.to(next(layer.parameters()).device))
        return path
    raise SecliUsageError(
        f"cannot find the final classifier of {type(model).__name__} to replace",
        hint="pass --num-classes N matching the weights' own head",
    )

