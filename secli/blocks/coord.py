"""Coordinate attention (Hou, Zhou, Feng; "Coordinate Attention for Efficient Mobile Network Design",
CVPR 2021, arXiv 2103.02907).

    z_h = mean over W of x          (N, C, H, 1)      pooling along each axis keeps the other one
    z_w = mean over H of x          (N, C, 1, W)
    f = h_swish(BN(W_1 · [z_h; z_w^T]))              one shared 1x1 conv C -> m over the H + W strip
    a_h = sigmoid(W_h · f_h)        (N, C, H, 1)      two 1x1 convs m -> C, one per axis
    a_w = sigmoid(W_w · f_w)        (N, C, 1, W)
    out = x · a_h · a_w

The paper's defaults: m = max(8, C // 32), biases on every conv, batch norm and h-swish
(``nn.Hardswish``, the same function) after the shared conv; the official code's layout, which
timm's ``CoordAttn`` shares (``conv1``, ``bn1``, ``conv_h``, ``conv_w``), so both state dicts load.
timm's own default width (C/16·2/3 rounded to 8) and bias=False are not the paper's.

The gate is the product of the two, a_h ⊗ a_w, formed by ``gate`` (``CoordGate``): one factor per
position and channel. Its mean over the H x W positions, per channel, is mean_h(a_h) · mean_w(a_w)
(the product of separable factors); that is what ``visualize-excitation`` reports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from secli.blocks.registry import BlockKind, SiteShape, register

if TYPE_CHECKING:
    from secli.blocks.spec import BlockSpec

#: The paper's reduction and floor: m = max(MIN_HIDDEN, C // RATIO).
RATIO = 32
MIN_HIDDEN = 8


class CoordGate(nn.Module):
    """sigmoid(h) ⊗ sigmoid(w): the (N, C, H, W) gate of the two axis gates, hooked by analysis."""

    def __init__(self) -> None:
        super().__init__()
        self.act = nn.Sigmoid()

    def forward(self, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.act(h) * self.act(w)


class CoordinateAttention(nn.Module):
    """Coordinate attention for a (N, C, H, W) tensor; returns a tensor of the same shape."""

    def __init__(self, channels: int, min_hidden: int = MIN_HIDDEN) -> None:
        super().__init__()
        self.channels = channels
        self.hidden = max(min_hidden, channels // RATIO)
        self.conv1 = nn.Conv2d(channels, self.hidden, kernel_size=1)
        self.bn1 = nn.BatchNorm2d(self.hidden)
        self.act = nn.Hardswish()
        self.conv_h = nn.Conv2d(self.hidden, channels, kernel_size=1)
        self.conv_w = nn.Conv2d(self.hidden, channels, kernel_size=1)
        self.gate = CoordGate()

    def excitation(self, x: torch.Tensor) -> torch.Tensor:
        """The gate a_h ⊗ a_w, shape (N, C, H, W)."""
        h, w = x.shape[2:]
        z_h = x.mean(dim=3, keepdim=True)  # (N, C, H, 1)
        z_w = x.mean(dim=2, keepdim=True).transpose(2, 3)  # (N, C, W, 1)
        f = self.act(self.bn1(self.conv1(torch.cat([z_h, z_w], dim=2))))
        f_h, f_w = torch.split(f, [h, w], dim=2)
        return self.gate(self.conv_h(f_h), self.conv_w(f_w.transpose(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.excitation(x)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, hidden={self.hidden}"


# --------------------------------------------------------------------------- registration
def _build(spec: BlockSpec, site: SiteShape) -> nn.Module:
    return CoordinateAttention(site.channels, min_hidden=spec.hidden_floor)


def coord_params(channels: int, hidden: int | None, spec: BlockSpec) -> int:
    """conv1 C·m + m, BN 2m, conv_h and conv_w m·C + C each: 3·C·m + 3m + 2C."""
    m = hidden if hidden is not None else max(spec.hidden_floor, channels // RATIO)
    return 3 * channels * m + 3 * m + 2 * channels


register(
    BlockKind(
        name="coord",
        prefix="COORD",
        label="Coordinate attention",
        build=_build,
        gate="gate",
        options=("min_hidden", "position"),
        params=coord_params,
        params_formula="3·C·m + 3m + 2C per site, m = max(8, C // 32)",
        default_min_hidden=MIN_HIDDEN,
        describe=lambda spec: [f"m=max({spec.hidden_floor},C/{RATIO})", spec.position],
        refusals={"ratio": f"Coordinate attention's reduction is the paper's {RATIO} (m = max(8, C // {RATIO})); "
                           "set the floor with --min-hidden"},
        help="Coordinate attention (Hou et al.): pooling along H and along W, shared 1x1, two gates",
        gate_note="COORD: the gate a_h(y)·a_w(x) is reported as its mean over positions per channel "
                  "(mean a_h · mean a_w); where along H and W a channel is gated is left out",
    )
)
