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

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch.autograd.function import once_differentiable

from secli.build.blocks import cpu_kernels
from secli.util.env_flags import env_value

Excite = Callable[[torch.Tensor], Sequence[torch.Tensor]]


_EAGER_REQUESTS = 0  # > 0 inside ``eager_composition()``


@contextlib.contextmanager
def eager_composition() -> Iterator[None]:
    """Run every fused block as its eager composition while inside (FLOP counting).

    Counting rules are written for ordinary ops; the fused backward does the same arithmetic in
    other ops (a batched dot where eager multiplies then sums), so counts use the reference.
    """
    global _EAGER_REQUESTS
    _EAGER_REQUESTS += 1
    try:
        yield
    finally:
        _EAGER_REQUESTS -= 1


def fused_enabled(*tensors: torch.Tensor) -> bool:
    """Whether the fused function pays off here: some gradient is needed and we are not traced.

    Without gradients the forward alone runs (one read to pool, one pass to scale, through
    ``kernels_if_wanted`` where kernels apply); under ``torch.compile`` the compiler fuses the
    composition itself;
    a jit trace (fvcore's FLOP count) must see the ordinary ops, not an opaque Python function.
    """
    if not torch.is_grad_enabled() or _EAGER_REQUESTS:
        return False
    if torch.jit.is_tracing() or torch.jit.is_scripting():  # fvcore counts FLOPs from a jit trace
        return False
    return not compiling()


_COMPILER = getattr(torch, "compiler", None)
_IS_COMPILING = getattr(_COMPILER, "is_compiling", None)
_IS_EXPORTING = getattr(_COMPILER, "is_exporting", None)


def compiling() -> bool:
    """Inside ``torch.compile``'s trace or ``torch.export``: both must see ordinary ops. (The
    checks are looked up once: this runs at every fused block of every step.)"""
    if _IS_COMPILING is None:
        return False
    return bool(_IS_COMPILING() or (_IS_EXPORTING is not None and _IS_EXPORTING()))


def reference_wanted() -> bool:
    """Whether ordinary ops must run as the eager block writes them (FLOP counts, jit traces,
    and any ``TorchDispatchMode`` such as ``torch.utils.flop_counter.FlopCounterMode``).

    Counting rules know ``mul``, ``add`` and ``relu``, not the compositions the fused path uses
    without gradients (``addcmul``), and a dispatch mode cannot see inside a compiled kernel at
    all, so counters see exactly the eager ops.
    """
    if _EAGER_REQUESTS or torch.jit.is_tracing() or torch.jit.is_scripting():
        return True
    if compiling():  # the compiler traces ordinary ops anyway (and must not see the C++ check)
        return False
    return _dispatch_modes() > 0


_DISPATCH_STACK_LEN = getattr(torch._C, "_len_torch_dispatch_stack", None)


def _dispatch_modes() -> int:
    return 1 if _DISPATCH_STACK_LEN is None else int(_DISPATCH_STACK_LEN())  # unknown torch: assume someone is watching


TRITON_ENV = "SECLI_TRITON"


def triton_wanted(*tensors: torch.Tensor) -> bool:
    """Whether the Triton kernels run here: opt-in (``SECLI_TRITON=1``) and CUDA tensors only.

    Off by default because nobody has yet measured them against PyTorch's composition on a GPU;
    ``SECLI_TRITON=force`` also runs them on CPU tensors (only sensible with TRITON_INTERPRET=1,
    which is how the tests check them without a GPU).
    """
    flag = env_value(TRITON_ENV) or ""
    if flag not in ("1", "force"):
        return False
    if flag == "1" and not all(t.is_cuda for t in tensors):
        return False
    from secli.build.blocks import triton_kernels

    return triton_kernels.available()


def channel_mean(x: torch.Tensor) -> torch.Tensor:
    """mean over H x W, (N, C, 1, 1), accumulated in float32, returned in x's dtype."""
    if x.dtype in (torch.float16, torch.bfloat16):
        return x.mean(dim=(2, 3), keepdim=True, dtype=torch.float32).to(x.dtype)
    return x.mean(dim=(2, 3), keepdim=True)


def channel_dot(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """sum_hw(g * x) per (n, c), shape (N, C, 1, 1).

    For NCHW-contiguous tensors this is a batched dot product (bmm over N*C rows of H*W): the
    product ``g * x`` is never written. Other layouts reduce the product with a float32 sum.
    """
    n, c, h, w = x.shape
    if g.is_contiguous() and x.is_contiguous() and g.dtype == x.dtype:
        out = torch.bmm(g.reshape(n * c, 1, h * w), x.reshape(n * c, h * w, 1))
        return out.view(n, c, 1, 1)
    low = (torch.float16, torch.bfloat16)
    acc = torch.float32 if g.dtype in low and x.dtype in low else None
    return torch.mul(g, x).sum(dim=(2, 3), keepdim=True, dtype=acc)


def _cpu_kernels_allowed() -> Any:
    """``cpu_kernels`` where they may run now (not counted, traced, compiled or exported; switched
    on with ``SECLI_CPU_KERNELS``; built), else None. The tensors' layout is the caller's check.

    On by default: unlike the Triton kernels they are measured (``benchmarks/bench_blocks.py``)
    and tested against the eager composition on every layout and dtype they accept.
    """
    if reference_wanted() or compiling():
        return None
    return cpu_kernels if cpu_kernels.available() else None


def _cpu_kernels(tensors: Sequence[torch.Tensor]) -> Any:
    kernels = _cpu_kernels_allowed()
    return kernels if kernels is not None and kernels.layout(*tensors) is not None else None


def kernels_if_wanted(*tensors: torch.Tensor, single_input: bool = True) -> Any:
    """The kernels module for these tensors: Triton where ``triton_wanted`` (one-input blocks
    only), the compiled CPU kernels where they may run and take these tensors, else None
    (ATen's ops).

    Runs once per block and step, so it checks the cheap conditions first.
    """
    if single_input and env_value(TRITON_ENV) and triton_wanted(*tensors):
        from secli.build.blocks import triton_kernels

        return triton_kernels
    if tensors[0].device.type != "cpu":
        return None
    return _cpu_kernels(tensors)


def any_global_module_hook() -> bool:
    """Whether a hook registered for every module (``torch.nn.modules.module.register_module_*``) exists;
    True where torch no longer exposes the check, so the modules then always run."""
    check = getattr(torch.nn.modules.module, "_has_any_global_hook", None)
    return True if check is None else bool(check())


def cpu_kernels_ready() -> Any:
    """``cpu_kernels`` where they may run now and no Triton run was asked for (``SECLI_TRITON``),
    else None; the caller checks its tensors (``cpu_kernels.squeeze_excite`` declines others)."""
    return None if env_value(TRITON_ENV) else _cpu_kernels_allowed()


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
