"""SRM, the style-based recalibration module (Lee, Kim, Nam; "SRM: A Style-based Recalibration Module
for Convolutional Neural Networks", ICCV 2019, arXiv 1903.10829).

    t_c = [mean_HW(x_c), std_HW(x_c)]           style pooling: (N, C, 2); std = √(var + 1e-5),
                                                var unbiased (the released code's ``var``;
                                                on a 1x1 map 0 instead of its 0 / 0)
    z_c = w_c · t_c                             channel-wise fully connected: 2 weights per channel
    s = sigmoid(BN(z))                          batch norm over the C style values
    out = s · x

Parameters: the 2C integration weights and the batch norm's 2C (its running statistics are
buffers). The released code initialises the weights to zero (every gate starts at
sigmoid(BN(0)) = 0.5); so does this module. Its layout (``cfc`` of shape (C, 2), ``bn``) is the
released code's. The gate (``gate``) is one value per channel. Its batch norm sees one value per
channel and image, so training needs batches of two images or more (as the released code does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from secli.blocks.registry import BlockKind, SiteShape, register

if TYPE_CHECKING:
    from secli.blocks.spec import BlockSpec

EPS = 1e-5


class StyleRecalibration(nn.Module):
    """SRM for a (N, C, H, W) tensor; returns a tensor of the same shape."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.hidden = None
        self.cfc = nn.Parameter(torch.zeros(channels, 2))
        self.bn = nn.BatchNorm2d(channels)
        self.gate = nn.Sigmoid()

    def style(self, x: torch.Tensor) -> torch.Tensor:
        """Style pooling: per channel the mean and the standard deviation, (N, C, 2)."""
        n, c = x.shape[:2]
        flat = x.reshape(n, c, -1)
        mean = flat.mean(dim=2, keepdim=True)
        correction = 1 if flat.shape[2] > 1 else 0  # a 1x1 map: variance 0, not the unbiased 0 / 0
        std = (flat.var(dim=2, keepdim=True, correction=correction) + EPS).sqrt()
        return torch.cat([mean, std], dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        z = (self.style(x) * self.cfc).sum(dim=2).view(n, c, 1, 1)
        return x * self.gate(self.bn(z))

    def extra_repr(self) -> str:
        return f"channels={self.channels}"


def _build(spec: BlockSpec, site: SiteShape) -> nn.Module:
    return StyleRecalibration(site.channels)


register(
    BlockKind(
        name="srm",
        prefix="SRM",
        label="Style-based recalibration module",
        build=_build,
        gate="gate",
        options=("position",),
        params=lambda channels, hidden, spec: 4 * channels,
        params_formula="4C per site (2C integration weights + 2C batch norm)",
        describe=lambda spec: [spec.position],
        help="SRM (Lee et al.): style pooling (mean, std), channel-wise fc, batch norm, sigmoid",
    )
)
