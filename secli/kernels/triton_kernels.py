"""Triton kernels for SE's squeeze, scale and the residual fold (CUDA; opt-in, unmeasured).

Every kernel sees a (N, C, H, W) tensor as (N, C, HW) with its own strides, so NCHW
(HW stride 1) and channels_last (C stride 1) are the same code; Triton specialises a stride of
1, so loads coalesce along whichever axis is contiguous. Arithmetic runs in float32 (float64
for float64 tensors); fp16/bf16 tensors are read and written in their own dtype.

- ``channel_mean(x)``: the squeeze, one read of x.
- ``scale(x, s, add)``: ``x * s`` (SE), or ``relu(x * s + add)`` (the residual fold), one pass.
- ``channel_dot(g, x)`` / ``relu_mask_and_dot(g, out, u)``: ``sum_hw(g * x)`` without the
  product; the second also writes ``g * (out > 0)`` in the same pass.
- ``scale_add_mean_grad(g, s, dz)``: ``g * s + dz / HW``, the input gradient, one pass.

They replace the PyTorch composition only when ``SECLI_TRITON=1`` and the tensors are on CUDA
(``dispatch.triton_wanted``): whether they beat PyTorch has not been measured on a GPU.
The kernels are jitted on first use, not at import, so ``TRITON_INTERPRET=1`` set by a test
before the first call runs them on CPU tensors with Triton's interpreter.
"""

import functools
from typing import Any

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - triton ships with the CUDA torch wheels
    import types

    triton = None
    # the kernels' annotations name ``tl.constexpr``; they must evaluate without triton too.
    # (Spelled ``tl.constexpr`` on purpose: the interpreter re-parses the source and accepts
    # that spelling only.)
    tl = types.SimpleNamespace(constexpr=object)

BLOCK_C = 16
BLOCK_HW = 64


def available() -> bool:
    """Whether triton imports at all (the kernels still need CUDA or TRITON_INTERPRET=1)."""
    return triton is not None


# Triton reads a kernel's parameter annotations: ``tl.constexpr`` marks a compile-time constant,
# and a type fixes the argument's type at every launch (``int`` is i32 even for an offset past
# 2**31, ``float`` is fp32) where an unannotated one is typed and specialised from its value. So
# the other parameters stay unannotated, and mypy is told so on each kernel (no-untyped-def).
def _mean_kernel(x_ptr, out_ptr, C, HW, sn, sc, shw, inv_hw,  # type: ignore[no-untyped-def]
                 F64: tl.constexpr, BC: tl.constexpr, BHW: tl.constexpr):
    n = tl.program_id(0)
    cs = tl.program_id(1) * BC + tl.arange(0, BC)
    acc = tl.zeros([BC], dtype=tl.float64 if F64 else tl.float32)
    for start in range(0, HW, BHW):
        hw = start + tl.arange(0, BHW)
        mask = (cs[:, None] < C) & (hw[None, :] < HW)
        v = tl.load(x_ptr + n * sn + cs[:, None] * sc + hw[None, :] * shw, mask=mask, other=0.0)
        acc += tl.sum(v.to(acc.dtype), axis=1)
    tl.store(out_ptr + n * C + cs, acc * inv_hw, mask=cs < C)


def _scale_kernel(x_ptr, s_ptr, a_ptr, out_ptr, C, HW,  # type: ignore[no-untyped-def]
                  xn, xc, xhw, an, ac, ahw, on, oc, ohw,
                  F64: tl.constexpr, ADD: tl.constexpr, BC: tl.constexpr, BHW: tl.constexpr):
    hw = tl.program_id(0) * BHW + tl.arange(0, BHW)
    cs = tl.program_id(1) * BC + tl.arange(0, BC)
    n = tl.program_id(2)
    mask = (cs[:, None] < C) & (hw[None, :] < HW)
    dt = tl.float64 if F64 else tl.float32
    x = tl.load(x_ptr + n * xn + cs[:, None] * xc + hw[None, :] * xhw, mask=mask, other=0.0).to(dt)
    s = tl.load(s_ptr + n * C + cs, mask=cs < C, other=0.0).to(dt)
    y = x * s[:, None]
    if ADD:
        a = tl.load(a_ptr + n * an + cs[:, None] * ac + hw[None, :] * ahw, mask=mask, other=0.0).to(dt)
        y = tl.maximum(y + a, 0.0)
    tl.store(out_ptr + n * on + cs[:, None] * oc + hw[None, :] * ohw, y.to(out_ptr.dtype.element_ty), mask=mask)


def _dot_kernel(g_ptr, x_ptr, o_ptr, gt_ptr, ds_ptr, C, HW,  # type: ignore[no-untyped-def]
                gn, gc, ghw, xn, xc, xhw, on, oc, ohw,
                F64: tl.constexpr, MASK: tl.constexpr, BC: tl.constexpr, BHW: tl.constexpr):
    n = tl.program_id(0)
    cs = tl.program_id(1) * BC + tl.arange(0, BC)
    dt = tl.float64 if F64 else tl.float32
    acc = tl.zeros([BC], dtype=dt)
    for start in range(0, HW, BHW):
        hw = start + tl.arange(0, BHW)
        mask = (cs[:, None] < C) & (hw[None, :] < HW)
        g = tl.load(g_ptr + n * gn + cs[:, None] * gc + hw[None, :] * ghw, mask=mask, other=0.0)
        if MASK:  # out and gt share one layout (both made like the output)
            o = tl.load(o_ptr + n * on + cs[:, None] * oc + hw[None, :] * ohw, mask=mask, other=0.0)
            g = tl.where(o > 0, g, tl.zeros_like(g))
            tl.store(gt_ptr + n * on + cs[:, None] * oc + hw[None, :] * ohw, g, mask=mask)
        x = tl.load(x_ptr + n * xn + cs[:, None] * xc + hw[None, :] * xhw, mask=mask, other=0.0)
        acc += tl.sum(g.to(dt) * x.to(dt), axis=1)
    tl.store(ds_ptr + n * C + cs, acc, mask=cs < C)


def _mean_grad_kernel(g_ptr, s_ptr, dz_ptr, out_ptr, C, HW,  # type: ignore[no-untyped-def]
                      gn, gc, ghw, on, oc, ohw, inv_hw,
                      F64: tl.constexpr, BC: tl.constexpr, BHW: tl.constexpr):
    hw = tl.program_id(0) * BHW + tl.arange(0, BHW)
    cs = tl.program_id(1) * BC + tl.arange(0, BC)
    n = tl.program_id(2)
    mask = (cs[:, None] < C) & (hw[None, :] < HW)
    dt = tl.float64 if F64 else tl.float32
    g = tl.load(g_ptr + n * gn + cs[:, None] * gc + hw[None, :] * ghw, mask=mask, other=0.0).to(dt)
    s = tl.load(s_ptr + n * C + cs, mask=cs < C, other=0.0).to(dt)
    dz = tl.load(dz_ptr + n * C + cs, mask=cs < C, other=0.0).to(dt)
    y = g * s[:, None] + (dz * inv_hw)[:, None]
    tl.store(out_ptr + n * on + cs[:, None] * oc + hw[None, :] * ohw, y.to(out_ptr.dtype.element_ty), mask=mask)


@functools.cache
def _jitted(interpret: bool) -> dict[str, Any]:
    """The kernels, jitted now (Triton picks interpreter or compiler when it jits)."""
    del interpret  # part of the cache key only
    kernels = (_mean_kernel, _scale_kernel, _dot_kernel, _mean_grad_kernel)
    return {k.__name__: triton.jit(k) for k in kernels}


def _k(name: str) -> Any:
    return _jitted(bool(triton.knobs.runtime.interpret))[name]


def _flat(t: torch.Tensor) -> torch.Tensor:
    """(N, C, HW) view with H and W merged, copying only a layout where they do not merge."""
    n, c, h, w = t.shape
    if t.stride(2) != w * t.stride(3) and h > 1:
        t = t.contiguous()
    return t.as_strided((n, c, h * w), (t.stride(0), t.stride(1), t.stride(3)))


def _vec(t: torch.Tensor) -> torch.Tensor:
    """A (N, C, 1, 1) gate/gradient as a contiguous (N, C) buffer."""
    return t.reshape(t.shape[0], t.shape[1]).contiguous()


def _acc_dtype(*ts: torch.Tensor) -> torch.dtype:
    return torch.float64 if any(t.dtype == torch.float64 for t in ts) else torch.float32


def _grid(n: int, c: int, hw: int, tiled: bool) -> tuple[int, ...]:
    if tiled:
        return (triton.cdiv(hw, BLOCK_HW), triton.cdiv(c, BLOCK_C), n)
    return (n, triton.cdiv(c, BLOCK_C))


def channel_mean(x: torch.Tensor) -> torch.Tensor:
    """mean over H x W as (N, C, 1, 1) in x's dtype, accumulated in float32 (float64)."""
    n, c, h, w = x.shape
    xf = _flat(x)
    out = torch.empty((n, c), device=x.device, dtype=_acc_dtype(x))
    _k("_mean_kernel")[_grid(n, c, h * w, False)](
        xf, out, c, h * w, *xf.stride(), 1.0 / (h * w), F64=out.dtype == torch.float64, BC=BLOCK_C, BHW=BLOCK_HW
    )
    return out.to(x.dtype).view(n, c, 1, 1)


def scale(x: torch.Tensor, s: torch.Tensor, add: torch.Tensor | None = None) -> torch.Tensor:
    """``x * s``, or ``relu(x * s + add)``; the output has x's layout and the promoted dtype."""
    n, c, h, w = x.shape
    dtype = torch.promote_types(x.dtype, s.dtype)
    if add is not None:
        dtype = torch.promote_types(dtype, add.dtype)
    out = torch.empty_like(x, dtype=dtype)
    xf, of = _flat(x), _flat(out)
    af = _flat(add) if add is not None else xf
    _k("_scale_kernel")[_grid(n, c, h * w, True)](
        xf, _vec(s), af, of, c, h * w, *xf.stride(), *af.stride(), *of.stride(),
        F64=_acc_dtype(x, s) == torch.float64, ADD=add is not None, BC=BLOCK_C, BHW=BLOCK_HW,
    )
    return out


def scale_add_relu(u: torch.Tensor, s: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
    """``relu(u * s + identity)`` in one pass (reads u and identity, writes the output)."""
    return scale(u, s, identity)


def channel_dot(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``sum_hw(g * x)`` as (N, C, 1, 1) in float32 (float64), the product never written."""
    n, c, h, w = x.shape
    gf, xf = _flat(g), _flat(x)
    ds = torch.empty((n, c), device=x.device, dtype=_acc_dtype(g, x))
    _k("_dot_kernel")[_grid(n, c, h * w, False)](
        gf, xf, gf, gf, ds, c, h * w, *gf.stride(), *xf.stride(), *gf.stride(),
        F64=ds.dtype == torch.float64, MASK=False, BC=BLOCK_C, BHW=BLOCK_HW,
    )
    return ds.view(n, c, 1, 1)


def relu_mask_and_dot(g: torch.Tensor, out: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(g * (out > 0), sum_hw(g * (out > 0) * u))`` in one pass over g, out and u."""
    n, c, h, w = u.shape
    gt = torch.empty_like(out, dtype=g.dtype)
    gf, of, gtf, uf = _flat(g), _flat(out), _flat(gt), _flat(u)
    if of.stride() != gtf.stride():  # the kernel addresses out and gt with one set of strides
        of = _flat(out.contiguous(memory_format=torch.contiguous_format))
        gt = torch.empty_like(out, dtype=g.dtype, memory_format=torch.contiguous_format)
        gtf = _flat(gt)
    ds = torch.empty((n, c), device=u.device, dtype=_acc_dtype(g, u))
    _k("_dot_kernel")[_grid(n, c, h * w, False)](
        gf, uf, of, gtf, ds, c, h * w, *gf.stride(), *uf.stride(), *of.stride(),
        F64=ds.dtype == torch.float64, MASK=True, BC=BLOCK_C, BHW=BLOCK_HW,
    )
    return gt, ds.view(n, c, 1, 1)


def scale_add_mean_grad(g: torch.Tensor, s: torch.Tensor, dz: torch.Tensor) -> torch.Tensor:
    """``g * s + broadcast(dz / HW)``: SE's input gradient in one pass."""
    n, c, h, w = g.shape
    out = torch.empty_like(g, dtype=torch.promote_types(g.dtype, s.dtype))
    gf, of = _flat(g), _flat(out)
    _k("_mean_grad_kernel")[_grid(n, c, h * w, True)](
        gf, _vec(s), _vec(dz), of, c, h * w, *gf.stride(), *of.stride(), 1.0 / (h * w),
        F64=_acc_dtype(g, s) == torch.float64, BC=BLOCK_C, BHW=BLOCK_HW,
    )
    return out
