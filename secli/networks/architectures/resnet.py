"""ResNet, ResNeXt and Wide-ResNet (torchvision's, and timm's, which share the attribute names).

Stages follow the paper: stage 2 = conv2_x = ``layer1`` ... stage 5 = ``layer4``. Positions are
the paper's Fig. 5 and Table 15:

- ``standard``: residual branch output, before the sum (wraps the branch's last BN);
- ``pre``: residual branch input (wraps ``conv1``; the identity still sees the raw input);
- ``post``: after the sum and its ReLU (wraps the whole block);
- ``identity``: on the identity path, parallel to the branch (wraps or becomes ``downsample``);
- ``3x3``: after the 3x3 convolution of a bottleneck (wraps ``bn2``; equal to after the ReLU,
  since the gate is non-negative for sigmoid/relu/hardsigmoid).

SK replaces the 3x3 convolution with its BN (its paths carry their own BN and ReLU): ``conv2``
of a bottleneck, ``conv1`` of a basic block (as timm's SKNet-18/34 do). The ReLU that followed
the BN is dropped too: SK's output is a softmax-weighted sum of ReLU outputs, never negative, so
that ReLU changed nothing (timm: its ``act2``/``act1`` becomes Identity; torchvision's blocks share
one ``relu`` module, so the block gets a forward without that call).

A fused SE block at ``standard`` gets the block's identity too: the block's forward becomes
``se(u, identity)``, which returns ``relu(u * s + identity)`` in one function
(``secli.kernels.fold``); the eager implementation keeps the library's forward.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from secli.kernels.fold import fold_into
from secli.networks.architectures.base import Target, unsupported_position, wrap_after, wrap_before
from secli.networks.sites import set_module
from secli.util.errors import SecliUsageError
from secli.util.vocabulary import POSITIONS

STAGE_OFFSET = 1  # layer1 is the paper's stage 2 (conv2_x)


def _blocks(model: nn.Module) -> list[tuple[int, int, str, Any]]:
    """(stage, index, path, block) for every residual block, index counted from 1."""
    found = []
    for layer_number in range(1, 5):
        layer = getattr(model, f"layer{layer_number}", None)
        if layer is None:
            continue
        for i, block in enumerate(layer):
            found.append((layer_number + STAGE_OFFSET, i + 1, f"layer{layer_number}.{i}", block))
    if not found:
        raise SecliUsageError("this network has no layer1..layer4 residual stages")
    return found


def _is_bottleneck(block: Any) -> bool:
    return hasattr(block, "conv3") and hasattr(block, "bn3")


def _out_channels(block: Any) -> int:
    return (block.bn3 if _is_bottleneck(block) else block.bn2).num_features


class ResNetAdapter:
    family = "resnet"
    se_positions = POSITIONS
    supports_sk = True

    def se_targets(self, model: nn.Module, position: str) -> list[Target]:
        if position not in self.se_positions:
            raise unsupported_position(self.family, position, self.se_positions)
        targets = []
        for stage, index, path, block in _blocks(model):
            bottleneck = _is_bottleneck(block)
            out_channels = _out_channels(block)
            if position == "standard":
                attach = _fold_residual(block, wrap_after(model, f"{path}.{'bn3' if bottleneck else 'bn2'}"))
                channels = out_channels
            elif position == "pre":
                attach = wrap_before(model, f"{path}.conv1")
                channels = block.conv1.in_channels
            elif position == "post":
                attach = wrap_after(model, path)
                channels = out_channels
            elif position == "identity":
                if block.downsample is not None:
                    attach = wrap_after(model, f"{path}.downsample")
                    channels = out_channels
                else:
                    attach = _set_attr(model, f"{path}.downsample")
                    channels = block.conv1.in_channels
            else:  # 3x3
                if not bottleneck:
                    raise SecliUsageError(
                        "position '3x3' needs bottleneck blocks (resnet50 and deeper, ResNeXt, "
                        "Wide-ResNet); this network has basic blocks",
                        hint="use --position standard, pre, post or identity",
                    )
                attach = wrap_after(model, f"{path}.bn2")
                channels = block.bn2.num_features
            targets.append(Target(stage=stage, index=index, channels=channels, attach=attach))
        return targets

    def sk_targets(self, model: nn.Module) -> list[Target]:
        targets = []
        for stage, index, path, block in _blocks(model):
            conv_name, bn_name = ("conv2", "bn2") if _is_bottleneck(block) else ("conv1", "bn1")
            conv: nn.Conv2d = getattr(block, conv_name)
            if conv.kernel_size != (3, 3):
                raise SecliUsageError(f"{path}.{conv_name} is not a 3x3 convolution; SK cannot replace it")
            targets.append(
                Target(
                    stage=stage,
                    index=index,
                    channels=conv.out_channels,
                    in_channels=conv.in_channels,
                    stride=conv.stride[0],
                    attach=_replace_conv_bn(model, block, f"{path}.{conv_name}", f"{path}.{bn_name}"),
                )
            )
        return targets


def _fold_residual(owner: Any, attach: Callable[[nn.Module], str]) -> Callable[[nn.Module], str]:
    """``attach``, then, for a fused SE block, a block forward that hands the SE its identity
    (``secli.kernels.fold``). Parameters and module paths stay as ``attach`` made them."""

    def attach_and_fold(block: nn.Module) -> str:
        path = attach(block)
        fold_into(owner, block)
        return path

    return attach_and_fold


def _set_attr(model: nn.Module, path: str) -> Callable[[nn.Module], str]:
    def attach(block: nn.Module) -> str:
        set_module(model, path, block)
        return path

    return attach


def _replace_conv_bn(model: nn.Module, owner: Any, conv_path: str, bn_path: str) -> Callable[[nn.Module], str]:
    def attach(block: nn.Module) -> str:
        set_module(model, conv_path, block)
        set_module(model, bn_path, nn.Identity())
        _drop_relu_after_sk(owner)
        return conv_path

    return attach


def _drop_relu_after_sk(owner: Any) -> None:
    bottleneck = _is_bottleneck(owner)
    act = "act2" if bottleneck else "act1"
    if isinstance(getattr(owner, act, None), nn.Module) and hasattr(owner, "drop_block"):  # timm
        setattr(owner, act, nn.Identity())
    elif isinstance(getattr(owner, "relu", None), nn.Module):  # torchvision: one shared ReLU
        owner.forward = types.MethodType(_sk_bottleneck_forward if bottleneck else _sk_basic_forward, owner)


def _sk_bottleneck_forward(self: Any, x: torch.Tensor) -> torch.Tensor:
    """torchvision's Bottleneck.forward without the ReLU after conv2 (now an SK unit)."""
    identity = x if self.downsample is None else self.downsample(x)
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.bn3(self.conv3(self.bn2(self.conv2(out))))
    out += identity
    return self.relu(out)


def _sk_basic_forward(self: Any, x: torch.Tensor) -> torch.Tensor:
    """torchvision's BasicBlock.forward without the ReLU after conv1 (now an SK unit)."""
    identity = x if self.downsample is None else self.downsample(x)
    out = self.bn2(self.conv2(self.bn1(self.conv1(x))))
    out += identity
    return self.relu(out)
