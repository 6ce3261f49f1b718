"""SE at the standard position of a residual block, folded into the sum and its ReLU.

A residual block with SE on its branch computes ``relu(u * s + identity)`` where ``u`` is the
branch output (after its last BN) and ``s = excite(mean_hw(u))`` the SE gate. Written as three
modules (SE's ``x * s``, the block's ``out += identity`` and its ReLU) that is three passes
over full-size tensors forward and, in autograd's backward, a ReLU mask pass, the product
``g * u`` written and reduced, and the mean's broadcast added in another pass.

``scale_add_relu`` does it with the same parameters, as ``Squeeze`` (``secli.kernels.squeeze``),
the excitation's own modules and ``ScaleAddReLU``:

- forward: read ``u`` once for its mean; then one pass reading ``u`` and ``identity`` and writing
  the output: a compiled kernel on CPU (``cpu_kernels``), a Triton kernel on CUDA with
  ``SECLI_TRITON=1`` (``triton_kernels``), else ``addcmul(identity, u, s)`` and an in-place ReLU;
- backward: ``g' = g * (out > 0)`` is the gradient of ``identity`` as it is; ``ds = sum_hw(g' * u)``
  (with the kernels: in the same pass that writes ``g'``; else a batched dot, no product
  tensor); autograd goes back through the tiny excitation network; then ``Squeeze``'s backward
  writes ``du = g' * s + broadcast(dz / HW)`` in one pass.

Saved: ``u``, the gate and the output (the next block's first convolution saves that same
tensor, so it costs no memory of its own), never ``u * s`` or the pre-ReLU sum. A backward run
with grad mode on (double backward) uses differentiable ATen ops. Under ``torch.compile`` or a
jit trace the block runs ``residual_composition`` instead (see ``dispatch.fused_enabled``): the
compiler fuses that composition itself.
"""

from __future__ import annotations

from typing import Any

import torch

from secli.kernels.aten_ops import channel_dot
from secli.kernels.dispatch import kernels_if_wanted
from secli.kernels.gated_sum import Excite
from secli.kernels.squeeze import Link, activate, squeeze


def residual_composition(u: torch.Tensor, s: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
    """``relu(u * s + identity)`` as ordinary ops, two passes (without gradients, and under compile).

    The ReLU is in place on the fresh sum: ``addcmul`` saves nothing for backward, and an
    in-place ReLU saves its output just as the out-of-place one does.
    """
    return torch.addcmul(identity, u, s).relu_()


def scale_add_relu_forward(u: torch.Tensor, s: torch.Tensor, identity: torch.Tensor,
                           overwrite: bool = False) -> torch.Tensor:
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
    """``relu(u * s + identity)`` for a gate ``s`` computed from ``Squeeze(u)`` (module doc)."""

    @staticmethod
    def forward(ctx: Any, link: Link, u: torch.Tensor, s: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        out = scale_add_relu_forward(u, s, identity)
        ctx.save_for_backward(u, s, out)
        ctx.link, ctx.identity_dtype = link, identity.dtype
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        u, s, out = ctx.saved_tensors
        needs = ctx.needs_input_grad
        # grad mode on: create_graph, the backward is differentiated again, so ATen's ops only
        kernels = None if torch.is_grad_enabled() else kernels_if_wanted(grad, out, u)
        if kernels is not None:
            g, ds = kernels.relu_mask_and_dot(grad, out, u)
        else:
            g = torch.ops.aten.threshold_backward(grad, out, 0)  # grad where out > 0
            ds = channel_dot(g, u) if needs[2] else None
        du = None
        if needs[1]:
            link: Link = ctx.link
            if link.active:  # the squeeze's backward writes g * s + dz / HW in one pass
                link.put(g, (s,), kernels)
            else:
                du = (g * s).to(u.dtype)
        d_identity = None
        if needs[3]:
            d_identity = g if g.dtype == ctx.identity_dtype else g.to(ctx.identity_dtype)
        return (None, du, None if ds is None or not needs[2] else ds.to(s.dtype), d_identity)


def scale_add_relu(excite: Excite, u: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
    """``relu(u * excite(mean(u))[0] + identity)`` through ``Squeeze`` and ``ScaleAddReLU``."""
    link = Link()
    z = squeeze(link, [u])
    s = excite(z)[0]
    return ScaleAddReLU.apply(activate(link, z, (s,)), u, s, identity)
