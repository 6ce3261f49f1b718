"""Fused forward/backward for gated channel sums: SE's ``x * s`` and SK's ``sum_m a_m * U_m``.

Both blocks compute, from inputs ``x_1..x_M`` of shape (N, C, H, W)::

    z = sum_m mean_hw(x_m)          (the squeeze; for SK the mean of the fused map U = sum_m x_m)
    a_1..a_M = excite(z)            (a small network with parameters; (N, C, 1, 1) each)
    out = sum_m a_m * x_m

Autograd's composition reads and writes the full-size tensors more often than needed: SK
stacks its paths into an M-times-larger tensor and sums it twice, and the backward of
``x * s`` materialises ``g * x`` before reducing it, then the mean's backward adds a
broadcast in another pass. ``GatedSum`` does the minimum:

- forward: read each ``x_m`` once for its mean, once for the weighted sum (written once);
- backward: ``da_m = sum_hw(g * x_m)`` as a batched dot product (NCHW: no product tensor),
  back through the small excitation network with ``torch.autograd.grad``, then
  ``dx_m = g * a_m + broadcast(dz / HW)`` in one ``addcmul`` pass.

Only the inputs and the gates are saved (never the product). The excitation runs as ordinary
modules inside ``forward`` (under ``enable_grad``), so forward hooks on a block's gate module see
the gate values exactly as in the eager block. Means accumulate in float32 for fp16/bf16.
On CPU (float32/float64, NCHW or channels_last) the scale, the dot and the input gradient run
as compiled one-pass kernels (``cpu_kernels``; ATen's ops where they cannot be built). On CUDA
with ``SECLI_TRITON=1`` the one-input case (SE) runs the squeeze, the scale and both backward
passes as Triton kernels (``triton_kernels``).
Double backward is not supported (``once_differentiable``); ``torch.compile`` traces the
blocks' eager composition instead (see ``fused_enabled``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.autograd.function import once_differentiable

from secli.kernels.aten_ops import channel_dot, channel_mean
from secli.kernels.dispatch import kernels_if_wanted

Excite = Callable[[torch.Tensor], Sequence[torch.Tensor]]


def scale_forward(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``x * s`` for a known gate: one kernel pass where kernels apply, else ATen's ``mul``."""
    kernels = kernels_if_wanted(x)
    return kernels.scale(x, s) if kernels is not None else x * s


class GatedSum(torch.autograd.Function):
    """``out = sum_m excite(sum_m mean(x_m))[m] * x_m`` with the fused backward (module doc)."""

    @staticmethod
    def forward(ctx: Any, excite: Excite, num_inputs: int, *args: torch.Tensor) -> torch.Tensor:
        xs = args[:num_inputs]
        params = args[num_inputs:]
        kernels = kernels_if_wanted(*xs) if num_inputs == 1 else None
        z = kernels.channel_mean(xs[0]) if kernels is not None else channel_mean(xs[0])
        for x in xs[1:]:
            z = z + channel_mean(x)
        with torch.enable_grad():
            z_in = z.detach().requires_grad_(True)
            gates = tuple(excite(z_in))
        out = kernels.scale(xs[0], gates[0].detach()) if kernels is not None else torch.mul(xs[0], gates[0].detach())
        for x, a in zip(xs[1:], gates[1:], strict=True):
            out = out.addcmul_(x, a.detach()) if out.dtype == torch.promote_types(x.dtype, a.dtype) else out + x * a.detach()
        ctx.num_inputs = num_inputs
        ctx.z_in = z_in
        ctx.gates = gates
        ctx.save_for_backward(*xs)
        ctx.params = params
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        xs = ctx.saved_tensors
        gates: tuple[torch.Tensor, ...] = ctx.gates
        params: tuple[torch.Tensor, ...] = ctx.params
        kernels = kernels_if_wanted(grad, *xs, single_input=len(xs) == 1)
        dot = kernels.channel_dot if kernels is not None else channel_dot
        grad_gates = [dot(grad, x).to(a.dtype) for x, a in zip(xs, gates, strict=True)]
        wanted = [ctx.z_in] + [p for p in params if p.requires_grad]
        # retain the (tiny, (N, C, 1, 1)-sized) excitation graph: the outer graph may be
        # differentiated again with retain_graph=True (gradcheck does)
        found = torch.autograd.grad(gates, wanted, grad_gates, allow_unused=True, retain_graph=True)
        dz = found[0]
        param_grads = iter(found[1:])
        grads_params = [next(param_grads) if p.requires_grad else None for p in params]
        grads_x: list[torch.Tensor | None] = []
        for index, (x, a) in enumerate(zip(xs, gates, strict=True)):
            if not ctx.needs_input_grad[2 + index]:
                grads_x.append(None)
                continue
            h, w = x.shape[2], x.shape[3]
            a_d = a.detach()
            out_dtype = torch.promote_types(grad.dtype, a_d.dtype)
            if dz is None:
                dx = torch.mul(grad, a_d)
            elif kernels is not None:
                dx = kernels.scale_add_mean_grad(grad, a_d, dz)
            else:
                dx = torch.addcmul((dz / (h * w)).to(out_dtype), grad, a_d)
            grads_x.append(dx if dx.dtype == x.dtype else dx.to(x.dtype))
        return (None, None, *grads_x, *grads_params)


def gated_sum(excite: Excite, xs: Sequence[torch.Tensor], params: Sequence[torch.Tensor]) -> torch.Tensor:
    """Apply ``GatedSum`` to inputs ``xs`` whose excitation uses ``params``."""
    return GatedSum.apply(excite, len(xs), *xs, *params)
