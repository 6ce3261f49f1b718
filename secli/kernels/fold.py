"""SE folded into a residual block's sum and ReLU: the block's forward hands the SE its identity.

A residual block with a fused SE block at the standard position computes ``relu(u * s +
identity)``; written as SE's scale, the block's ``out += identity`` and its ReLU, that is three
passes over full-size tensors. ``fold_into`` gives the residual block a forward that calls
``se(u, identity)`` instead, and the SE block returns the whole sum in one function
(``secli.kernels.residual``). Only torchvision's and timm's plain ResNet blocks get it, and only
where the folded forward is the library's own with that one change; anything else keeps its
own forward, which stays correct, just unfolded. Where a hook, a counter or a trace could see
the calls the fold skips, the block runs its library forward for that call (``_declined``).
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any, cast

import torch
from torch import nn

from secli.kernels.dispatch import compiling, observed, recording_as_run


def fold_into(owner: Any, block: nn.Module) -> bool:
    """Give ``owner`` (a residual block whose last BN ``block`` now follows) the folded forward
    when ``block`` is a fused SE block and ``owner`` one of the known layouts; True if folded."""
    if getattr(block, "impl_used", None) != "fused" or not hasattr(block, "residual_folded"):
        return False
    forward = _FOLDED_FORWARDS.get((type(owner).__module__, type(owner).__name__))
    if forward is None or "forward" in vars(owner):
        return False
    bottleneck = hasattr(owner, "conv3") and hasattr(owner, "bn3")
    if type(owner).__module__.startswith("timm") and (
        getattr(owner, "se", None) is not None
        or getattr(owner, "drop_path", None) is not None
        or type(owner.act3 if bottleneck else owner.act2) is not nn.ReLU
    ):
        return False
    owner.forward = types.MethodType(forward, owner)
    setattr(block, "residual_folded", True)  # noqa: B010 (an attribute, not a submodule)
    return True


# Each is the library's own forward with ``bnX -> se``, ``+= identity`` and the final ReLU
# replaced by one call ``se(u, identity)``; ``bnX`` is the Sequential(BN, SE) that wrap_after made
# (read through ``_modules``: ``Sequential.__getitem__`` walks its children at every step). Each
# first asks ``dispatch.observed`` whether anything could see the calls the fold skips or
# reshapes (the Sequential's call, the SE block's single-input call, the final ReLU's call):
# then the block runs the library's own forward for this call, so every hook fires as often,
# in the same order, with the same tensors as in the eager network (and counters and traces
# see its ops).
def _join(wrapped: nn.Module, u: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
    """``se(u, identity)`` for ``wrapped`` = Sequential(BN, SE), where nothing observes the fold.
    Without gradients the SE may write its result into ``u`` (the block's own BN output), unless
    a hook on the BN may have kept that tensor.

    The (unhooked) SE block's ``forward`` is called directly, sparing the call machinery, a few
    microseconds a site that at batch 1 are a measurable part of what SE costs
    (``benchmarks/se_inference_breakdown.py``), unless the block was compiled with
    ``module.compile()`` or ``torch.compile``/``torch.export`` is tracing (their graphs note each
    module call, e.g. the ``nn_module_stack`` that ``torch.export.unflatten`` reads)."""
    bn, se = cast(nn.Module, wrapped._modules["0"]), cast(Any, wrapped._modules["1"])
    keep_u = bool(bn._forward_hooks)
    direct = se._compiled_call_impl is None and not compiling() and not recording_as_run()
    if direct and not keep_u and not torch.is_grad_enabled():
        done = se.residual_no_grad(u, identity)  # the checks that remain, then one kernel call
        if done is not None:
            return done
    if direct:
        return se.forward(u, identity, overwrite=not keep_u)
    return se(u, identity, overwrite=not keep_u)


def _declined(wrapped: nn.Module, act: nn.Module) -> bool:
    """The fold declines this call where ``dispatch.observed`` says the skipped calls could be seen
    (not for the byte counter's attribution hooks: it records what runs unobserved)."""
    return not recording_as_run() and observed(wrapped, cast(nn.Module, wrapped._modules["1"]), act)


def _tv_bottleneck_folded(self: Any, x: torch.Tensor) -> torch.Tensor:
    modules = self._modules
    if _declined(modules["bn3"], modules["relu"]):
        return type(self).forward(self, x)
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.relu(self.bn2(self.conv2(out)))
    u = self.bn3._modules["0"](self.conv3(out))
    identity = x if self.downsample is None else self.downsample(x)
    return _join(self.bn3, u, identity)


def _tv_basic_folded(self: Any, x: torch.Tensor) -> torch.Tensor:
    modules = self._modules
    if _declined(modules["bn2"], modules["relu"]):
        return type(self).forward(self, x)
    out = self.relu(self.bn1(self.conv1(x)))
    u = self.bn2._modules["0"](self.conv2(out))
    identity = x if self.downsample is None else self.downsample(x)
    return _join(self.bn2, u, identity)


def _timm_bottleneck_folded(self: Any, x: torch.Tensor) -> torch.Tensor:
    modules = self._modules
    if _declined(modules["bn3"], modules["act3"]):
        return type(self).forward(self, x)
    out = self.act1(self.bn1(self.conv1(x)))
    out = self.aa(self.act2(self.drop_block(self.bn2(self.conv2(out)))))
    u = self.bn3._modules["0"](self.conv3(out))
    identity = x if self.downsample is None else self.downsample(x)
    return _join(self.bn3, u, identity)


def _timm_basic_folded(self: Any, x: torch.Tensor) -> torch.Tensor:
    modules = self._modules
    if _declined(modules["bn2"], modules["act2"]):
        return type(self).forward(self, x)
    out = self.aa(self.act1(self.drop_block(self.bn1(self.conv1(x)))))
    u = self.bn2._modules["0"](self.conv2(out))
    identity = x if self.downsample is None else self.downsample(x)
    return _join(self.bn2, u, identity)


_FOLDED_FORWARDS: dict[tuple[str, str], Callable[[Any, torch.Tensor], torch.Tensor]] = {
    ("torchvision.models.resnet", "Bottleneck"): _tv_bottleneck_folded,
    ("torchvision.models.resnet", "BasicBlock"): _tv_basic_folded,
    ("timm.models.resnet", "Bottleneck"): _timm_bottleneck_folded,
    ("timm.models.resnet", "BasicBlock"): _timm_basic_folded,
}
