"""SK's fast path: the paths' attention-weighted sum without stacking them.

``fused_forward`` takes the paths' outputs U_1..U_M of an SK block (``secli.blocks.sk``) and
returns the weighted sum, or None where the block's eager (stacked) composition must run:

- with gradients: ``GatedSum`` (no (N, M, C, H, W) tensor, forward or backward);
- without: GAP(U) is the sum of the paths' means (U itself is never formed), and the weighted
  sum is accumulated path by path.

A jit trace (fvcore's FLOP count) always gets the eager composition it counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
from torch import nn

from secli.kernels.dispatch import fused_enabled
from secli.kernels.gated_sum import gated_sum


class SKAttention(Protocol):
    """What the fast path reads of an SK block: its attention MLP (``fc``, ``select``) and the
    per-path gates for a pooled input."""

    @property
    def fc(self) -> nn.Module: ...
    @property
    def select(self) -> nn.Module: ...

    def _excite_pooled(self, pooled: torch.Tensor) -> tuple[torch.Tensor, ...]: ...


def fused_forward(block: SKAttention, feats: Sequence[torch.Tensor]) -> torch.Tensor | None:
    """``sum_m a_m * U_m`` for the paths' outputs ``feats``; None: run the eager composition."""
    if torch.jit.is_tracing():
        return None
    if fused_enabled(*feats):
        params = [p for m in (block.fc, block.select) for p in m.parameters()]
        return gated_sum(block._excite_pooled, feats, params)
    pooled = feats[0].mean(dim=(2, 3), keepdim=True)  # mean of the sum = sum of the means
    for feat in feats[1:]:
        pooled = pooled + feat.mean(dim=(2, 3), keepdim=True)
    attn = block._excite_pooled(pooled)
    out = feats[0] * attn[0]
    for feat, a in zip(feats[1:], attn[1:], strict=True):
        out = out.addcmul_(feat, a)
    return out
