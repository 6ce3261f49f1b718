"""``--training-step``: what one training step costs, FLOPs forward + backward and saved activations.

Measured on a batch of 2 (BatchNorm in training mode needs more than one value per channel, and
an SE/SK block's 1x1 maps have one per image) and reported per image:

- ``forward``: secli's all-ops count (fvcore + ``handles``' rules) of the forward in training
  mode (BatchNorm computing batch statistics: fvcore's 5 per element);
- ``backward_gemm``: the multiply-adds of the backward convolutions and matrix products
  (gradients to inputs and weights), from ``torch.utils.flop_counter.FlopCounterMode`` (its
  FLOPs / 2, fvcore's convention);
- ``backward_other``: every other backward kernel (ReLU/sigmoid/BN/pool/mul backward...), one
  FLOP per output element, sums N_in - N_out, data movement free;
- ``saved_bytes``: bytes of the tensors autograd keeps for backward, recorded with
  ``torch.autograd.graph.saved_tensors_hooks`` and deduplicated by storage; parameters and
  buffers (kept anyway) are left out.

The optimizer's update is not included.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch._ops import OpOverload
from torch.utils._python_dispatch import TorchDispatchMode

from secli.complexity.flops import fvcore_count
from secli.kernels.dispatch import eager_composition

BATCH = 2

_GEMM = {"convolution_backward", "convolution", "mm", "addmm", "bmm", "baddbmm"}
_FREE = {
    "view", "_unsafe_view", "reshape", "t", "transpose", "permute", "expand", "clone", "cat", "stack",
    "split", "split_with_sizes", "unbind", "select", "slice", "squeeze", "unsqueeze", "detach", "alias",
    "empty", "empty_like", "zeros", "zeros_like", "ones", "ones_like", "new_zeros", "new_empty", "copy_",
    "_to_copy", "as_strided", "fill_", "select_backward", "slice_backward", "lift_fresh",
}


@dataclass
class StepCost:
    """One training step per image (FLOPs: fvcore's convention, one multiply-add = one FLOP)."""

    forward: int
    backward_gemm: int
    backward_other: int
    saved_bytes: int
    saved_tensors: int

    @property
    def backward(self) -> int:
        return self.backward_gemm + self.backward_other

    @property
    def total(self) -> int:
        return self.forward + self.backward

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "backward": self.backward, "total": self.total, "per": "image (batch of 2, halved)"}


def _numel(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel()
    if isinstance(value, (tuple, list)):
        return sum(_numel(v) for v in value)
    return 0


class _OtherOps(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.flops = 0

    def __torch_dispatch__(self, func: OpOverload, types: Sequence[type], args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if name in _GEMM or name in _FREE:
            return out
        if name == "sum":
            self.flops += _numel(args[0]) - _numel(out)
        else:
            self.flops += _numel(out)
        return out


def training_step_cost(model: nn.Module, size: int) -> StepCost:
    """Forward + backward of one batch of 2 at ``size`` px on a copy of ``model``, per image.

    Saved bytes are measured on the blocks' own implementation; FLOPs on their eager composition
    (the fused backward does the same arithmetic in other ops, which the rules do not name).
    """
    from torch.utils.flop_counter import FlopCounterMode


    model = copy.deepcopy(model).train()
    x = torch.randn(BATCH, 3, size, size)
    forward = fvcore_count(model, x).all_ops
    kept = {p.untyped_storage().data_ptr() for p in model.parameters()}
    kept |= {b.untyped_storage().data_ptr() for b in model.buffers()}
    storages: dict[int, int] = {}
    count = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal count
        ptr = t.untyped_storage().data_ptr()
        if ptr not in kept:
            count += 1
            storages[ptr] = t.untyped_storage().nbytes()
        return t

    # What a step keeps for backward is the implementation's own (fused SE keeps less than eager)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        kept_output = model(x)
    del kept_output
    # FLOPs follow the op rules on the reference composition, whichever impl the blocks have
    with eager_composition():
        out = model(x)
        loss = out.float().sum() if isinstance(out, torch.Tensor) else out[0].float().sum()
        with FlopCounterMode(display=False) as gemm, _OtherOps() as other:
            loss.backward()
    return StepCost(
        forward=forward // BATCH,
        backward_gemm=int(gemm.get_total_flops()) // 2 // BATCH,
        backward_other=other.flops // BATCH,
        saved_bytes=sum(storages.values()) // BATCH,
        saved_tensors=count,
    )
