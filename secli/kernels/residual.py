"""SE at the standard position of a residual block, folded into the sum and its ReLU.

A residual block with SE on its branch computes ``relu(u * s + identity)`` where ``u`` is the
branch output (after its last BN) and ``s = excite(mean_hw(u))`` the SE gate. Written as three
modules (SE's ``x * s``, the block's ``out += identity`` and its ReLU) that is three passes
over full-size tensors forward and, in autograd's backward, a ReLU mask pass, the product
``g * u`` written and reduced, and the mean's broadcast added in another pass.

``ScaleAddReLU`` does it as one function with the same parameters:

- forward: read ``u`` once for its mean; then one pass reading ``u`` and ``identity`` and writing
  the output: a compiled kernel on CPU (``cpu_kernels``), a Triton kernel on CUDA with
  ``SECLI_TRITON=1`` (``triton_kernels``), else ``addcmul(identity, u, s)`` and an in-place ReLU;
- backward: ``g' = g * (out > 0)`` is the gradient of ``identity`` as it is; ``ds = sum_hw(g' * u)``
  (with the kernels: in the same pass that writes ``g'``; else a batched dot, no product
  tensor); back through the tiny excitation network; then ``du = g' * s + broadcast(dz / HW)``
  in one pass.

Saved: ``u`` and the output (the next block's first convolution saves that same tensor, so it
costs no memory of its own), never ``u * s`` or the pre-ReLU sum. Double backward is not
supported. Under ``torch.compile`` or a jit trace the block runs ``residual_composition``
instead (see ``dispatch.fused_enabled``): the compiler fuses that composition itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.autograd.function import once_differentiable

from secli.kernels.aten_ops import channel_dot, channel_mean
from secli.kernels.dispatch import kernels_if_wanted
from secli.kernels.gated_sum import Excite


def residual_composition(u: torch.Tensor, s: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
    """``relu(u * s + identity)`` as ordinary ops, two passes (without gradients, and under compile).

    The ReLU is in place on the fresh sum: ``addcmul`` saves nothing for backward, and an
    in-place ReLU saves its output just as the out-of-place one does.
    """
    return torch.addcmul(identity, u, s).relu_()


def scale_add_relu_forward(u: torch.Tensor, s: torch.Tensor, identity: torch.Tensor, overwrite: bool = False) -> torch.Tensor:
    """``relu(u * s + identity)`` for a known gate ``s``: one kernel pass where kernels apply
    (compiled CPU kernels, Triton on request), else ``residual_composition``.

    ``overwrite``: the caller owns ``u`` and no longer needs it (no gradients; a residual block's
    own BN output), so the CPU kernel writes the result into it, as torchvision's block adds and
    applies its ReLU in place; elsewhere it is ignored.
    """
    kernels = kernels_if_wanted(u, identity)
    if kernels is not None:
        if overwrite and not torch.is_grad_enabled() and kernels.__name__.endswith("cpu_kernels"):
            return kernels.scale_add_relu(u, s, identity, out=u)
        return kernels.scale_add_relu(u, s, identity)
    return residual_composition(u, s, identity)


class ScaleAddReLU(torch.autograd.Function):
    """``relu(u * excite(mean_hw(u))[0] + identity)`` with a fused backward (module doc)."""

    @staticmethod
    def forward(ctx: Any, excite: Excite, u: torch.Tensor, identity: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        kernels = kernels_if_wanted(u)
        z = kernels.channel_mean(u) if kernels is not None else channel_mean(u)
        with torch.enable_grad():
            z_in = z.detach().requires_grad_(True)
            s = excite(z_in)[0]
        out = scale_add_relu_forward(u, s.detach(), identity)
        ctx.save_for_backward(u, out)
        ctx.z_in, ctx.s, ctx.params = z_in, s, params
        ctx.identity_dtype = identity.dtype
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        u, out = ctx.saved_tensors
        s: torch.Tensor = ctx.s
        params: tuple[torch.Tensor, ...] = ctx.params
        s_d = s.detach()
        kernels = kernels_if_wanted(grad, out, u)
        if kernels is not None:
            g, ds = kernels.relu_mask_and_dot(grad, out, u)
        else:
            g = torch.ops.aten.threshold_backward(grad, out, 0)  # grad where out > 0
            ds = channel_dot(g, u)
        wanted = [ctx.z_in] + [p for p in params if p.requires_grad]
        # retain the tiny excitation graph: gradcheck differentiates the outer graph twice
        found = torch.autograd.grad([s], wanted, [ds.to(s.dtype)], allow_unused=True, retain_graph=True)
        dz = found[0]
        rest = iter(found[1:])
        grads_params = [next(rest) if p.requires_grad else None for p in params]
        du = None
        if ctx.needs_input_grad[1]:
            h, w = u.shape[2], u.shape[3]
            if dz is None:
                du = torch.mul(g, s_d)
            elif kernels is not None:
                du = kernels.scale_add_mean_grad(g, s_d, dz)
            else:
                du = torch.addcmul((dz / (h * w)).to(torch.promote_types(g.dtype, s_d.dtype)), g, s_d)
            du = du if du.dtype == u.dtype else du.to(u.dtype)
        d_identity = None
        if ctx.needs_input_grad[2]:
            d_identity = g if g.dtype == ctx.identity_dtype else g.to(ctx.identity_dtype)
        return (None, du, d_identity, *grads_params)


def scale_add_relu(excite: Excite, u: torch.Tensor, identity: torch.Tensor, params: Sequence[torch.Tensor]) -> torch.Tensor:
    """Apply ``ScaleAddReLU``: ``relu(u * excite(mean(u))[0] + identity)``."""
    return ScaleAddReLU.apply(excite, u, identity, *params)
