"""The squeeze half of a fused block, and how its backward receives the other half's gradient.

A fused block computes, from inputs ``x_1..x_M`` (N, C, H, W)::

    z = sum_m mean_hw(x_m)            ``Squeeze`` (this module)
    a_1..a_M = excite(z)              the block's own modules, ordinary autograd ops
    out = sum_m a_m * x_m             ``GatedSum`` (or ``ScaleAddReLU``: relu(a * x + identity))

Each x_m's gradient has two terms, ``g * a_m`` through the gated sum and ``broadcast(dz / HW)``
through the squeeze. Autograd would write each in its own node and add them in a third full-size
pass; here the gated sum's backward hands ``g`` and the gates to the squeeze's backward through a
``Link`` and returns no gradient for x, and the squeeze's backward writes ``g * a_m + dz / HW`` in
one pass. Autograd runs a node only after every node that consumes its output (in one graph
task), so the squeeze's backward always comes after the gated sum's and the excitation's.

Why the excitation runs outside the Functions, not inside with a nested ``torch.autograd.grad``
in the backward (how the blocks were first written): that nested call starts a graph task of its
own, and non-reentrant activation checkpointing recomputes a checkpointed region once per graph
task that unpacks its saved tensors, so a checkpointed stage was recomputed once per fused block
(BatchNorm statistics updated 8 times instead of 2 in SE-ResNet-50's layer3; issue 19). A
``once_differentiable`` backward also refused double backward. Now the graph is an ordinary one:
every tensor is saved through ``save_for_backward`` (saved-tensor hooks see them), and both
backwards, run with grad mode on (``create_graph=True``), compute with differentiable ATen ops,
so higher-order gradients are autograd's own; without grad mode they use the fast kernels.

The hand-over is safe where autograd may skip the squeeze: the link is keyed by the graph task
that filled it (a ``g`` from another backward pass is never used), emptied when that task ends
(``queue_callback``: nothing outlives the pass, no reference cycle through the graph), and the
gated sum returns x's gradient itself where the gates do not depend on ``z`` (``Link.active``).
"""

from __future__ import annotations

from typing import Any

import torch

from secli.kernels.aten_ops import channel_mean
from secli.kernels.dispatch import kernels_if_wanted

_TASK_ID = torch._C._current_graph_task_id
_ENGINE = torch.autograd.Variable._execution_engine


class Link:
    """What one fused call's two Functions share: whether the squeeze's backward will write x's
    gradient (``active``), and, during one backward pass, the gated sum's ``g``, the gates and
    the kernels that took the tensors."""

    __slots__ = ("active", "gates", "grad", "kernels", "task")

    def __init__(self) -> None:
        self.active = False
        self.task = -1
        self.grad: torch.Tensor | None = None
        self.gates: tuple[torch.Tensor, ...] = ()
        self.kernels: Any = None

    def put(self, grad: torch.Tensor, gates: tuple[torch.Tensor, ...], kernels: Any) -> None:
        """Called by the gated sum's backward: the squeeze's backward of this pass reads these."""
        self.task, self.grad, self.gates, self.kernels = _TASK_ID(), grad, gates, kernels
        _ENGINE.queue_callback(self.clear)

    def take(self) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], Any] | None:
        """(g, gates, kernels) put in this backward pass, or None (the gated sum's backward did not run)."""
        grad = self.grad
        if grad is None or self.task != _TASK_ID():
            return None
        found = (grad, self.gates, self.kernels)
        self.clear()
        return found

    def clear(self) -> None:
        self.task, self.grad, self.gates, self.kernels = -1, None, (), None


class Squeeze(torch.autograd.Function):
    """``z = sum_m mean_hw(x_m)``; its backward writes each x_m's whole gradient (module doc)."""

    @staticmethod
    def forward(ctx: Any, link: Link, *xs: torch.Tensor) -> torch.Tensor:
        kernels = kernels_if_wanted(xs[0]) if len(xs) == 1 else None
        z = kernels.channel_mean(xs[0]) if kernels is not None else channel_mean(xs[0])
        for x in xs[1:]:
            z = z + channel_mean(x)
        ctx.link = link
        ctx.inputs = [(x.shape, x.dtype) for x in xs]
        return z

    @staticmethod
    def backward(ctx: Any, dz: torch.Tensor) -> tuple[Any, ...]:
        handed = ctx.link.take()
        grads: list[torch.Tensor | None] = [None]
        for index, (shape, dtype) in enumerate(ctx.inputs):
            if not ctx.needs_input_grad[1 + index]:
                grads.append(None)
                continue
            hw = shape[2] * shape[3]
            if handed is None:  # only the squeeze's term (the gates' gradient reached z, not the sum's)
                dx = (dz / hw).expand(shape)
            else:
                g, gates, kernels = handed
                a = gates[index]
                if kernels is not None:  # no grad mode here: the gated sum picked them for these tensors
                    dx = kernels.scale_add_mean_grad(g, a, dz)
                else:
                    dx = torch.addcmul((dz / hw).to(torch.promote_types(g.dtype, a.dtype)), g, a)
            grads.append(dx if dx.dtype == dtype else dx.to(dtype))
        return tuple(grads)


def squeeze(link: Link, xs: tuple[torch.Tensor, ...] | list[torch.Tensor]) -> torch.Tensor:
    """Apply ``Squeeze``: the pooled ``z`` (N, C, 1, 1) of inputs ``xs``, tied to ``link``."""
    return Squeeze.apply(link, *xs)


def activate(link: Link, z: torch.Tensor, gates: tuple[torch.Tensor, ...] | list[torch.Tensor]) -> Link:
    """Mark ``link`` active when the squeeze's backward will run wherever x's gradient is needed:
    ``z`` is in the graph and every gate depends on it (a gate without gradient cannot; the
    blocks' fast paths run only with the excitation's known, unhooked modules, so a gate that
    requires gradient came from ``z``)."""
    link.active = z.requires_grad and all(a.requires_grad for a in gates)
    return link
