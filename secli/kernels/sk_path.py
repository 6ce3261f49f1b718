"""SK's fast path: the paths' attention-weighted sum without stacking them.

``fused_forward`` takes the paths' outputs U_1..U_M of an SK block (``secli.blocks.sk``) and
returns the weighted sum, or None where the block's eager (stacked) composition must run:

- with gradients: ``gated_sum`` (no (N, M, C, H, W) tensor, forward or backward), where no hook
  is on the attention's modules (one could replace a module's output, so the weights might not
  come from the squeeze: ``squeeze.activate``); with one, the eager composition, which calls the
  same modules;
- without: GAP(U) is the sum of the paths' means (U itself is never formed, and the eager
  composition pools the same way), and the weighted sum is accumulated path by path.

A jit trace (fvcore's FLOP count), a dispatch mode or a ``torch.func`` transform always gets the
eager composition (``dispatch.reference_wanted``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import torch
from torch import nn

from secli.kernels.dispatch import fused_enabled, observed, reference_wanted
from secli.kernels.gated_sum import gated_sum


class SKAttention(Protocol):
    """What the fast path reads of an SK block: its attention MLP (``fc``, ``select``,
    ``attn_softmax``, read through ``_modules``) and the per-path gates for a pooled input."""

    @property
    def _modules(self) -> Mapping[str, nn.Module | None]: ...

    def _excite_pooled(self, pooled: torch.Tensor) -> tuple[torch.Tensor, ...]: ...


def pooled_paths(feats: Sequence[torch.Tensor]) -> torch.Tensor:
    """GAP(U) for U = sum_m U_m, as the sum of the paths' means (U is never formed): what both
    implementations compute, so the counted eager composition is what the fused one runs."""
    pooled = feats[0].mean(dim=(2, 3), keepdim=True)
    for feat in feats[1:]:
        pooled = pooled + feat.mean(dim=(2, 3), keepdim=True)
    return pooled


def _attention_observed(block: SKAttention) -> bool:
    modules = block._modules
    fc, select, softmax = modules["fc"], modules["select"], modules["attn_softmax"]
    assert fc is not None
    assert select is not None
    assert softmax is not None
    return observed(fc, *(m for m in fc._modules.values() if m is not None), select, softmax)


def fused_forward(block: SKAttention, feats: Sequence[torch.Tensor]) -> torch.Tensor | None:
    """``sum_m a_m * U_m`` for the paths' outputs ``feats``; None: run the eager composition."""
    if fused_enabled(*feats):
        return None if _attention_observed(block) else gated_sum(block._excite_pooled, feats)
    if reference_wanted():
        return None
    attn = block._excite_pooled(pooled_paths(feats))
    out = feats[0] * attn[0]
    for feat, a in zip(feats[1:], attn[1:], strict=True):
        out = out.addcmul_(feat, a)
    return out
