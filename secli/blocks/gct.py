"""GCT, the gated channel transformation (Yang, Zhu, Wu, Yang; "Gated Channel Transformation for
Visual Recognition", CVPR 2020, arXiv 1909.11519).

    s_c = α_c · √(sum_HW x_c² + ε)                     global context embedding (L2 norm), ε = 1e-5
    ŝ_c = γ_c · s_c / √(mean_c(s²) + ε)                channel normalisation across the C embeddings
    out = x · (1 + tanh(ŝ + β))                        gating adaptation

Three parameters per channel (α = 1, γ = β = 0 at the start, so every gate starts at 1: the
block starts as the identity), the released code's ``l2`` mode and initialisation. The gate
(``gate``, ``OnePlusTanh``) is one value per channel, in (0, 2); 1 is the identity.
The paper puts GCT before every convolution; secli puts it where SE goes (``--position``), one
per residual block, so the kinds compare at the same sites.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from secli.blocks.registry import BlockKind, SiteShape, register

if TYPE_CHECKING:
    from secli.blocks.spec import BlockSpec

EPS = 1e-5


class OnePlusTanh(nn.Module):
    """GCT's gate 1 + tanh(t), in (0, 2); hooked by analysis."""

    #: what visualize-excitation's histograms span, and the value that removes the block (--ablate)
    gate_range = (0.0, 2.0)
    identity_value = 1.0

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return 1.0 + torch.tanh(t)


class GatedChannelTransformation(nn.Module):
    """GCT for a (N, C, H, W) tensor; returns a tensor of the same shape."""

    def __init__(self, channels: int, eps: float = EPS) -> None:
        super().__init__()
        self.channels = channels
        self.hidden = None
        self.eps = eps
        self.alpha = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gate = OnePlusTanh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        embedding = (x.pow(2).sum(dim=(2, 3), keepdim=True) + self.eps).pow(0.5) * self.alpha
        norm = self.gamma / (embedding.pow(2).mean(dim=1, keepdim=True) + self.eps).pow(0.5)
        return x * self.gate(embedding * norm + self.beta)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, mode=l2"


def _build(spec: BlockSpec, site: SiteShape) -> nn.Module:
    return GatedChannelTransformation(site.channels)


register(
    BlockKind(
        name="gct",
        prefix="GCT",
        label="Gated channel transformation",
        build=_build,
        gate="gate",
        options=("position",),
        params=lambda channels, hidden, spec: 3 * channels,
        params_formula="3C per site (alpha, gamma, beta)",
        describe=lambda spec: [spec.position],
        help="GCT (Yang et al.): L2 embedding, channel normalisation, 1 + tanh gate",
        gate_note="GCT: the gate 1 + tanh(...) lies in (0, 2) and 1 is the identity; 'saturation' (> 0.95) "
                  "does not mean an identity here",
    )
)
