"""The squeeze and the gate's gradient as ATen ops: what every fast path falls back to.

Both the compiled CPU kernels (for the squeeze, which ATen already does in one read) and the
fused autograd Functions use these, so they live below both.
"""

from __future__ import annotations

import torch


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
