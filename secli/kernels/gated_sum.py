"""Fused forward/backward for gated channel sums: SE's ``x * s`` and SK's ``sum_m a_m * U_m``.

Both blocks compute, from inputs ``x_1..x_M`` of shape (N, C, H, W)::

    z = sum_m mean_hw(x_m)          (the squeeze; for SK the mean of the fused map U = sum_m x_m)
    a_1..a_M = excite(z)            (a small network with parameters; (N, C, 1, 1) each)
    out = sum_m a_m * x_m

Autograd's composition reads and writes the full-size tensors more often than needed: SK
stacks its paths into an M-times-larger tensor and sums it twice, and the backward of
``x * s`` materialises ``g * x`` before reducing it, then the mean's backward adds a
broadcast in another pass. ``gated_sum`` does the minimum, in two autograd Functions around
the excitation's ordinary modules (``secli.kernels.squeeze`` says why two):

- forward: read each ``x_m`` once for its mean (``Squeeze``), once for the weighted sum
  (``GatedSum``, written once);
- backward: ``da_m = sum_hw(g * x_m)`` as a batched dot product (NCHW: no product tensor),
  back through the small excitation network by autograd itself, then
  ``dx_m = g * a_m + broadcast(dz / HW)`` in one ``addcmul`` pass (in ``Squeeze``'s backward).

Only the inputs and the gates are saved (never the product). The excitation runs as the block's
own modules, so forward hooks on a block's gate module see the gate values exactly as in the
eager block. Means accumulate in float32 for fp16/bf16. On CPU (float32/float64, NCHW or
channels_last) the scale, the dot and the input gradient run as compiled one-pass kernels
(``cpu_kernels``; ATen's ops where they cannot be built). On CUDA with ``SECLI_TRITON=1`` the
one-input case (SE) runs the squeeze, the scale and both backward passes as Triton kernels
(``triton_kernels``). A backward run with grad mode on (``create_graph=True``: double backward)
uses differentiable ATen ops instead, so higher-order gradients are autograd's; ``torch.compile``
traces the blocks' eager composition instead (see ``dispatch.fused_enabled``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from secli.kernels.aten_ops import channel_dot
from secli.kernels.dispatch import kernels_if_wanted
from secli.kernels.squeeze import Link, activate, squeeze

Excite = Callable[[torch.Tensor], Sequence[torch.Tensor]]


def scale_forward(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``x * s`` for a known gate: one kernel pass where kernels apply, else ATen's ``mul``."""
    kernels = kernels_if_wanted(x)
    return kernels.scale(x, s) if kernels is not None else x * s


class GatedSum(torch.autograd.Function):
    """``out = sum_m a_m * x_m`` for gates ``a_m`` computed from ``Squeeze``'s output (module doc)."""

    @staticmethod
    def forward(ctx: Any, link: Link, num_inputs: int, *args: torch.Tensor) -> torch.Tensor:
        xs, gates = args[:num_inputs], args[num_inputs:]
        kernels = kernels_if_wanted(*xs) if num_inputs == 1 else None
        out = kernels.scale(xs[0], gates[0]) if kernels is not None else torch.mul(xs[0], gates[0])
        for x, a in zip(xs[1:], gates[1:], strict=True):
            out = out.addcmul_(x, a) if out.dtype == torch.promote_types(x.dtype, a.dtype) else out + x * a
        ctx.link, ctx.num_inputs = link, num_inputs
        ctx.save_for_backward(*xs, *gates)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        n = ctx.num_inputs
        saved = ctx.saved_tensors
        xs, gates = saved[:n], saved[n:]
        needs = ctx.needs_input_grad
        # grad mode on: create_graph, the backward is differentiated again, so ATen's ops only
        kernels = None if torch.is_grad_enabled() else kernels_if_wanted(grad, *xs, single_input=n == 1)
        dot = kernels.channel_dot if kernels is not None else channel_dot
        grad_gates = [dot(grad, x).to(a.dtype) if needs[2 + n + i] else None
                      for i, (x, a) in enumerate(zip(xs, gates, strict=True))]
        grads_x: list[torch.Tensor | None] = [None] * n
        if any(needs[2:2 + n]):
            link: Link = ctx.link
            if link.active:  # the squeeze's backward writes g * a + dz / HW in one pass
                link.put(grad, gates, kernels)
            else:
                grads_x = [(grad * a).to(x.dtype) if needs[2 + i] else None
                           for i, (x, a) in enumerate(zip(xs, gates, strict=True))]
        return (None, None, *grads_x, *grad_gates)


def gated_sum(excite: Excite, xs: Sequence[torch.Tensor]) -> torch.Tensor:
    """``sum_m a_m * x_m`` with ``a = excite(sum_m mean_hw(x_m))``, through ``Squeeze`` and ``GatedSum``."""
    link = Link()
    z = squeeze(link, list(xs))
    gates = tuple(excite(z))
    return GatedSum.apply(activate(link, z, gates), len(xs), *xs, *gates)
