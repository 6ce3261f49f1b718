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
(``secli.build.blocks.fused_residual``); the eager implementation keeps the library's forward.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

from secli.build.architectures.base import Target, unsupported_position, wrap_after, wrap_before
from secli.build.blocks.fused import any_global_module_hook, compiling, reference_wanted
from secli.build.sites import set_module
from secli.util.errors import SecliUsageError
from secli.util.vocabulary import POSITIONS

if TYPE_CHECKING:
    from secli.build.blocks.se import SqueezeExcitation

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
    """``attach``, then, for a fused SE block, a block forward that hands the SE its identity.

    The SE block then returns ``relu(u * s + identity)`` itself (one fused function instead of
    scale, add and ReLU). Parameters and module paths stay as ``attach`` made them; only the
    forward of this one residual block changes, and only for torchvision's and timm's plain
    blocks (anything else keeps its own forward, which stays correct, just unfolded).
    """

    def fold(block: nn.Module) -> str:
        path = attach(block)
        if getattr(block, "impl_used", None) != "fused" or not hasattr(block, "residual_folded"):
            return path
        forward = _FOLDED_FORWARDS.get((type(owner).__module__, type(owner).__name__))
        if forward is None or "forward" in vars(owner):
            return path
        if type(owner).__module__.startswith("timm") and (
            getattr(owner, "se", None) is not None
            or getattr(owner, "drop_path", None) is not None
            or type(owner.act3 if _is_bottleneck(owner) else owner.act2) is not nn.ReLU
        ):
            return path
        owner.forward = types.MethodType(forward, owner)
        setattr(block, "residual_folded", True)  # noqa: B010 (an attribute, not a submodule)
        return path

    return fold


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


# ----------------------------------------------------------------- SE folded into the residual sum
# Each is the library's own forward with ``bnX -> se``, ``+= identity`` and the final ReLU
# replaced by one call ``se(u, identity)``; ``bnX`` is the Sequential(BN, SE) that wrap_after made
# (read through ``_modules``: ``Sequential.__getitem__`` walks its children at every step).
def _join(wrapped: nn.Module, u: torch.Tensor, identity: torch.Tensor, act: nn.Module) -> torch.Tensor:
    """``se(u, identity)`` for ``wrapped`` = Sequential(BN, SE), except while FLOPs are counted or
    a trace is taken: then the sum and the ReLU run outside the SE module, as the unfolded block
    runs them, so per-module counts give the SE block its own cost only (not the residual's add
    and ReLU). Without gradients the SE may write its result into ``u`` (the block's own BN
    output), unless a hook on the BN may have kept that tensor."""
    bn, se = cast(nn.Module, wrapped._modules["0"]), cast("SqueezeExcitation", wrapped._modules["1"])
    observed = bn._forward_hooks or any_global_module_hook()
    direct = not observed and _unhooked(se)
    if direct and not torch.is_grad_enabled():
        done = se.residual_no_grad(u, identity)  # the checks that remain, then one kernel call
        if done is not None:
            return done
    if reference_wanted():
        return act(se(u) + identity)
    if direct:
        return se.forward(u, identity, overwrite=True)
    return se(u, identity, overwrite=not observed)


def _unhooked(module: nn.Module) -> bool:
    """Whether ``module(...)`` would only call ``module.forward(...)`` and nobody records the
    call: no hook on it, not compiled with ``module.compile()``, and not inside
    ``torch.compile``/``torch.export`` (whose graphs note each module call, e.g. the
    ``nn_module_stack`` that ``torch.export.unflatten`` reads). Global hooks and jit traces are
    the caller's checks (``_join`` and ``reference_wanted``). Calling ``forward``
    directly then spares the call machinery, a few microseconds a site that at batch 1 are a
    measurable part of what SE costs (``benchmarks/se_inference_breakdown.py``)."""
    if module._forward_hooks or module._forward_pre_hooks or module._backward_hooks or module._backward_pre_hooks:
        return False
    return module._compiled_call_impl is None and not compiling()


def _tv_bottleneck_folded(self: Any, x: torch.Tensor) -> torch.Tensor:
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.relu(self.bn2(self.conv2(out)))
    u = self.bn3._modules["0"](self.conv3(out))
    identity = x if self.downsample is None else self.downsample(x)
    return _join(self.bn3, u, identity, self.relu)


def _tv_basic_folded(self: Any, x: torch.Tensor) -> torch.Tensor:
    out = self.relu(self.bn1(self.conv1(x)))
    u = self.bn2._modules["0"](self.conv2(out))
    identity = x if self.downsample is None else self.downsample(x)
    return _join(self.bn2, u, identity, self.relu)


def _timm_bottleneck_folded(self: Any, x: torch.Tensor) -> torch.Tensor:
    out = self.act1(self.bn1(self.conv1(x)))
    out = self.aa(self.act2(self.drop_block(self.bn2(self.conv2(out)))))
    u = self.bn3._modules["0"](self.conv3(out))
    identity = x if self.downsample is None else self.downsample(x)
    return _join(self.bn3, u, identity, self.act3)


def _timm_basic_folded(self: Any, x: torch.Tensor) -> torch.Tensor:
    out = self.aa(self.act1(self.drop_block(self.bn1(self.conv1(x)))))
    u = self.bn2._modules["0"](self.conv2(out))
    identity = x if self.downsample is None else self.downsample(x)
    return _join(self.bn2, u, identity, self.act2)


_FOLDED_FORWARDS: dict[tuple[str, str], Callable[[Any, torch.Tensor], torch.Tensor]] = {
    ("torchvision.models.resnet", "Bottleneck"): _tv_bottleneck_folded,
    ("torchvision.models.resnet", "BasicBlock"): _tv_basic_folded,
    ("timm.models.resnet", "Bottleneck"): _timm_bottleneck_folded,
    ("timm.models.resnet", "BasicBlock"): _timm_basic_folded,
}
